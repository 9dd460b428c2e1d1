"""Load a finished run: its config, benchmark, model (from a checkpoint) and recorded metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crest.config import Config
from crest.data.schema.benchmark import Benchmark
from crest.engine.checkpoint import load_model
from crest.errors import DataError
from crest.models.contract import ZSLModel
from crest.run_folder import RunFolder, refuse_validation_only


@dataclass
class LoadedRun:
    folder: Path
    cfg: Config
    bench: Benchmark
    data_path: Path | None
    model: ZSLModel
    state: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    device: torch.device


def load_run(
    folder: str | Path,
    checkpoint: str | Path | None = None,
    data: str | Path | None = None,
    allow_other_classes: bool = False,
) -> LoadedRun:
    run = RunFolder(folder)
    if not run.is_finished():
        raise DataError(
            run.root, RunFolder.METRICS, "missing; is this a finished crest run folder?"
        )
    metrics = run.read_metrics()
    refuse_validation_only(run.root, metrics)
    path = (
        Path(checkpoint)
        if checkpoint
        else run.reported_checkpoint(str(metrics.get("selection", "final")))
    )
    r = load_model(path, data=data, images=True, allow_other_classes=allow_other_classes)
    history = run.read_history()
    return LoadedRun(
        run.root, r.cfg, r.bench, r.data_path, r.model, r.state, metrics, history, r.device
    )
