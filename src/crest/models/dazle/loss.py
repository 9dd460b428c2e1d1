"""DAZLE's training loss: cross-entropy plus λ times the self-calibration term (docs/peers.md)."""

from __future__ import annotations

import torch

from crest.losses.task import TaskLoss, total
from crest.models.contract import ModelOutput
from crest.settings.dazle import DazleConfig


class DazleLoss(TaskLoss):
    """L = L_CE + λ · L_CAL for a training task (``seen`` classes trained on, ``unseen`` classes
    seen only through their attribute vectors, by the self-calibration term).

    With the released code's forms (``ce_over=all``, ``sc_form=code``):
    L_CE = −mean_i log softmax_{c ∈ S ∪ U}(s_ic)[y_i] on the raw scores, and
    L_CAL = −log mean_i Σ_{u ∈ U} softmax_{c ∈ S ∪ U}(s_ic + b_c)[u], with b_c = +1 on unseen
    and −1 on seen classes (core/DAZLE.py, is_bias=True with its default bias 1).
    """

    def __init__(self, cfg: DazleConfig, seen: torch.Tensor, unseen: torch.Tensor) -> None:
        super().__init__(seen, unseen)
        self.cfg = cfg

    def __call__(
        self, out: ModelOutput, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        return total(
            self.calibrated_ce(out.logits, target, cfg.lambda_cal, cfg.ce_over, cfg.sc_form)
        )
