"""The one way a config field is declared: its default, its help text and its allowed values."""

from __future__ import annotations

from dataclasses import field
from typing import Any


def doc(default: Any, help: str, choices: tuple[Any, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})
