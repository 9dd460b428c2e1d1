"""ARISE (Eq. 16): cross-entropy on the fused embedding plus the self-calibration term."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_positions(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """For each class id in [0, num_classes), its position in ``classes`` (−1 if absent): maps
    global targets onto the columns of ``logits[:, classes]``."""
    lookup = torch.full((num_classes,), -1, dtype=torch.long, device=classes.device)
    lookup[classes] = torch.arange(len(classes), device=classes.device)
    return lookup


def arise_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    seen: torch.Tensor,
    unseen: torch.Tensor,
    lambda_cal: float,
    ce_over: str = "seen",
    sc_form: str = "code",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE, SC) for ``logits`` (B, C) over all classes and global class ids ``target``.

    CE: −log softmax at the true class, over seen classes (``ce_over=seen``) or over all classes
    in play, seen ∪ unseen (``ce_over=all``).
    SC: with b = +1 on unseen and −1 on seen classes added to the scores, either
    −log(mean_i Σ_{c∈C^u} p_ic) (``code``) or −mean_i Σ_{c∈C^u} log p_ic (``paper``).
    """
    classes = seen if ce_over == "seen" else torch.cat([seen, unseen])
    ce = F.cross_entropy(logits[:, classes], class_positions(classes, logits.shape[1])[target])
    if lambda_cal == 0 or len(unseen) == 0:
        return ce, logits.new_zeros(())
    offset = torch.zeros(logits.shape[1], device=logits.device, dtype=logits.dtype)
    offset[seen] = -1.0
    offset[unseen] = 1.0
    play = torch.cat([seen, unseen])
    log_p = F.log_softmax((logits + offset)[:, play], dim=-1)[:, len(seen) :]
    if sc_form == "code":
        sc = -torch.log(log_p.exp().sum(dim=-1).mean().clamp_min(1e-12))
    else:
        sc = -log_p.sum(dim=-1).mean()
    return ce, sc
