"""TransZero in the registry: its builder, its loss and the authors' released recipes
(``wandb_config/<dataset>_gzsl.yaml`` and the optimizer line of ``train_<dataset>.py`` of
github:shiming-chen/TransZero; docs/peers.md, section TransZero, tabulates them)."""

from __future__ import annotations

import numpy as np
import torch

from crest.config import Config
from crest.models.contract import ModelEntry
from crest.models.search_space import LEARNING_RATE, WEIGHT_DECAY, Param, SearchSpace
from crest.models.transzero.loss import TransZeroLoss
from crest.models.transzero.model import TransZeroModel


def build(cfg: Config, feature_dim: int, vectors: np.ndarray, z: np.ndarray) -> TransZeroModel:
    return TransZeroModel(cfg.transzero, feature_dim, vectors, z)


def loss(cfg: Config, seen: torch.Tensor, unseen: torch.Tensor) -> TransZeroLoss:
    return TransZeroLoss(cfg.transzero, seen, unseen)


def _recipe(
    optimizer: str,
    momentum: float,
    epochs: int,
    lambda_cal: float,
    lambda_reg: float,
    d: int,
    d_ff: int,
    dropout: float,
    self_attention: bool,
    normalize_vectors: bool,
    lr: float = 1e-4,
    batch_size: int = 50,
) -> tuple[str, ...]:
    return (
        f"train.optimizer={optimizer}",
        f"train.lr={lr:g}",
        "train.weight_decay=0.0001",
        f"train.momentum={momentum:g}",
        f"train.batch_size={batch_size}",
        f"train.epochs={epochs}",
        # the authors' forward adds +1 to unseen and −1 to seen scores at test time: γ = 2
        "eval.gamma=2.0",
        f"transzero.lambda_cal={lambda_cal:g}",
        f"transzero.lambda_reg={lambda_reg:g}",
        f"transzero.d={d}",
        f"transzero.d_ff={d_ff}",
        f"transzero.dropout={dropout:g}",
        f"transzero.self_attention={str(self_attention).lower()}",
        f"transzero.normalize_vectors={str(normalize_vectors).lower()}",
    )


#: what `crest tune` moves: the recipes' dropout is 0.3–0.5 (0.2 on the synthetic world),
#: λ_SC 0.25–2.0 and λ_AR 5e-4–5e-3 between datasets, hence log scales for the two weights
SEARCH_SPACE = SearchSpace(
    (
        LEARNING_RATE,
        WEIGHT_DECAY,
        Param("transzero.dropout", 0.0, 0.6, what="dropout of the residual branches and FFNs"),
        Param("transzero.lambda_cal", 0.01, 5.0, log=True, what="λ_SC, self-calibration weight"),
        Param("transzero.lambda_reg", 1e-4, 0.05, log=True, what="λ_AR, attribute regression"),
    )
)

ENTRY = ModelEntry(
    build=build,
    loss=loss,
    search_space=SEARCH_SPACE,
    paper="TransZero: Attribute-guided Transformer for Zero-Shot Learning, Chen et al., AAAI 2022",
    recipes={
        # train_cub.py: Adam(lr 1e-4, weight decay 1e-4); cub_gzsl.yaml
        "cub": _recipe("adam", 0.0, 200, 0.3, 0.005, 300, 512, 0.4, True, False),
        # train_sun.py: SGD(lr 1e-4, weight decay 1e-4, momentum 0.9); sun_gzsl.yaml
        "sun": _recipe("sgd", 0.9, 400, 0.25, 0.001, 128, 2048, 0.3, False, False),
        # train_awa2.py: SGD(lr 1e-4, weight decay 1e-4, momentum 0); awa2_gzsl.yaml
        "awa2": _recipe("sgd", 0.0, 200, 2.0, 0.0005, 300, 512, 0.5, True, True),
        # not the authors': the 2-core CPU demo world (48 attributes, 7×7 grid of 128 channels)
        "synthetic": _recipe(
            "adam", 0.0, 15, 0.3, 0.005, 128, 256, 0.2, True, False, lr=1e-3, batch_size=50
        ),
    },
)
