"""CREST in the registry: its builder, its loss and its recipes (the packaged dataset configs
are CREST's own recipes already, so no overrides are needed)."""

from __future__ import annotations

import numpy as np
import torch

from crest.config import Config
from crest.models.contract import ModelEntry
from crest.models.crest.loss import CrestLoss
from crest.models.crest.model import CrestModel


def build(cfg: Config, feature_dim: int, vectors: np.ndarray, z: np.ndarray) -> CrestModel:
    return CrestModel(cfg.model, feature_dim, vectors, z)


def loss(cfg: Config, seen: torch.Tensor, unseen: torch.Tensor) -> CrestLoss:
    return CrestLoss(cfg.loss, seen, unseen, cfg.model.fusion)


ENTRY = ModelEntry(build=build, loss=loss, paper="CREST, ACM MM 2024 (docs/method.md)")
