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
    c.add_argument(
        "--models",
        nargs="+",
        choices=MODEL_NAMES,
        help="models to compare (default: all, or the models of --tuned)",
    )
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
    tuning = c.add_mutually_exclusive_group()
    tuning.add_argument(
        "--tuned",
        nargs="+",
        type=Path,
        metavar="STUDY_DIR",
        help="train each model from the best config of its `crest tune` study (DIR/best.yaml) "
        "instead of its recipe",
    )
    tuning.add_argument(
        "--tune-trials",
        type=int,
        metavar="N",
        help="first tune every model with the same budget, N trials of --tune-epochs epochs on "
        "the validation classes (crest tune; studies in OUT/tune/<model>), then compare the "
        "tuned configs",
    )
    c.add_argument(
        "--tune-epochs",
        type=int,
        metavar="E",
        help="epochs of every tuning trial (default: the config's train.epochs)",
    )
    c.add_argument("--out", type=Path, default=Path("runs/compare"))
    c.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from crest.compare import compare, table_rows, tune_models
    from crest.explain.compare_report import HEADER, RECIPES, write_compare_report
    from crest.markdown import md_table
    from crest.tune.study import quiet_optuna
    from crest.tune.summary import read_study

    quiet_optuna()
    overrides = list(args.overrides)
    if args.patience is not None:
        overrides.append(f"train.patience={args.patience}")
    if args.tune_epochs is not None and args.tune_trials is None:
        raise SystemExit("--tune-epochs goes with --tune-trials")
    models = list(args.models or [])
    configs = RECIPES
    tuned: dict[str, Path] = {}
    if args.tune_trials is not None:
        models = models or list(MODEL_NAMES)
        tuned = tune_models(
            args.config, models, args.out / "tune", args.tune_trials, args.tune_epochs, overrides
        )
        budget = read_study(args.out / "tune" / models[0]).budget
        configs = (
            f"Every model first tuned with `crest tune` on the validation classes with the same "
            f"budget, {budget} each (TPE, median pruning, the test split never read; studies in "
            "`tune/<model>/`), then trained from its best config (`tune/<model>/best.yaml`)"
        )
    elif args.tuned:
        studies = [read_study(d) for d in args.tuned]
        tuned = {s.model: s.best for s in studies}
        models = models or list(tuned)
        budgets = sorted({s.budget for s in studies})
        listed = "; ".join(f"{s.model}: `{s.best}` ({s.budget})" for s in studies)
        configs = (
            f"Models trained from their tuned configs ({listed}); "
            + (
                f"the same tuning budget for each, {budgets[0]}"
                if len(budgets) == 1
                else "**unequal tuning budgets**"
            )
            + (
                "; the others from their authors' recipe for this dataset (docs/peers.md)"
                if set(models) - set(tuned)
                else ""
            )
        )
    models = models or list(MODEL_NAMES)
    runs = compare(
        args.config,
        models,
        args.out,
        args.seeds,
        overrides,
        selections=tuple(args.selections),
        tuned=tuned,
    )
    report = write_compare_report(args.out, runs, args.config or "synthetic", configs)
    print(md_table(HEADER, table_rows(runs)))
    print(f"report: {report}")
    return 0
