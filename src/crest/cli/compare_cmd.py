"""`crest compare`: the region-based ZSL family on one file, over seeds, under one protocol."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.cli.output import add_overrides
from crest.config import MODEL_NAMES


def register(sub: Any) -> None:
    c = sub.add_parser(
        "compare",
        help="train several models (CREST, DAZLE, TransZero, MSDN) over seeds on one file, "
        "under val and, labelled, test-oracle → a Table-1-shaped report (resumable)",
    )
    c.add_argument(
        "--config",
        help="dataset config (synthetic, cub, sun, awa2, their -paper variants, or a YAML file)",
    )
    add_overrides(c)
    c.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument(
        "--selections",
        nargs="+",
        choices=("val", "test-oracle"),
        default=["val", "test-oracle"],
        help="val: the fair numbers; test-oracle: best on test, to show the inflation",
    )
    c.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="train every model to its own convergence: stop a phase after N epochs without a "
        "better selection score (train.patience; the epoch budget becomes a cap); the report "
        "gives the epoch each run stopped at",
    )
    c.add_argument("--out", type=Path, default=Path("runs/compare"))
    c.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from crest.compare import compare, table_rows
    from crest.explain.compare_report import HEADER, write_compare_report
    from crest.markdown import md_table

    overrides = list(args.overrides)
    if args.patience is not None:
        overrides.append(f"train.patience={args.patience}")
    runs = compare(
        args.config,
        args.models,
        args.out,
        args.seeds,
        overrides,
        selections=tuple(args.selections),
    )
    report = write_compare_report(args.out, runs, args.config or "synthetic")
    print(md_table(HEADER, table_rows(runs)))
    print(f"report: {report}")
    return 0
