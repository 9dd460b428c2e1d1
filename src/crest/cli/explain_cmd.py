"""`crest explain RUN`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.cli.output import opinion_line
from crest.metrics import Key
from crest.run_folder import RunFolder


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help="attention maps, localization, uncertainty, t-SNE and γ curve of a run"
    )
    p.add_argument("run", type=Path, help="a finished run folder")
    p.add_argument(
        "--images", type=int, default=4, help="test images for the attention maps (default 4)"
    )
    p.add_argument("--rows", type=int, nargs="*", help="file rows to draw instead of sampled ones")
    p.add_argument("--top-k", type=int, default=5, help="attributes per image (default 5)")
    p.add_argument(
        "--image-root", type=Path, help="folder the benchmark's image_files are relative to"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--data",
        type=Path,
        help="benchmark file to read the test images from (default: the training file)",
    )
    p.add_argument(
        "--allow-other-classes",
        action="store_true",
        help="explain on a --data file whose class side differs from the model's",
    )
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from crest.explain.run import explain_run  # matplotlib: only when this command runs

    n = explain_run(
        args.run,
        images=args.images,
        top_k=args.top_k,
        image_root=args.image_root,
        rows=args.rows,
        seed=args.seed,
        data=args.data,
        allow_other_classes=args.allow_other_classes,
    )
    run = RunFolder(args.run)
    print(f"figures in {run.figures}, report {run.report_file}")
    print(opinion_line(n))
    print(f"AUSUC {100 * n[Key.AUSUC]:.1f}")
    if "localization" in n:
        loc = n["localization"]
        print(
            f"localization: attention {100 * loc['vgt']:.1f}%  uniform reference {100 * loc['uniform_reference']:.1f}%"
            f"  ({loc['pairs']} pairs)"
        )
    return 0
