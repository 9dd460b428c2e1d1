"""Checkpoints: written atomically, read with ``weights_only=True`` (a checkpoint never runs code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crest.atomic import atomic_path
from crest.errors import DataError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save ``state`` (tensors, dicts, lists, numbers, strings only) to ``path`` via a rename."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise DataError(path, None, f"not a readable crest checkpoint: {exc}") from exc
    for key in ("model", "config", "epoch"):
        if key not in state:
            raise DataError(path, key, "missing; not a crest checkpoint")
    return state
