"""DIGS (Eq. 6–7): pull each bank query to its best meta-pattern, away from the second best."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def digs_loss(queries: torch.Tensor, patterns: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """L_tp + L_reg on L2-normalised queries (B, d_p) and patterns (φ, d_p), as batch means."""
    q = F.normalize(queries.float(), dim=-1)
    phi = F.normalize(patterns.float(), dim=-1)
    top2 = (q @ phi.t()).topk(2, dim=-1).indices
    d_pos = (q - phi[top2[:, 0]]).pow(2).sum(-1)
    d_neg = (q - phi[top2[:, 1]]).pow(2).sum(-1)
    return F.relu(d_pos - d_neg + margin).mean() + d_pos.mean()
