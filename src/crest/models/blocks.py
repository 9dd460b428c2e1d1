"""Single-head post-LayerNorm attention blocks (spec §1: one layer, one head, FFN = ReLU MLP)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Module):
    def __init__(self, d: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class SelfAttentionBlock(nn.Module):
    """x ← LN(x + Attn(x)); x ← LN(x + FFN(x)), with an optional additive logit bias (R, R)."""

    def __init__(self, d: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = FeedForward(d, d_ff, dropout)
        self.dropout = nn.Dropout(dropout)
        self.p = dropout

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=None if bias is None else bias.to(q.dtype),
            dropout_p=self.p if self.training else 0.0,
        )
        x = self.norm1(x + self.dropout(self.out(attn)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class CrossAttentionBlock(nn.Module):
    """Queries attend to keys/values; either side may be batch-independent (no batch dimension).

    Batch-independent projections (the attribute side) are computed once per call, never per sample.
    ``return_weights`` gives the attention map (B, Lq, Lk) before dropout.
    """

    def __init__(self, d: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = FeedForward(d, d_ff, dropout)
        self.dropout = nn.Dropout(dropout)
        self.p = dropout
        self.scale = 1.0 / math.sqrt(d)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, batch: int, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q, k, v = self.q(query), self.k(memory), self.v(memory)
        weights = None
        if return_weights:
            logits = torch.matmul(q, k.transpose(-1, -2)) * self.scale  # broadcasts (Lq,d)x(B,d,Lk)
            weights = logits.softmax(dim=-1)
            attn = torch.matmul(F.dropout(weights, self.p, self.training), v)
        else:
            qb = q.expand(batch, *q.shape) if q.dim() == 2 else q
            kb = k.expand(batch, *k.shape) if k.dim() == 2 else k
            vb = v.expand(batch, *v.shape) if v.dim() == 2 else v
            attn = F.scaled_dot_product_attention(
                qb, kb, vb, dropout_p=self.p if self.training else 0.0
            )
        residual = query if query.dim() == 3 else query.unsqueeze(0)
        x = self.norm1(residual + self.dropout(self.out(attn)))
        x = self.norm2(x + self.dropout(self.ffn(x)))
        return x, weights
