"""The two grounding transformers (docs/method.md §2): VGT (attributes → regions) and AGT (regions → attributes)."""

from __future__ import annotations

import math

import torch
from torch import nn

from crest.models.blocks import CrossAttentionBlock, SelfAttentionBlock


class VisualGrounding(nn.Module):
    """VGT: attribute queries attend to encoded regions; a^V_i = v_iᵀ W_V f^V_i (Eq. 1–2)."""

    def __init__(
        self,
        d: int,
        d_ff: int,
        dropout: float,
        word_dim: int,
        attribute_self_attention: bool,
        value_gain: float = 1.0,
        zero_output: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = SelfAttentionBlock(d, d_ff, dropout)
        self.attribute_attention = (
            SelfAttentionBlock(d, d_ff, dropout) if attribute_self_attention else None
        )
        self.decoder = CrossAttentionBlock(d, d_ff, dropout)
        self.w_v = nn.Parameter(torch.randn(word_dim, d) / math.sqrt(d))  # W_V ∈ R^{D_w×d}
        if zero_output:  # model.vgt_init=zero: a^V grows from 0 (§8.8)
            nn.init.zeros_(self.w_v)
        if value_gain != 1.0:  # model.vgt_value_gain: the image path starts larger (§8.8)
            with torch.no_grad():
                self.decoder.v.weight.mul_(value_gain)
                self.decoder.out.weight.mul_(value_gain)

    def attribute_side(
        self, attributes: torch.Tensor, vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(decoder queries (A, d), W_Vᵀ v_i (A, d)): batch-independent, once per forward."""
        queries = attributes
        if self.attribute_attention is not None:
            queries = self.attribute_attention(attributes.unsqueeze(0)).squeeze(0)
        return queries, vectors @ self.w_v

    def forward(
        self,
        regions: torch.Tensor,
        queries: torch.Tensor,
        projected: torch.Tensor,
        bias: torch.Tensor | None,
        return_attention: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(scores a^V (B, A), attention (B, A, R) or None, grounded features F^V (B, A, d)).

        ``queries`` and ``projected`` come from :meth:`attribute_side`.
        """
        u = self.encoder(regions, bias)
        f, weights = self.decoder(
            queries, u, batch=regions.shape[0], return_weights=return_attention
        )
        # a^V_i = (W_Vᵀ v_i) · f^V_i; a product and a sum, where einsum would transpose f to
        # (A, B, d) and run A matrix-vector products forwards and backwards
        scores = (f * projected).sum(dim=-1)
        return scores, weights, f


class AttributeGrounding(nn.Module):
    """AGT: encoded regions attend to attributes; a^A_i = Σ_r (h_rᵀ W_4 h_i) · (u_rᵀ W_1 g_r)."""

    def __init__(
        self, d: int, d_ff: int, dropout: float, zero_init: bool = False, gain: float = 1.0
    ) -> None:
        super().__init__()
        self.encoder = SelfAttentionBlock(d, d_ff, dropout)
        self.decoder = CrossAttentionBlock(d, d_ff, dropout)
        self.w1 = nn.Linear(d, d, bias=False)
        self.w4 = nn.Linear(d, d, bias=False)
        if zero_init:  # TransZero++: the region→attribute map starts at zero, a^A grows from 0
            nn.init.zeros_(self.w4.weight)
        elif gain != 1.0:  # model.agt_gain: a^A starts at the scale of a^V, not 10x it (§8.8)
            with torch.no_grad():
                self.w4.weight.mul_(gain)

    def forward(
        self, regions: torch.Tensor, attributes: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores a^A (B, A), region relevance s (B, R))."""
        u = self.encoder(regions, bias)
        g, _ = self.decoder(u, attributes, batch=regions.shape[0])
        relevance = (self.w1(u) * g).sum(dim=-1)  # s_r = u_rᵀ W_1 g_r
        # Σ_r s_r h_rᵀ W_4 h_i without materialising the (B, R, A) affinity E
        pooled = torch.einsum("br,brd->bd", relevance, regions)
        return self.w4(pooled) @ attributes.t(), relevance
