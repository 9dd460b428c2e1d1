"""`crest baseline [FILE]`: the floor every CREST number is compared with."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crest.atomic import write_text_atomic
from crest.baseline import BaselineResult, run_baseline
from crest.cli.output import table
from crest.data.synthetic.worlds import default_world


def register(sub: Any) -> None:
    p = sub.add_parser(
        "baseline", help="ridge regression from pooled regions to attributes (a floor to beat)"
    )
    p.add_argument(
        "file", type=Path, nargs="?", help="benchmark file (default: the embedded synthetic world)"
    )
    p.add_argument("--ridge", type=float, default=1.0, help="ridge penalty λ (default 1.0)")
    p.add_argument("--json-out", type=Path, help="also write the result as JSON here")
    p.set_defaults(func=cmd_baseline)


def cmd_baseline(args: argparse.Namespace) -> int:
    path = args.file or default_world()
    r = run_baseline(path, ridge=args.ridge)
    print_baseline(path, r)
    if args.json_out:
        write_text_atomic(args.json_out, json.dumps(r.to_dict(), indent=2))
    return 0


def print_baseline(path: Path, r: BaselineResult) -> None:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    print(f"baseline on {path}")
    print(
        table(
            [
                [
                    pct(r.czsl_acc),
                    pct(r.gzsl_u),
                    pct(r.gzsl_s),
                    pct(r.gzsl_h),
                    f"{r.gamma:.3f}",
                    pct(r.ausuc),
                ]
            ],
            ["CZSL", "U", "S", "H", "γ", "AUSUC"],
        )
    )
    print(
        f"γ: {r.gamma_selection}; epoch: closed form (no epochs). Chance CZSL: {pct(r.chance_czsl)}%."
    )
