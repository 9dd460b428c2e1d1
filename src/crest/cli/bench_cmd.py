"""`crest bench`: speed and efficiency of one training step on this device."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crest.atomic import write_text_atomic
from crest.cli.output import add_overrides
from crest.errors import CrestError
from crest.models.registry import REGISTRY, recipe
from crest.perf.bench import SHAPES, as_table, profile_table, run_bench, to_dict
from crest.perf.epochs import epochs_table, split_run, split_table, time_epochs
from crest.perf.epochs import to_dicts as epoch_dicts
from crest.perf.flops import breakdown_table


def register(sub: Any) -> None:
    # `perf`: "benchmark" names the dataset files; `bench` stays as the name of earlier releases
    p = sub.add_parser(
        "perf",
        aliases=["bench"],
        help="time a training step of CREST or a peer (FLOPs, MFU, memory, inference, streaming)",
    )
    p.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="cub",
        help="dataset shape to time (default cub: 14x14)",
    )
    p.add_argument(
        "--model",
        choices=list(REGISTRY),
        help="time this registered model with its recipe for the shape (default: CREST)",
    )
    p.add_argument(
        "--flops",
        action="store_true",
        help="also print the step's FLOPs by part (forward per module, loss, backward)",
    )
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument(
        "--steps",
        type=int,
        default=5,
        help="timed rounds, each of one inference batch, one training step and a matmul-peak "
        "measurement taken in turn (medians reported)",
    )
    p.add_argument("--inference-batch", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--data", type=Path, help="benchmark file to measure feature streaming from")
    p.add_argument(
        "--compile", action="store_true", help="run the model through torch.compile (inductor)"
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="profile one training step and print its N most expensive operators",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=0,
        metavar="N",
        help="with --data: also train N epochs on the file under each --cache mode (real "
        "trainer, evaluation every epoch) and project a 200-epoch CUB run from the last epoch",
    )
    p.add_argument(
        "--split",
        type=int,
        default=0,
        metavar="N",
        help="with --data: train one val-protocol run of N validation epochs (opinion fit, "
        "retraining on trainval) and split its time into steps, data, evaluation, opinion fit, "
        "checkpoints and feature caching",
    )
    p.add_argument(
        "--cache",
        nargs="+",
        default=["stream", "ram", "device"],
        choices=["stream", "ram", "device", "auto"],
        help="data.cache modes timed by --epochs",
    )
    add_overrides(p, "override the shape's config (e.g. model.d=128)")
    p.add_argument("--json-out", type=Path)
    p.set_defaults(func=cmd_bench)


def _training_overrides(args: argparse.Namespace) -> list[str]:
    """The model's recipe for the shape's config, the precision and device, then --set."""
    return [
        *(recipe(args.model, SHAPES[args.shape].config) if args.model else ()),
        f"train.precision={args.precision}",
        f"train.device={args.device}",
        *args.overrides,
    ]


def cmd_bench(args: argparse.Namespace) -> int:
    if args.epochs > 0 and args.data is None:
        raise CrestError("crest bench --epochs needs --data FILE (a benchmark file to train on)")
    if args.split > 0 and args.data is None:
        raise CrestError("crest bench --split needs --data FILE (a benchmark file to train on)")
    result = run_bench(
        args.shape,
        args.precision,
        args.batch,
        args.steps,
        inference_batch=args.inference_batch,
        device=args.device,
        data=args.data,
        model_overrides=args.overrides,
        compile=args.compile,
        profile_rows=args.profile,
        model_name=args.model,
        breakdown=args.flops,
    )
    print(as_table(result))
    if result.flops_breakdown:
        print("\nFLOPs of one training step by part:")
        print(breakdown_table(result.flops_breakdown))
    if result.profile:
        print(f"\ntop {len(result.profile)} operators of one training step (self time):")
        print(profile_table(result.profile))
    report = to_dict(result)
    if args.epochs > 0 and args.data is not None:
        timings = time_epochs(
            args.data,
            args.cache,
            args.epochs,
            config=SHAPES[args.shape].config,
            overrides=_training_overrides(args),
        )
        print(f"\n{args.epochs} epochs on {args.data} per data.cache mode:")
        print(epochs_table(timings))
        report["epochs"] = epoch_dicts(timings)
    if args.split > 0 and args.data is not None:
        split = split_run(
            args.data,
            args.split,
            config=SHAPES[args.shape].config,
            overrides=_training_overrides(args),
        )
        print(f"\none val-protocol run of {args.split} validation epochs on {args.data}, split:")
        print(split_table([split]))
        report["split"] = {
            **asdict(split),
            "around_steps_share": split.around_steps_share,
            "epoch_around_steps_share": split.epoch_around_steps_share,
        }
    if args.json_out:
        write_text_atomic(args.json_out, json.dumps(report, indent=2))
    return 0
