"""The `crest` command line: thin wrappers over the library (``main(argv)`` is callable in-process)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from crest.errors import CrestError
from crest.run_lock import check_free
from crest.version import package_version

#: command modules, imported when the parser is built (they pull in torch)
COMMANDS = (
    "data_cmds",
    "train_cmd",
    "eval_cmd",
    "explain_cmd",
    "predict_cmd",
    "ablate_cmd",
    "compare_cmd",
    "sweep_cmd",
    "tune_cmd",
    "baseline_cmd",
    "bench_cmd",
    "demo_cmd",
    "export_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crest", description="CREST zero-shot learning")
    parser.add_argument("--version", action="version", version=f"crest {package_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"crest.cli.{name}").register(sub)
    return parser


def _busy_run_folder(argv: Sequence[str]) -> None:
    """`crest train --out DIR` into a folder another run holds: fail before the heavy imports."""
    args = list(argv)
    if not args or args[0] != "train":
        return
    for i, item in enumerate(args):
        if item == "--out" and i + 1 < len(args):
            check_free(args[i + 1])
        elif item.startswith("--out="):
            check_free(item.split("=", 1)[1])


def main(argv: Sequence[str] | None = None) -> int:
    try:
        _busy_run_folder(sys.argv[1:] if argv is None else argv)
    except CrestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    if int(os.environ.get("RANK", "0")) != 0:
        level = logging.WARNING  # under torchrun, logs come from rank 0
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except CrestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
