"""TransZero (Chen et al., AAAI 2022), reimplemented from the paper with the facts the paper leaves
out read from the authors' ``model.py`` (github:shiming-chen/TransZero); docs/peers.md, section
TransZero, numbers the formulas cited here as (T1)-(T9).

Pipeline: regions → feature augmentation encoder (self-attention whose logits lose a learned
relative-geometry term) → visual-semantic decoder (attribute word vectors as queries, regions as
memory) → per-attribute score ψ_i = (v_i W_1) · f̂_i → class scores Z ψ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crest.models.blocks import FeedForward, attend, attention_weights
from crest.models.contract import ModelOutput, ZSLModel
from crest.models.dropout import Dropout
from crest.models.dropout import dropout as apply_dropout
from crest.models.linear import Linear
from crest.regions import embed_regions
from crest.settings.transzero import TransZeroConfig

#: width of the relative-geometry embedding: 4 offsets × 8 frequencies × (sin, cos)
GEOMETRY_DIM = 64
_FREQUENCIES = GEOMETRY_DIM // 8
_WAVE_LENGTH = 1000.0
_GEOMETRY_SCALE = 100.0
_MIN_OFFSET = 1e-3


def grid_geometry(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """The fixed relative-geometry embedding (R, R, 64) of an h×w grid (T2), float32.

    Region r = (row r // w, column r % w) is the box [row/h, (row+1)/h] × [col/w, (col+1)/w];
    for regions m, n the offsets are log max(|c_m − c_n| / s, 10⁻³) per axis (s = box side + 1,
    as in the authors' code) and log of the side ratios (0 on a grid); each offset, times 100,
    is encoded at 8 frequencies 1000^(−k/8) by sin and cos. The authors fix the grid at 14×14;
    here it follows the input's grid (the same numbers at 14×14).
    """
    r = torch.arange(h * w, device=device, dtype=torch.float32)
    row, col = torch.div(r, w, rounding_mode="floor"), torch.remainder(r, w)
    cx, cy = (row + 0.5) / h, (col + 0.5) / w
    sx, sy = 1.0 / h + 1.0, 1.0 / w + 1.0
    dx = ((cx[:, None] - cx[None, :]).abs() / sx).clamp_min(_MIN_OFFSET).log()
    dy = ((cy[:, None] - cy[None, :]).abs() / sy).clamp_min(_MIN_OFFSET).log()
    zero = torch.zeros_like(dx)  # log(s_m / s_n): every box of a grid has the same sides
    offsets = torch.stack([dx, dy, zero, zero], dim=-1) * _GEOMETRY_SCALE  # (R, R, 4)
    k = torch.arange(_FREQUENCIES, device=device, dtype=torch.float32)
    freq = _WAVE_LENGTH ** (-k / _FREQUENCIES)
    angles = (offsets[..., None] * freq).flatten(-2)  # (R, R, 32), offset-major
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _xavier(linear: nn.Linear, fan_out: int | None = None) -> nn.Linear:
    """Xavier-uniform weight (optionally as part of a wider fused matrix), zero bias."""
    fan_in = linear.in_features
    bound = math.sqrt(6.0 / (fan_in + (fan_out or linear.out_features)))
    nn.init.uniform_(linear.weight, -bound, bound)
    nn.init.zeros_(linear.bias)
    return linear


class EncoderLayer(nn.Module):
    """One feature-augmentation layer (T3)-(T4): single-head attention over regions whose logits
    lose the geometry term G, then the authors' two residual LayerNorms and a residual FFN."""

    def __init__(self, d: int, d_ff: int, p: float, attention_p: float) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (_xavier(Linear(d, d)) for _ in range(4))
        self.norm_attention, self.norm_residual, self.norm_ffn = (nn.LayerNorm(d) for _ in range(3))
        self.ffn = FeedForward(d, d_ff, p)
        self.dropout = Dropout(p)
        self.attention_p = attention_p

    def forward(self, x: torch.Tensor, geometry: torch.Tensor | None) -> torch.Tensor:
        bias = None if geometry is None else -geometry
        heads = attend(
            self.q(x), self.k(x), self.v(x), bias, self.attention_p, self.training, x.shape[0]
        )
        y = self.norm_attention(x + self.dropout(self.o(heads)))
        y = self.norm_residual(x + self.dropout(y))
        return self.norm_ffn(y + self.dropout(self.ffn(y)))


class AttentionProjections(nn.Module):
    """Single-head q, k, v and output projections initialised as torch's MultiheadAttention:
    the q, k, v weights as slices of one Xavier-uniform (3d, d) matrix, zero biases."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.q, self.k, self.v = (_xavier(Linear(d, d), fan_out=3 * d) for _ in range(3))
        self.o = Linear(d, d)
        nn.init.zeros_(self.o.bias)


class DecoderLayer(nn.Module):
    """One visual-semantic decoder layer (T5)-(T6), torch's post-norm TransformerDecoderLayer with
    one head: [attribute self-attention,] cross-attention from attributes to regions, FFN."""

    def __init__(self, d: int, d_ff: int, p: float, self_attention: bool) -> None:
        super().__init__()
        self.self_attn = AttentionProjections(d) if self_attention else None
        self.cross = AttentionProjections(d)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d) for _ in range(3))
        self.ffn = FeedForward(d, d_ff, p)
        self.dropout = Dropout(p)
        self.p = p

    def forward(
        self, t: torch.Tensor, memory: torch.Tensor, return_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch = memory.shape[0]
        if t.dim() == 2 and self.training and self.p > 0:
            # the authors copy the queries per sample, so each sample draws its own dropout
            # masks; without dropout the query side stays batch-independent (computed once)
            t = t.expand(batch, *t.shape)
        if self.self_attn is not None:
            sa = self.self_attn
            mixed = attend(sa.q(t), sa.k(t), sa.v(t), None, self.p, self.training, 1)
            t = self.norm1(t + self.dropout(sa.o(mixed.reshape(t.shape))))
        ca = self.cross
        q, k, v = ca.q(t), ca.k(memory), ca.v(memory)
        weights = None
        if return_weights:
            weights = attention_weights(q, k)  # (B, A, R), before dropout
            attended = torch.matmul(apply_dropout(weights, self.p, self.training), v)
        else:
            attended = attend(q, k, v, None, self.p, self.training, batch)
        residual = t if t.dim() == 3 else t.unsqueeze(0)
        t = self.norm2(residual + self.dropout(ca.o(attended)))
        return self.norm3(t + self.dropout(self.ffn(t))), weights


@dataclass(kw_only=True)
class TransZeroOutput(ModelOutput):
    """TransZero's forward pass: ``embedding`` is ψ(x) (T7), ``logits`` Z ψ(x) (T8) without the
    authors' built-in ±1 seen/unseen bias (evaluation adds γ; γ = 2 matches that bias);
    ``attention`` is the last decoder layer's cross-attention (B, A, R) with
    ``attention_scores`` = ψ(x)."""


class TransZeroModel(ZSLModel):
    name = "transzero"
    has_attention = True

    class_matrix: torch.Tensor

    def __init__(
        self,
        cfg: TransZeroConfig,
        feature_dim: int,
        vectors: np.ndarray,
        z: np.ndarray,
    ) -> None:
        super().__init__()
        d = cfg.d
        self.normalize_vectors = cfg.normalize_vectors
        self.register_buffer("class_matrix", torch.as_tensor(np.asarray(z), dtype=torch.float32))
        v = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
        # trainable attribute word vectors, normalised once at initialisation (T1)
        self.vectors = nn.Parameter(F.normalize(v, dim=-1))
        # W_1 (D_w, d) ~ N(0, 1), as the authors initialise it
        self.w1 = nn.Parameter(torch.randn(v.shape[1], d))
        self.embed_regions = nn.Linear(feature_dim, d)
        self.embed_attributes = nn.Linear(v.shape[1], d)
        self.geometry_weight = nn.Linear(GEOMETRY_DIM, 1) if cfg.geometry else None
        self.encoder = nn.ModuleList(
            EncoderLayer(d, cfg.d_ff, cfg.dropout, cfg.encoder_attention_dropout)
            for _ in range(cfg.encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d, cfg.d_ff, cfg.dropout, cfg.self_attention)
            for _ in range(cfg.decoder_layers)
        )
        self._geometry_cache: dict[tuple[int, int, str], torch.Tensor] = {}

    def attribute_vectors(self) -> torch.Tensor:
        """v_i (A, D_w): the trainable word vectors, renormalised when the recipe asks (T1)."""
        return F.normalize(self.vectors, dim=-1) if self.normalize_vectors else self.vectors

    def geometry(self, h: int, w: int, device: torch.device) -> torch.Tensor | None:
        """G = ReLU(w_G · e_mn + b_G) (R, R), float32 (T2); None without geometry."""
        if self.geometry_weight is None:
            return None
        key = (h, w, str(device))
        if key not in self._geometry_cache:
            # a plain tensor even when first asked for under inference_mode, so that a later
            # training step may save it for backward
            with torch.inference_mode(False), torch.no_grad():
                self._geometry_cache[key] = grid_geometry(h, w, device)
        embedding = self._geometry_cache[key]
        lin = self.geometry_weight
        # elementwise product and sum: stays float32 under autocast
        return F.relu((embedding * lin.weight[0].float()).sum(-1) + lin.bias.float())

    def forward(
        self,
        feature_map: torch.Tensor,
        class_matrix: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> TransZeroOutput:
        z = self.class_matrix if class_matrix is None else class_matrix.to(self.class_matrix)
        _, _, h, w = feature_map.shape
        x = embed_regions(feature_map, self.embed_regions)  # (B, R, d), regions L2-normalised
        geometry = self.geometry(h, w, feature_map.device)
        for enc in self.encoder:
            x = enc(x, geometry)
        v = self.attribute_vectors()
        t: torch.Tensor = self.embed_attributes(v)  # (A, d) queries
        weights = None
        for i, dec in enumerate(self.decoder):
            last = i == len(self.decoder) - 1
            t, weights = dec(t, x, return_attention and last)
        # ψ_i = (v_i W_1) · f̂_i (T7) and s = Z ψ (T8), in float32
        with torch.autocast(feature_map.device.type, enabled=False):
            keys = v.float() @ self.w1.float()  # (A, d)
            embedding = (t.float() * keys).sum(-1)  # (B, A)
            logits = embedding @ z.float().t()
        return TransZeroOutput(
            logits=logits,
            embedding=embedding,
            class_matrix=z,
            attention=weights.float() if weights is not None else None,
            attention_scores=embedding if return_attention else None,
        )
