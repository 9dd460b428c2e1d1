"""The meta-pattern bank (docs/method.md §2.4, Eq. 5): AGT scores read a learned bank of attribute patterns."""

from __future__ import annotations

import torch
from torch import nn


class MetaPatternBank(nn.Module):
    """Φ ∈ R^{φ×d_p}; Q = a W_Q + b_Q; α = softmax(Q Φᵀ) (optionally top-k); ã = a + Linear(α Φ)."""

    def __init__(self, num_attributes: int, size: int, dim: int, topk: int = 0) -> None:
        super().__init__()
        self.patterns = nn.Parameter(torch.randn(size, dim) / dim**0.5)
        self.query = nn.Linear(num_attributes, dim)
        self.read = nn.Linear(dim, num_attributes)
        self.topk = topk

    def forward(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (refined scores (B, A), bank queries Q (B, d_p))."""
        q = self.query(scores)
        return scores + self.read(self.match(q) @ self.patterns), q

    def match(self, q: torch.Tensor) -> torch.Tensor:
        """α (B, φ): each query's weights over the patterns, softmax(Q Φᵀ), top-k when set."""
        logits = q @ self.patterns.t()
        if 0 < self.topk < logits.shape[-1]:
            # sparse matching: keep the top-k and renormalise (softmax over the kept logits)
            kth = logits.topk(self.topk, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return logits.softmax(dim=-1)
