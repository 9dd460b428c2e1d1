"""DAZLE in the registry: its builder, its loss and its recipes per dataset.

The cub, sun and awa2 recipes are the authors' released notebooks (hbdat/cvpr20_DAZLE,
``notebook/DAZLE_{CUB,SUN,AWA2}.ipynb``): RMSprop, learning rate 1e-4, weight decay 1e-4,
batches of 50, λ = 0.1; momentum 0.9 on CUB and SUN, 0 on AwA2; 20 epochs on CUB and AwA2, 100
on SUN. SUN and AwA2 draw class-balanced batches of one image per class (their loaders'
is_balance=True), CUB uniform batches. At test time the model's scores carry +1 on unseen and
−1 on seen classes, a built-in γ = 2 (eval.gamma). The synthetic recipe is not the authors'
(see docs/peers.md).
"""

from __future__ import annotations

import numpy as np
import torch

from crest.config import Config
from crest.models.contract import ModelEntry
from crest.models.dazle.loss import DazleLoss
from crest.models.dazle.model import DazleModel
from crest.models.search_space import LEARNING_RATE, WEIGHT_DECAY, Param, SearchSpace


def build(cfg: Config, feature_dim: int, vectors: np.ndarray, z: np.ndarray) -> DazleModel:
    return DazleModel(cfg.dazle, feature_dim, vectors, z)


def loss(cfg: Config, seen: torch.Tensor, unseen: torch.Tensor) -> DazleLoss:
    return DazleLoss(cfg.dazle, seen, unseen)


_AUTHORS = (
    "train.optimizer=rmsprop",
    "train.lr=0.0001",
    "train.weight_decay=0.0001",
    "train.batch_size=50",
    "eval.gamma=2.0",
    "dazle.lambda_cal=0.1",
    "dazle.ce_over=all",
    "dazle.sc_form=code",
    "dazle.trainable_vectors=true",
)

#: what `crest tune` moves: DAZLE has no dropout; its one loss weight is λ (0.1 in every recipe)
SEARCH_SPACE = SearchSpace(
    (
        LEARNING_RATE,
        WEIGHT_DECAY,
        Param("dazle.lambda_cal", 0.0, 1.0, what="λ, self-calibration weight (0.1)"),
    )
)

ENTRY = ModelEntry(
    build=build,
    loss=loss,
    paper="DAZLE, Huynh & Elhamifar, CVPR 2020 (docs/peers.md)",
    search_space=SEARCH_SPACE,
    recipes={
        "cub": (
            *_AUTHORS,
            "train.momentum=0.9",
            "train.epochs=20",
            "data.sampler=uniform",
            "dazle.normalize_vectors=false",
            "dazle.attribute_attention=true",
        ),
        "sun": (
            *_AUTHORS,
            "train.momentum=0.9",
            "train.epochs=100",
            "data.sampler=pk",
            "data.pk_images=1",
            "dazle.normalize_vectors=false",
            "dazle.attribute_attention=false",
        ),
        "awa2": (
            *_AUTHORS,
            "train.momentum=0.0",
            "train.epochs=20",
            "data.sampler=pk",
            "data.pk_images=1",
            "dazle.normalize_vectors=true",
            "dazle.attribute_attention=true",
        ),
        # not the authors': the 2-core CPU demo world (48 attributes, 40 seen classes, 1,879
        # training images of 128 × 7 × 7); reasoning in docs/peers.md
        "synthetic": (
            "train.optimizer=rmsprop",
            "train.lr=0.001",
            "train.weight_decay=0.0001",
            "train.momentum=0.9",
            "train.batch_size=50",
            "train.epochs=15",
            "eval.gamma=2.0",
            "data.sampler=uniform",
            "dazle.lambda_cal=0.1",
        ),
    },
)
