"""`crest ablate`: the paper's Table 2 rows over seeds (resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.cli.output import add_overrides
from crest.config import ABLATIONS, load_config
from crest.experiments import ablate, summary_table
from crest.run_folder import RunFolder


def register(sub: Any) -> None:
    a = sub.add_parser(
        "ablate", help="the paper's Table 2 rows over several seeds → a mean ± std table"
    )
    a.add_argument("--config", help="base config (default synthetic)")
    add_overrides(a)
    a.add_argument("--rows", nargs="+", choices=list(ABLATIONS), help="rows to run (default: all)")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--out", type=Path, default=Path("runs/ablate"))
    a.set_defaults(func=cmd_ablate)


def cmd_ablate(args: argparse.Namespace) -> int:
    from crest.explain.groups import write_group_report  # matplotlib: only when this command runs

    base = load_config(args.config, args.overrides)
    results = ablate(base, args.out, rows=args.rows, seeds=args.seeds)
    write_group_report(
        args.out,
        "Ablations (Table 2)",
        results,
        "row",
        note=f"Base config `{base.name}`; each row changes one switch of the full model.",
    )
    print(summary_table(results))
    print(f"report: {args.out / RunFolder.REPORT}")
    return 0
