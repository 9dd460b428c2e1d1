"""`crest ablate` (Table 2 over seeds) and `crest sweep` (Fig. 8); both resumable."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.cli.output import add_overrides
from crest.config import ABLATIONS, load_config
from crest.experiments import DEFAULT_SWEEPS, ablate, summary_table, sweep
from crest.explain.groups import sweep_figure, write_group_report


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

    s = sub.add_parser(
        "sweep", help="one parameter over values (default λ_CAL and λ_EDL, Fig. 8) → plot"
    )
    s.add_argument("--config", help="base config (default synthetic)")
    add_overrides(s)
    s.add_argument(
        "--param", default="loss.lambda_cal", help="config key to sweep (default loss.lambda_cal)"
    )
    s.add_argument(
        "--values", nargs="+", help="values (default: the paper's range for λ_CAL / λ_EDL)"
    )
    s.add_argument("--seeds", type=int, nargs="+", default=[0])
    s.add_argument("--out", type=Path, default=Path("runs/sweep"))
    s.set_defaults(func=cmd_sweep)


def cmd_ablate(args: argparse.Namespace) -> int:
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
    print(f"report: {args.out / 'report.md'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    base = load_config(args.config, args.overrides)
    values = args.values or DEFAULT_SWEEPS.get(args.param)
    if not values:
        raise SystemExit(
            f"give --values for {args.param} (defaults exist for {', '.join(DEFAULT_SWEEPS)})"
        )
    out = args.out / args.param
    results = sweep(base, out, args.param, values, seeds=args.seeds)
    fig = sweep_figure(out / "sweep.png", args.param, results)
    write_group_report(
        out, f"Sweep of {args.param}", results, args.param, fig, note=f"Base config `{base.name}`."
    )
    print(summary_table(results, args.param))
    print(f"report: {out / 'report.md'}")
    return 0
