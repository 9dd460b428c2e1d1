"""Fit the reported opinion on the validation classes (docs/method.md §6.1): the outputs of the
validation phase's chosen model, train classes as seen and validation classes as pseudo-unseen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from crest.data.schema.feature_cache import FeatureCache
from crest.engine.evaluate import Outputs, collect_outputs, play_outputs
from crest.models.contract import ZSLModel
from crest.opinion import OpinionSettings, fit_opinion


def fit_from_outputs(
    seen_out: Outputs,
    unseen_out: Outputs,
    seen: np.ndarray,
    unseen: np.ndarray,
    gamma: float,
    mu: float | None,
    error_model: bool = True,
) -> OpinionSettings:
    """T, b (and the error model) from validation outputs at the validated γ and μ."""
    joined = play_outputs(seen_out, unseen_out, seen, unseen, mu)
    return fit_opinion(
        joined.scores,
        joined.target,
        joined.unseen_column,
        gamma,
        joined.branch_scores,
        joined.vacuity,
        error_model=error_model,
    )


def fit_on_validation(
    model: ZSLModel,
    data_path: str | Path,
    labels: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray],
    classes: tuple[np.ndarray, np.ndarray],
    gamma: float,
    mu: float | None,
    device: torch.device,
    batch_size: int = 256,
    precision: str = "fp32",
    cache: FeatureCache | None = None,
    error_model: bool = True,
) -> OpinionSettings:
    """Run ``model`` (the validation phase's chosen epoch) over the validation rows (seen, unseen)
    and fit the reported opinion over the validation protocol's ``classes`` (seen, unseen)."""
    seen, unseen = classes
    play = np.concatenate([seen, unseen])
    common = {
        "device": device,
        "batch_size": batch_size,
        "precision": precision,
        "classes": play,
        "cache": cache,
    }
    seen_out = collect_outputs(model, data_path, rows[0], labels, **common)  # type: ignore[arg-type]
    unseen_out = collect_outputs(model, data_path, rows[1], labels, **common)  # type: ignore[arg-type]
    return fit_from_outputs(seen_out, unseen_out, seen, unseen, gamma, mu, error_model)
