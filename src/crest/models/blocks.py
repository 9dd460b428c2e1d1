"""Single-head post-LayerNorm attention blocks (docs/method.md §2: one layer, one head, FFN = ReLU MLP)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from crest.models.dropout import Dropout
from crest.models.dropout import dropout as apply_dropout
from crest.models.linear import Linear


class FeedForward(nn.Module):
    def __init__(self, d: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = Linear(d, d_ff), Linear(d_ff, d)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax(q kᵀ / √d + bias); a batch-independent side (no batch dimension) broadcasts."""
    logits = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    return logits.softmax(dim=-1)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    p: float,
    training: bool,
    batch: int,
) -> torch.Tensor:
    """Single-head attention; a side without a batch dimension is shared by the ``batch``.

    The fused ``scaled_dot_product_attention`` runs everywhere except one case: training with
    dropout on the CPU, where it falls back to its math path and draws the dropout mask with
    ``bernoulli_`` (4% of a CUB training step); written out here, the mask is the cheap one of
    :mod:`crest.models.dropout`, and the arithmetic is the same as that math path's.
    """
    if training and p > 0 and q.device.type == "cpu" and not torch.compiler.is_compiling():
        return torch.matmul(apply_dropout(attention_weights(q, k, bias), p, True), v)
    qb, kb, vb = (t.expand(batch, *t.shape) if t.dim() == 2 else t for t in (q, k, v))
    mask = None if bias is None else bias.to(qb.dtype)
    return F.scaled_dot_product_attention(
        qb, kb, vb, attn_mask=mask, dropout_p=p if training else 0.0
    )


class SelfAttentionBlock(nn.Module):
    """x ← LN(x + Attn(x)); x ← LN(x + FFN(x)), with an optional additive logit bias (R, R)."""

    def __init__(self, d: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.qkv = Linear(d, 3 * d)
        self.out = Linear(d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = FeedForward(d, d_ff, dropout)
        self.dropout = Dropout(dropout)
        self.p = dropout

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = attend(q, k, v, bias, self.p, self.training, x.shape[0])
        x = self.norm1(x + self.dropout(self.out(attn)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class CrossAttentionBlock(nn.Module):
    """Queries attend to keys/values; either side may be batch-independent (no batch dimension).

    Batch-independent projections (the attribute side) are computed once per call, never per sample.
    ``return_weights`` gives the attention map (B, Lq, Lk) before dropout; it costs an explicit
    softmax that keeps (B, Lq, Lk) for backward, so it is asked for only where the map is used
    (explanations). Otherwise :func:`attend` runs (the fused kernel where it is fastest).
    """

    def __init__(self, d: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.q, self.k, self.v = Linear(d, d), Linear(d, d), Linear(d, d)
        self.out = Linear(d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = FeedForward(d, d_ff, dropout)
        self.dropout = Dropout(dropout)
        self.p = dropout

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, batch: int, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q, k, v = self.q(query), self.k(memory), self.v(memory)
        weights = None
        if return_weights:
            weights = attention_weights(q, k)  # broadcasts (Lq, d) × (B, d, Lk)
            attn = torch.matmul(apply_dropout(weights, self.p, self.training), v)
        else:
            attn = attend(q, k, v, None, self.p, self.training, batch)
        residual = query if query.dim() == 3 else query.unsqueeze(0)
        x = self.norm1(residual + self.dropout(self.out(attn)))
        x = self.norm2(x + self.dropout(self.ffn(x)))
        return x, weights
