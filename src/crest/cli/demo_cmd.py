"""`crest demo`: the main job on the embedded default world, end to end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.baseline import run_baseline
from crest.cli.baseline_cmd import print_baseline
from crest.cli.data_cmds import print_summary
from crest.cli.output import add_overrides
from crest.cli.train_cmds import print_metrics
from crest.config import load_config
from crest.data.h5 import read_benchmark
from crest.data.worlds import default_world
from crest.engine.train import train


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="train CREST on the embedded default world and compare with the baseline"
    )
    p.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)"
    )
    add_overrides(p, "override a config key of the synthetic config (repeatable)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    path = default_world()
    print("== the embedded default world ==")
    print_summary(read_benchmark(path).summary())
    print("\n== CREST (config 'synthetic') ==")
    metrics = train(load_config("synthetic", args.overrides), args.out)
    print_metrics(metrics)
    print(f"run folder: {args.out}")
    print("\n== baseline for comparison (ridge regression from pooled regions to attributes) ==")
    print_baseline(path, run_baseline(path))
    return 0
