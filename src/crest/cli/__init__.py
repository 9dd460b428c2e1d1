"""The `crest` command line: thin wrappers over the library (``main(argv)`` is callable in-process)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from crest import __version__
from crest.cli import (
    baseline_cmd,
    bench_cmd,
    data_cmds,
    demo_cmd,
    explain_cmd,
    group_cmds,
    predict_cmd,
    train_cmds,
)
from crest.errors import CrestError

COMMANDS = (
    data_cmds,
    train_cmds,
    explain_cmd,
    predict_cmd,
    group_cmds,
    baseline_cmd,
    bench_cmd,
    demo_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crest", description="CREST zero-shot learning")
    parser.add_argument("--version", action="version", version=f"crest {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
