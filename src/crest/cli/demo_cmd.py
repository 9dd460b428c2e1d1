"""`crest demo`: the main job on the embedded default world, end to end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.baseline import run_baseline
from crest.cli.output import (
    add_overrides,
    opinion_line,
    pct,
    print_summary,
    score_cells,
    table,
)
from crest.config import load_config
from crest.data.schema.hdf5 import read_benchmark
from crest.data.synthetic.worlds import default_world
from crest.engine.train import train
from crest.metrics import Key
from crest.run_folder import RunFolder


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
    cfg = load_config("synthetic", args.overrides)
    if cfg.train.validation_only:  # the demo's table is of test scores
        print("error: crest demo reports test scores; use crest train for a validation-only run")
        return 2
    path = default_world()
    print("== the embedded default world ==")
    print_summary(read_benchmark(path).summary())
    print("\n== baseline: ridge regression from pooled regions to attributes ==")
    base = run_baseline(path)
    print("\n== CREST, config 'synthetic' ==")
    m = train(cfg, args.out)
    names = f"{RunFolder.REPORT}, {RunFolder.METRICS}, {RunFolder.CHECKPOINTS}/"
    print(f"\nrun folder: {args.out} ({names})\n")
    rows = [
        [
            "CREST",
            *score_cells(m),
            f"{m[Key.GAMMA]:.3f}",
            m[Key.SELECTION_DETAIL],
        ],
        *[
            [
                f"  {name.upper()} alone (same model)",
                *score_cells(b),
                f"{m[Key.GAMMA]:.3f}",
                f"{name.upper()}'s own scores at the same epoch and γ",
            ]
            for name, b in m.get("branches", {}).items()
        ],
        [
            "baseline",
            *score_cells(base.to_dict()),
            f"{base.gamma:.3f}",
            f"closed form; γ: {base.gamma_selection}",
        ],
    ]
    print(table(rows, ["model", "CZSL", "U", "S", "H", "γ", "selection"]))
    print(f"Accuracies in % (per-class mean top-1); chance CZSL {pct(base.chance_czsl)}%.")
    print(opinion_line(m))
    return 0
