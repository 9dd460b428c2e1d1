"""`crest bench`: speed and efficiency of one training step on this device."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crest.atomic import write_text_atomic
from crest.cli.output import add_overrides
from crest.perf.bench import SHAPES, as_table, profile_table, run_bench, to_dict


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench", help="time a CREST training step (FLOPs, MFU, memory, inference, streaming)"
    )
    p.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="cub",
        help="benchmark shape (default cub: 14x14)",
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
    add_overrides(p, "override the shape's config (e.g. model.d=128)")
    p.add_argument("--json-out", type=Path)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
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
    )
    print(as_table(result))
    if result.profile:
        print(f"\ntop {len(result.profile)} operators of one training step (self time):")
        print(profile_table(result.profile))
    if args.json_out:
        write_text_atomic(args.json_out, json.dumps(to_dict(result), indent=2))
    return 0
