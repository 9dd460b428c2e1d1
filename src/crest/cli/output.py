"""Printing helpers shared by CLI commands."""

from __future__ import annotations

import json
from typing import Any


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain-text table with aligned columns (also valid Markdown)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def add_overrides(
    parser: Any, help: str = "override a config key, e.g. --set train.epochs=5 (repeatable)"
) -> None:
    """The ``--set a.b=v`` option every config-taking command shares."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="A.B=V", help=help
    )
