"""Checkpoints: written atomically, read with ``weights_only=True`` (a checkpoint never runs code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crest.atomic import atomic_path, write_failure
from crest.config import Config, config_from_dict
from crest.data.schema.benchmark import Benchmark
from crest.data.schema.hdf5 import read_benchmark
from crest.device import choose_device
from crest.engine.export import is_export, load_export
from crest.errors import DataError
from crest.models import CrestModel, create_model
from crest.opinion import OpinionSettings


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save ``state`` (tensors, dicts, lists, numbers, strings only) to ``path`` via a rename."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save(state, tmp)
    except (RuntimeError, OSError) as exc:  # torch: "enforce fail at inline_container.cc"
        raise write_failure(path, exc) from exc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint file (``weights_only``), or a folder written by ``crest export``."""
    path = Path(path)
    if is_export(path):
        return load_export(path, map_location)
    if not path.exists():
        raise DataError(path, None, "checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise DataError(path, None, f"not a readable crest checkpoint: {exc}") from exc
    for key in ("model", "config", "epoch"):
        if key not in state:
            raise DataError(path, key, "missing; not a crest checkpoint")
    return state


@dataclass
class Restored:
    """A model rebuilt from a checkpoint, with the config and benchmark it was trained with."""

    state: dict[str, Any]
    cfg: Config
    bench: Benchmark
    data_path: Path
    model: CrestModel
    device: torch.device


def load_model(
    checkpoint: str | Path, data: str | Path | None = None, device: str | None = None
) -> Restored:
    """The one loader: ``checkpoint`` (a ``.pt`` file read with ``weights_only``, or a folder
    written by ``crest export``), its config and model rebuilt on ``device`` (default: the run's),
    in eval mode. ``data`` replaces the benchmark file the run trained on."""
    state = load_checkpoint(checkpoint)
    cfg = config_from_dict(state["config"])
    data_path = Path(data) if data is not None else Path(state["data"])
    bench = read_benchmark(data_path)
    assert bench.feature_shape is not None
    dev = choose_device(device or cfg.train.device)
    check_compatible(state, bench, data_path, Path(checkpoint))
    model = create_model(cfg, bench).to(dev)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise DataError(
            checkpoint, "model", f"does not fit the model built for {data_path}: {exc}"
        ) from exc
    return Restored(state, cfg, bench, data_path, model.eval(), dev)


def check_compatible(state: dict[str, Any], bench: Benchmark, data: Path, checkpoint: Path) -> None:
    """The benchmark has the feature width and class side the checkpoint's model was built for."""
    weights = state["model"]
    assert bench.feature_shape is not None
    embed = weights.get("region_embed.weight")
    if embed is not None and embed.shape[1] != bench.feature_shape[0]:
        raise DataError(
            data,
            "feature_map",
            f"{bench.feature_shape[0]} channels; the model in {checkpoint.name} was trained on "
            f"{embed.shape[1]}-channel features",
        )
    z = weights.get("class_matrix")
    if z is not None and tuple(z.shape) != (bench.num_classes, bench.num_attributes):
        raise DataError(
            data,
            "att",
            f"{bench.num_classes} classes × {bench.num_attributes} attributes; the model in "
            f"{checkpoint.name} was trained on {z.shape[0]} × {z.shape[1]}",
        )


def selected_opinion(state: dict[str, Any]) -> OpinionSettings:
    """How a run turns scores into its reported opinion (docs/method.md §6): fitted on the
    validation classes under `val`, else (and for checkpoints saved before it) the fixed values."""
    return OpinionSettings.from_dict(state.get("selection_state", {}).get("opinion"))


def selected_gamma(state: dict[str, Any], cfg: Config) -> float:
    """The γ a run's numbers are reported at: chosen on validation for `val`, else eval.gamma."""
    if cfg.train.selection == "val":
        return float(state.get("selection_state", {}).get("val_gamma", cfg.eval.gamma))
    return cfg.eval.gamma
