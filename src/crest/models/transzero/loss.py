"""TransZero's training loss (T9): cross-entropy, self-calibration and attribute regression, as in
the authors' ``model.py`` (``compute_loss``): L = L_CE + λ_SC L_SC + λ_AR L_AR."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crest.losses.arise import arise_loss
from crest.models.contract import ModelOutput
from crest.settings.transzero import TransZeroConfig


class TransZeroLoss:
    """``loss(out, target, epoch)`` → (total, terms); the terms are weighted and sum to the total:
    ``ce`` = L_CE, ``sc`` = λ_SC · L_SC, ``reg`` = λ_AR · L_AR.

    L_CE: softmax cross-entropy over every class in play (the authors' ``is_conservative``) or
    over the seen classes (``ce_over=seen``). L_SC: the code form of :func:`arise_loss`, which is
    the authors' −log of the batch-mean unseen mass after adding +1 to unseen and −1 to seen
    scores. L_AR: mean squared error between ψ(x) and the true class's row of Z. The epoch is
    not used (no schedule in the authors' code).
    """

    def __init__(self, cfg: TransZeroConfig, seen: torch.Tensor, unseen: torch.Tensor) -> None:
        self.cfg = cfg
        self.seen = seen.long()
        self.unseen = unseen.long()

    def to(self, device: torch.device) -> TransZeroLoss:
        self.seen, self.unseen = self.seen.to(device), self.unseen.to(device)
        return self

    def __call__(
        self, out: ModelOutput, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        ce, sc = arise_loss(
            out.logits.float(),
            target,
            self.seen,
            self.unseen,
            cfg.lambda_cal,
            ce_over=cfg.ce_over,
            sc_form="code",
        )
        reg = F.mse_loss(out.embedding.float(), out.class_matrix[target].float())
        terms = {"ce": ce, "sc": cfg.lambda_cal * sc, "reg": cfg.lambda_reg * reg}
        total = torch.stack(list(terms.values())).sum()
        return total, {k: v.detach() for k, v in terms.items()}
