"""`crest sweep`: one parameter over values (Fig. 8), resumable; a grid study on `crest tune`'s
machinery (``OUT/<param>/study.db``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.cli.output import add_overrides
from crest.config import load_config
from crest.experiments import DEFAULT_SWEEPS, summary_table, sweep
from crest.run_folder import RunFolder


def register(sub: Any) -> None:
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from crest.explain.groups import (  # matplotlib: only when this command runs
        sweep_figure,
        write_group_report,
    )
    from crest.tune.study import quiet_optuna

    quiet_optuna()

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
    print(f"report: {out / RunFolder.REPORT}")
    return 0
