"""MSDN's total training loss (docs/peers.md): per sub-net CE + λ_cal·SC, plus λ_d times the
semantic distillation term between the two sub-nets' class scores, as the authors' code has it
(``MSDN_cub.py``, ``core/MSDN.py``: ``compute_loss`` per package, ``compute_contrastive_loss``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from crest.losses.task import TaskLoss, total
from crest.models.msdn.model import BRANCHES, MsdnOutput
from crest.settings.msdn import MsdnConfig


def calibration_offset(
    num_classes: int, seen: torch.Tensor, unseen: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """The authors' built-in margin (``is_bias`` with its default bias 1): −1 on seen, +1 on unseen."""
    offset = torch.zeros(num_classes, device=device)
    offset[seen] = -1.0
    offset[unseen] = 1.0
    return offset


def weighted_gap(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """mean_b Σ_k |d_bk|³ / ‖d_b‖₂ with d = s1 − s2 (the authors' score-matching term: an L1
    distance weighted by the squared, L2-normalised difference). 0 where d_b = 0."""
    d = s1 - s2
    norm = d.pow(2).sum(dim=-1, keepdim=True).sqrt().clamp_min(1e-12)
    return (d.pow(2) / norm * d.abs()).sum(dim=-1).mean()


def jensen_shannon(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """mean_b ½[KL(p‖m) + KL(q‖m)], p = softmax(s1), q = softmax(s2), m = (p + q)/2, in log space."""
    log_p = F.log_softmax(s1, dim=-1)
    log_q = F.log_softmax(s2, dim=-1)
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    kl_p = (log_p.exp() * (log_p - log_m)).sum(dim=-1)
    kl_q = (log_q.exp() * (log_q - log_m)).sum(dim=-1)
    return (0.5 * (kl_p + kl_q)).mean()


class MsdnLoss(TaskLoss):
    """L = Σ_{k∈{a2v, v2a}} (CE_k + λ_cal SC_k) + λ_d (L_gap + L_JSD).

    CE is over all classes in play (the authors' ``is_conservative=True``), on the scores without
    margin; SC is the code form −log mean_b Σ_{u∈unseen} p_bu with the ±1 margin; the distillation
    term compares the two sub-nets' class scores over seen ∪ unseen classes (margin included, as
    the authors' packages carry it: it cancels in L_gap and shifts both softmaxes of L_JSD).
    """

    def __init__(self, cfg: MsdnConfig, seen: torch.Tensor, unseen: torch.Tensor) -> None:
        super().__init__(seen, unseen)
        self.cfg = cfg

    def __call__(
        self, out: MsdnOutput, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its terms (detached 0-d tensors)."""
        cfg = self.cfg
        scores = {name: out.branches[name].float() for name in BRANCHES}
        terms: dict[str, torch.Tensor] = {}
        for name in BRANCHES:
            for term, value in self.calibrated_ce(scores[name], target, cfg.lambda_cal).items():
                terms[f"{term}_{name}"] = value
        if cfg.lambda_distill > 0:
            play = torch.cat([self.seen, self.unseen])
            offset = calibration_offset(
                scores["a2v"].shape[1], self.seen, self.unseen, scores["a2v"].device
            )[play]
            s1 = scores["a2v"][:, play] + offset
            s2 = scores["v2a"][:, play] + offset
            terms["distill_gap"] = cfg.lambda_distill * weighted_gap(s1, s2)
            terms["distill_jsd"] = cfg.lambda_distill * jensen_shannon(s1, s2)
        return total(terms)
