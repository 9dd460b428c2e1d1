"""The total loss of Eq. 17, term by term, with the Table 2 switches."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crest.config import LossConfig
from crest.evidential import conflict_degree, edl_loss, evidence_from_logits, fuse
from crest.losses.arise import class_positions
from crest.losses.digs import digs_loss
from crest.losses.task import TaskLoss, total
from crest.losses.vicl import vicl_loss
from crest.models.crest.model import CrestOutput


class CrestLoss(TaskLoss):
    """L = L_ARISE + L_VICL + L_DIGS + λ_EDL · L_EDL for a training task (seen, unseen classes).

    ``seen`` are the classes trained on; ``unseen`` are only used by the self-calibration term,
    which needs their attribute vectors, never their images.
    """

    def __init__(
        self, cfg: LossConfig, seen: torch.Tensor, unseen: torch.Tensor, fusion: str = "average"
    ) -> None:
        super().__init__(seen, unseen)
        self.cfg = cfg
        self.fusion = fusion

    def __call__(
        self, out: CrestOutput, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its terms (detached 0-d tensors on the loss's device: reading them
        is left to the caller, once per epoch, so a step never waits for the device)."""
        cfg = self.cfg
        terms = self.calibrated_ce(out.logits, target, cfg.lambda_cal, cfg.ce_over, cfg.sc_form)
        if cfg.branch_supervision > 0 and out.logits_vgt is not None and out.logits_agt is not None:
            for name, branch in (("vgt", out.logits_vgt), ("agt", out.logits_agt)):
                b = self.calibrated_ce(branch, target, cfg.lambda_cal, cfg.ce_over, cfg.sc_form)
                terms[f"arise_{name}"] = cfg.branch_supervision * (b["ce"] + b["sc"])
        if cfg.use_vicl and out.scores_vgt is not None:
            terms["vicl"] = vicl_loss(out.scores_vgt, target, cfg.vicl_tau, cfg.vicl_delta)
        if cfg.use_digs and out.bank_query is not None and out.bank_patterns is not None:
            terms["digs"] = digs_loss(out.bank_query, out.bank_patterns, cfg.digs_margin)
        if cfg.use_edl:
            terms["edl"] = cfg.lambda_edl * self.edl(out, target, epoch)
        if cfg.attribute_regression > 0:
            z = out.class_matrix[target]
            terms["attr_reg"] = cfg.attribute_regression * F.mse_loss(out.embedding.float(), z)
        if cfg.cross_branch > 0 and out.scores_vgt is not None and out.scores_agt is not None:
            terms["cross_branch"] = cfg.cross_branch * F.mse_loss(
                out.scores_vgt.float(), out.scores_agt.float()
            )
        return total(terms)

    def edl(self, out: CrestOutput, target: torch.Tensor, epoch: int) -> torch.Tensor:
        """L_acc(ᾱ) + L_acc(α^V) + L_acc(α^A) + γ_con L_con over the seen classes, no calibration offset."""
        classes = self.seen if self.cfg.edl_over == "seen" else torch.cat([self.seen, self.unseen])
        y = class_positions(classes, out.logits.shape[1])[target]
        alphas = [
            evidence_from_logits(lg.float()[:, classes]) + 1.0
            for lg in (out.logits_vgt, out.logits_agt)
            if lg is not None
        ]
        xi = self.cfg.anneal_epochs
        if len(alphas) == 1:
            return edl_loss(alphas[0], y, epoch, xi)
        fused = fuse(self.fusion, alphas[0], alphas[1])
        loss = (
            edl_loss(fused, y, epoch, xi)
            + edl_loss(alphas[0], y, epoch, xi)
            + edl_loss(alphas[1], y, epoch, xi)
        )
        conflict = (
            2.0 * conflict_degree(alphas[0], alphas[1]).mean()
        )  # Σ_{m≠j} c = 2c for two branches
        return loss + self.cfg.gamma_con * conflict
