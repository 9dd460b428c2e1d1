"""TransZero's training loss (T9): cross-entropy, self-calibration and attribute regression, as in
the authors' ``model.py`` (``compute_loss``): L = L_CE + λ_SC L_SC + λ_AR L_AR."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crest.losses.task import TaskLoss, total
from crest.models.contract import ModelOutput
from crest.settings.transzero import TransZeroConfig


class TransZeroLoss(TaskLoss):
    """``loss(out, target, epoch)`` → (total, terms); the terms are weighted and sum to the total:
    ``ce`` = L_CE, ``sc`` = λ_SC · L_SC, ``reg`` = λ_AR · L_AR.

    L_CE: softmax cross-entropy over every class in play (the authors' ``is_conservative``) or
    over the seen classes (``ce_over=seen``). L_SC: the code form of :func:`arise_loss`, which is
    the authors' −log of the batch-mean unseen mass after adding +1 to unseen and −1 to seen
    scores. L_AR: mean squared error between ψ(x) and the true class's row of Z. The epoch is
    not used (no schedule in the authors' code).
    """

    def __init__(self, cfg: TransZeroConfig, seen: torch.Tensor, unseen: torch.Tensor) -> None:
        super().__init__(seen, unseen)
        self.cfg = cfg

    def __call__(
        self, out: ModelOutput, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        terms = self.calibrated_ce(out.logits, target, cfg.lambda_cal, cfg.ce_over)
        reg = F.mse_loss(out.embedding.float(), out.class_matrix[target].float())
        terms["reg"] = cfg.lambda_reg * reg
        return total(terms)
