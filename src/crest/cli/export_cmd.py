"""`crest export`: a trained model as model.safetensors + config.json (no pickle)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.engine.checkpoint import load_checkpoint
from crest.engine.export import WEIGHTS, checkpoint_to_export, export_state


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a trained model as model.safetensors + config.json (loads like a checkpoint)",
    )
    p.add_argument(
        "source",
        type=Path,
        help="a run folder (its reported checkpoint is exported) or a checkpoint file",
    )
    p.add_argument("--out", type=Path, required=True, help="new folder to write")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    checkpoint = checkpoint_to_export(args.source)
    out = export_state(load_checkpoint(checkpoint), args.out)
    print(f"exported {checkpoint} → {out / WEIGHTS} (+ config.json)")
    return 0
