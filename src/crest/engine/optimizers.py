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


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The share of ``train.lr`` at optimizer step ``step`` (0-based) of a phase: rises linearly
    from 1/N to 1 over the first N = ``warmup_steps`` steps, then stays at 1."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def set_warmup_lr(optimizer: torch.optim.Optimizer, train: TrainConfig, step: int) -> None:
    """Set every parameter group's rate for ``step`` (a function of the step alone, so a resumed
    run continues the same schedule without saved scheduler state)."""
    lr = train.lr * warmup_factor(step, train.warmup_steps)
    for group in optimizer.param_groups:
        group["lr"] = lr
