"""The optimizer a recipe names (``train.optimizer``): Adam for CREST, RMSprop for DAZLE and MSDN
as their released code trains them, SGD with momentum."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from crest.config import TrainConfig


def build_optimizer(
    train: TrainConfig, parameters: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    params = [p for p in parameters if p.requires_grad]
    if train.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=train.lr, weight_decay=train.weight_decay, momentum=train.momentum
        )
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=train.lr, weight_decay=train.weight_decay, momentum=train.momentum
        )
    return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay)
