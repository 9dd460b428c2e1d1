"""An exponential moving average of a model's weights (docs/method.md §5, ``train.ema_decay``).

When it is on, the average is the model that is evaluated, chosen, checkpointed as ``model`` and
reported; the trained weights ride along in the checkpoint (``trained_model``) so that a resumed
run goes on exactly where it stopped. Every registered model gets it the same way.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from crest.models.contract import ZSLModel


class WeightAverage:
    """θ̄ ← d·θ̄ + (1 − d)·θ after every optimizer step, with d = min(decay, (1 + n)/(10 + n))
    at the n-th update, so that the first steps' random weights fade quickly; buffers are
    copied, not averaged."""

    def __init__(self, model: ZSLModel, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay must be in (0, 1) to average; got {decay}")
        self.decay = decay
        self.updates = 0
        self.module: ZSLModel = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: ZSLModel) -> None:
        self.updates += 1
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        averaged: list[torch.Tensor] = list(self.module.parameters())
        trained = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(averaged, trained, 1.0 - d)
        for kept, current in zip(self.module.buffers(), model.buffers(), strict=True):
            kept.copy_(current)

    def state(self) -> dict[str, Any]:
        return {"updates": self.updates, "decay": self.decay}

    def load(self, weights: dict[str, Any], state: dict[str, Any]) -> None:
        self.module.load_state_dict(weights)
        self.updates = int(state["updates"])
