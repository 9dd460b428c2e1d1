"""Checkpoints: written atomically, read with ``weights_only=True`` (a checkpoint never runs code)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crest.atomic import atomic_path, write_failure
from crest.config import Config, config_from_dict
from crest.data.schema.benchmark import Benchmark
from crest.data.schema.class_side import class_side_benchmark
from crest.data.schema.hdf5 import read_benchmark
from crest.device import choose_device
from crest.engine.export import is_export, load_export
from crest.errors import DataError
from crest.models import ZSLModel, create_model
from crest.opinion import OpinionSettings
from crest.safe_load import load_torch

log = logging.getLogger(__name__)


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
    state = load_torch(path, None, map_location)
    if not isinstance(state, dict):
        raise DataError(path, None, f"holds a {type(state).__name__}; not a crest checkpoint")
    for key in ("model", "config", "epoch"):
        if key not in state:
            raise DataError(path, key, "missing; not a crest checkpoint")
    return state


@dataclass
class Restored:
    """A model rebuilt from a checkpoint, with its config and class side.

    ``bench`` is the benchmark file when one was read (``data`` given, or the training file still
    there and ``images`` asked for), else the class side stored in the checkpoint (no images);
    ``data_path`` is the file read, or None."""

    state: dict[str, Any]
    cfg: Config
    bench: Benchmark
    data_path: Path | None
    model: ZSLModel
    device: torch.device


def load_model(
    checkpoint: str | Path,
    data: str | Path | None = None,
    device: str | None = None,
    images: bool = False,
    allow_other_classes: bool = False,
) -> Restored:
    """The one loader: ``checkpoint`` (a ``.pt`` file read with ``weights_only``, or a folder
    written by ``crest export``), its config and model rebuilt on ``device`` (default: the run's),
    in eval mode.

    The class side comes from the checkpoint itself; the benchmark file is read only when
    ``data`` is given or ``images`` are needed (evaluation, explain: then the training file, if
    no ``data``). A checkpoint saved before class sides were stored reads its training file.
    A ``data`` file whose class side differs from the model's (class names, class matrix,
    seen/unseen split) is refused unless ``allow_other_classes``; then each difference is logged.
    """
    state = load_checkpoint(checkpoint)
    cfg = config_from_dict(state["config"])
    side = state.get("class_side")
    data_path: Path | None = None
    if data is not None:
        data_path = Path(data)
    elif images or side is None:
        data_path = Path(state["data"])
        if not data_path.exists():
            why = "its images" if side is not None else "its class side (saved before crest 0.19)"
            raise DataError(
                checkpoint,
                "data",
                f"the training file {data_path} is not there, and this needs {why}; "
                "pass --data FILE (a benchmark file with the same classes)",
            )
    if data_path is not None:
        bench = read_benchmark(data_path)
    else:
        assert side is not None
        bench = class_side_benchmark(side)
    assert bench.feature_shape is not None
    dev = choose_device(device or cfg.train.device)
    check_compatible(state, bench, data_path or Path(checkpoint), Path(checkpoint))
    if data is not None:
        differences = class_side_differences(state, bench)
        if differences and not allow_other_classes:
            raise DataError(
                data,
                "class side",
                f"differs from the one the model in {Path(checkpoint).name} was trained on "
                f"({'; '.join(differences)}); its numbers would not be this model's on its own "
                "classes. Pass --allow-other-classes to score it anyway",
            )
        for difference in differences:
            log.warning("%s: %s (scored anyway: --allow-other-classes)", data, difference)
    model = create_model(cfg, bench).to(dev)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise DataError(
            checkpoint, "model", f"does not fit the model built for {data_path}: {exc}"
        ) from exc
    return Restored(state, cfg, bench, data_path, model.eval(), dev)


def class_side_differences(state: dict[str, Any], bench: Benchmark) -> list[str]:
    """How ``bench``'s class side differs from the one the checkpoint's model was trained on
    (empty: the same). Checkpoints saved before class sides were stored compare the class
    matrix the model keeps (every model's ``class_matrix`` buffer) only."""
    found = []
    z = state["model"].get("class_matrix")
    if z is not None and tuple(z.shape) == (bench.num_classes, bench.num_attributes):
        same = np.isclose(z.float().cpu().numpy(), bench.class_matrix(), atol=1e-5).all(axis=1)
        if not same.all():
            found.append(f"class attribute matrix: {int((~same).sum())} of {len(z)} rows differ")
    side = state.get("class_side")
    if side is None:
        return found
    names = list(side["class_names"])
    if names != list(bench.class_names):
        other = sum(a != b for a, b in zip(names, bench.class_names, strict=False))
        found.append(
            f"class names: {other} of {len(names)} differ (e.g. '{_first_diff(names, bench.class_names)}')"
        )
    for key, mine in (("seen", bench.seen_classes), ("unseen", bench.unseen_classes)):
        theirs = np.asarray(side[f"{key}_classes"])
        if not np.array_equal(np.sort(theirs), np.sort(np.asarray(mine))):
            found.append(
                f"{key} classes: {len(mine)} here, {len(theirs)} at training, not the same ids"
            )
    return found


def _first_diff(a: list[str], b: list[str]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"{x}' at training, '{y}' here"
    return f"{len(a)} names at training, {len(b)} here"


def trained_feature_width(state: dict[str, Any]) -> int | None:
    """Feature channels the checkpoint's model was trained on: from its class side, or, for a
    CREST checkpoint saved before class sides were stored, from its region projection."""
    side = state.get("class_side")
    if side is not None:
        return int(side["feature_shape"][0])
    embed = state["model"].get("region_embed.weight")  # legacy CREST checkpoints only
    return None if embed is None else int(embed.shape[1])


def check_compatible(state: dict[str, Any], bench: Benchmark, data: Path, checkpoint: Path) -> None:
    """The benchmark has the feature width and class side the checkpoint's model was built for."""
    assert bench.feature_shape is not None
    width = trained_feature_width(state)
    if width is not None and width != bench.feature_shape[0]:
        raise DataError(
            data,
            "feature_map",
            f"{bench.feature_shape[0]} channels; the model in {checkpoint.name} was trained on "
            f"{width}-channel features",
        )
    z = state["model"].get("class_matrix")  # every model keeps Z as this buffer (the contract)
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
