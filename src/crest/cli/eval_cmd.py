"""`crest eval`: test metrics of a checkpoint or an exported model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from crest.cli.output import print_metrics
from crest.engine.evaluate import evaluate_checkpoint


def register(sub: Any) -> None:
    e = sub.add_parser("eval", help="evaluate a checkpoint on its benchmark's test split")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("--gamma", type=float, help="calibration γ (default: the one the run selected)")
    e.add_argument("--data", type=Path, help="benchmark file (default: the one the run trained on)")
    e.add_argument(
        "--allow-other-classes",
        action="store_true",
        help="score a --data file whose class side (class names, class matrix, seen/unseen "
        "split) differs from the model's; each difference is reported",
    )
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    metrics = evaluate_checkpoint(
        args.checkpoint,
        gamma=args.gamma,
        data=args.data,
        allow_other_classes=args.allow_other_classes,
    )
    if args.json:
        print(
            json.dumps(
                {k: v for k, v in metrics.items() if not isinstance(v, np.ndarray)}, indent=2
            )
        )
    else:
        print_metrics(metrics)
    return 0
