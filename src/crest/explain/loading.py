"""Load a finished run: its config, benchmark, model (from a checkpoint) and recorded metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crest.config import Config, config_from_dict
from crest.data.benchmark import Benchmark
from crest.data.h5 import read_benchmark
from crest.engine.checkpoint import load_checkpoint
from crest.engine.device import choose_device
from crest.errors import DataError
from crest.models import CrestModel, build_model


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
    state = load_checkpoint(path)
    cfg = config_from_dict(state["config"])
    data_path = Path(data) if data else Path(state["data"])
    bench = read_benchmark(data_path)
    assert bench.feature_shape is not None
    device = choose_device(cfg.train.device)
    model = build_model(cfg.model, bench.feature_shape[0], bench.w2v_att, bench.class_matrix()).to(
        device
    )
    model.load_state_dict(state["model"])
    model.eval()
    return LoadedRun(folder, cfg, bench, data_path, model, state, metrics, history, device)
