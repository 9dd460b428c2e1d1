"""CREST in the registry: its builder, its loss and its recipes (the packaged dataset configs
are CREST's own recipes already, so no overrides are needed)."""

from __future__ import annotations

import numpy as np
import torch

from crest.config import Config
from crest.models.contract import ModelEntry
from crest.models.crest.loss import CrestLoss
from crest.models.crest.model import CrestModel
from crest.models.search_space import LEARNING_RATE, WEIGHT_DECAY, Param, SearchSpace


def build(cfg: Config, feature_dim: int, vectors: np.ndarray, z: np.ndarray) -> CrestModel:
    return CrestModel(cfg.model, feature_dim, vectors, z)


def loss(cfg: Config, seen: torch.Tensor, unseen: torch.Tensor) -> CrestLoss:
    return CrestLoss(cfg.loss, seen, unseen, cfg.model.fusion)


#: what `crest tune` searches for CREST; every range holds the packaged configs' values
#: (docs/method.md §7.1 and §7.3)
SEARCH_SPACE = SearchSpace(
    (
        LEARNING_RATE,
        WEIGHT_DECAY,
        Param(
            "model.dropout", 0.0, 0.6, what="dropout (CUB 0.4, SUN 0.3, AWA2 0.5, synthetic 0.2)"
        ),
        Param(
            "loss.lambda_cal", 0.0, 1.0, what="λ_CAL, self-calibration weight (0.2; Fig. 8: 0–0.8)"
        ),
        Param("loss.lambda_edl", 1e-5, 0.1, log=True, what="λ_EDL, evidential loss weight (0.001)"),
        Param("loss.vicl_tau", 0.03, 1.0, log=True, what="τ, VICL temperature (0.1)"),
        Param(
            "loss.branch_supervision",
            0.0,
            2.0,
            what="weight of each branch's own ARISE loss (1.0; the paper's 0)",
        ),
    )
)


ENTRY = ModelEntry(
    build=build,
    loss=loss,
    paper="CREST, ACM MM 2024 (docs/method.md)",
    search_space=SEARCH_SPACE,
)
