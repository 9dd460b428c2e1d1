"""Load a finished run: its config, benchmark, model (from a checkpoint) and recorded metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crest.config import Config
from crest.data.benchmark import Benchmark
from crest.engine.checkpoint import restore
from crest.errors import DataError
from crest.models import CrestModel


@dataclass
class LoadedRun:
    folder: Path
    cfg: Config
    bench: Benchmark
    data_path: Path
    model: CrestModel
    state: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    device: torch.device


def pick_checkpoint(folder: Path, selection: str) -> Path:
    """The checkpoint the run's reported numbers come from."""
    ckpt = folder / "checkpoints"
    if selection == "test-oracle" and (ckpt / "best_h_test_oracle.pt").exists():
        return ckpt / "best_h_test_oracle.pt"
    return ckpt / "last.pt"


def load_run(
    folder: str | Path, checkpoint: str | Path | None = None, data: str | Path | None = None
) -> LoadedRun:
    folder = Path(folder)
    metrics_path = folder / "metrics.json"
    if not metrics_path.exists():
        raise DataError(folder, "metrics.json", "missing; is this a finished crest run folder?")
    metrics = json.loads(metrics_path.read_text())
    history_path = folder / "metrics.jsonl"
    history = (
        [json.loads(x) for x in history_path.read_text().splitlines() if x.strip()]
        if history_path.exists()
        else []
    )
    path = (
        Path(checkpoint)
        if checkpoint
        else pick_checkpoint(folder, str(metrics.get("selection", "final")))
    )
    r = restore(path, data=data)
    state, cfg, bench, data_path, model, device = (
        r.state,
        r.cfg,
        r.bench,
        r.data_path,
        r.model,
        r.device,
    )
    return LoadedRun(folder, cfg, bench, data_path, model, state, metrics, history, device)
