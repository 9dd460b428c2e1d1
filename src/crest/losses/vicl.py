"""VICL (Eq. 3–4): contrastive learning on VGT attribute scores with a hard-positive choice."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def vicl_positives(
    similarity: torch.Tensor, labels: torch.Tensor, delta: float = -1.0
) -> torch.Tensor:
    """Index of each anchor's positive: the most similar other same-class sample if one exists
    (with similarity ≥ δ), else the most similar other sample of any class."""
    b = similarity.shape[0]
    eye = torch.eye(b, dtype=torch.bool, device=similarity.device)
    others = similarity.masked_fill(eye, float("-inf"))
    same = (labels[:, None] == labels[None, :]) & ~eye
    same_sim = others.masked_fill(~same, float("-inf"))
    best_same, idx_same = same_sim.max(dim=1)
    idx_any = others.argmax(dim=1)
    use_same = torch.isfinite(best_same) & (best_same >= delta)
    return torch.where(use_same, idx_same, idx_any)


def vicl_loss(
    scores: torch.Tensor, labels: torch.Tensor, tau: float = 0.1, delta: float = -1.0
) -> torch.Tensor:
    """mean_i −log[e^{D(i,i⁺)/τ} / Σ_{j≠i} e^{D(i,j)/τ}] with D the cosine of L2-normalised scores."""
    if scores.shape[0] < 2:
        return scores.new_zeros(())
    phi = F.normalize(scores.float(), dim=-1)
    similarity = phi @ phi.t()
    positives = vicl_positives(similarity.detach(), labels, delta)
    eye = torch.eye(len(phi), dtype=torch.bool, device=phi.device)
    logits = (similarity / tau).masked_fill(eye, float("-inf"))
    return F.cross_entropy(logits, positives)
