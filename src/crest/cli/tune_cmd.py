"""`crest tune`: an Optuna study of one model on its validation classes (docs/tune.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.cli.output import add_overrides
from crest.config import MODEL_NAMES


def register(sub: Any) -> None:
    t = sub.add_parser(
        "tune",
        help="tune a model's recipe on the validation classes (Optuna: TPE, pruning on "
        "validation H, the study resumable in DIR/study.db) → DIR/best.yaml, DIR/report.md",
    )
    t.add_argument("--model", choices=MODEL_NAMES, default="crest", help="model to tune")
    t.add_argument(
        "--trials",
        type=int,
        required=True,
        help="trials to reach in all: a resumed study grows to it (an interrupted trial is "
        "asked again and counted once)",
    )
    t.add_argument(
        "--config",
        help="dataset config whose model recipe is tuned (synthetic, cub, sun, awa2, -paper, a YAML file)",
    )
    t.add_argument("--data", type=Path, help="benchmark file (the same as --set data.path=FILE)")
    add_overrides(t, help="override a config key; a searched key set here is held fixed")
    t.add_argument("--epochs", type=int, help="every trial's epochs (default: the recipe's)")
    t.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    t.add_argument(
        "--startup-trials",
        type=int,
        default=5,
        help="trials drawn at random before TPE models the results (default 5)",
    )
    t.add_argument(
        "--pruner",
        choices=("median", "none"),
        default="median",
        help="median: stop a trial whose validation H falls below the median of the completed "
        "trials at the same epoch (default); none: every trial trains its epochs",
    )
    t.add_argument(
        "--prune-startup",
        type=int,
        default=3,
        help="completed trials before any trial is pruned (default 3)",
    )
    t.add_argument(
        "--prune-warmup",
        type=int,
        help="epochs of a trial that are never pruned (default: a quarter of its epochs)",
    )
    t.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep the checkpoints of trials that ended (removed by default: only an "
        "interrupted trial needs its own, to resume)",
    )
    t.add_argument("--out", type=Path, help="study folder (default runs/tune/<model>-<config>)")
    t.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from crest.tune.run import TuneSettings, tune
    from crest.tune.study import quiet_optuna

    quiet_optuna()
    overrides = list(args.overrides)
    if args.data is not None:
        overrides.append(f"data.path={args.data}")
    out = (
        args.out or Path("runs") / "tune" / f"{args.model}-{Path(args.config or 'synthetic').stem}"
    )
    result = tune(
        TuneSettings(
            model=args.model,
            trials=args.trials,
            out=out,
            config=args.config,
            overrides=tuple(overrides),
            epochs=args.epochs,
            seed=args.seed,
            startup_trials=args.startup_trials,
            pruner=args.pruner,
            prune_startup=args.prune_startup,
            prune_warmup=args.prune_warmup,
            keep_checkpoints=args.keep_checkpoints,
        )
    )
    if result.best is None:
        print(f"no trial completed; report: {result.folder.report}")
        return 1
    best = result.best
    print(
        f"best of {len(result.trials)} trials: trial {best.number}, validation H "
        f"{100 * float(best.value or 0.0):.1f}%"
    )
    for key, value in best.params.items():
        print(f"  {key} = {value:.4g}")
    print(f"config: {result.folder.best}   (crest train --config {result.folder.best})")
    print(f"report: {result.folder.report}")
    return 0
