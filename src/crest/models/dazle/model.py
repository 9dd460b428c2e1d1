"""DAZLE (Huynh & Elhamifar, CVPR 2020): dense attribute-based attention over image regions,
attribute embedding, attention over attributes (docs/peers.md, DAZLE section).

Symbols: f_r ∈ R^{D_v} the L2-normalised feature of region r (R = h·w regions), v_a ∈ R^{D_w}
the word vector of attribute a (rows of V), z_c ∈ R^A the class attribute vector (rows of Z).

    α_{a,r} = softmax_r(v_aᵀ W_1 f_r)        (dense attention, one map per attribute)
    h_a     = Σ_r α_{a,r} f_r                (attribute-based feature)
    e_a     = v_aᵀ W_2 h_a                   (attribute score)
    β_a     = σ(v_aᵀ W_3 h_a)                (attention over attributes; 1 when switched off)
    s_c     = Σ_a z_{c,a} β_a e_a            (class score)

W_1 is the paper's attention matrix and W_2 its score matrix (the released code names them the
other way round: its ``W_2`` makes the attention and its ``W_1`` the scores). Every bilinear form
is linear in h_a, so v_aᵀ W h_a = Σ_r α_{a,r} v_aᵀ W f_r: the forward computes the three
(B, A, R) region maps v_aᵀ W_k f_r in one product and never builds h_a.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crest.models.contract import ModelOutput, ZSLModel
from crest.regions import normalized_product
from crest.settings.dazle import DazleConfig


@dataclass(kw_only=True)
class DazleOutput(ModelOutput):
    """DAZLE's forward pass; ``embedding`` is β ⊙ e (what the logits compare with Z),
    ``attention_scores`` the attribute scores e that the attention maps α explain."""

    # β (B, A): the attention over attributes (ones when dazle.attribute_attention is false)
    attribute_gate: torch.Tensor | None = None


class DazleModel(ZSLModel):
    """DAZLE for feature maps of ``feature_dim`` channels, word vectors ``vectors`` (A, D_w)
    and class matrix ``z`` (C, A)."""

    name: ClassVar[str] = "dazle"
    has_attention: ClassVar[bool] = True

    def __init__(
        self, cfg: DazleConfig, feature_dim: int, vectors: np.ndarray, z: np.ndarray
    ) -> None:
        super().__init__()
        v = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
        classes = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        if v.ndim != 2 or classes.ndim != 2 or classes.shape[1] != v.shape[0]:
            raise ValueError(
                f"attribute vectors {tuple(v.shape)} and class matrix {tuple(classes.shape)} "
                "disagree; expected (A, D_w) and (C, A)"
            )
        self.normalize_vectors = cfg.normalize_vectors
        self.use_gate = cfg.attribute_attention
        self.register_buffer("class_matrix", classes)
        # V starts L2-normalised per attribute (core/DAZLE.py normalises init_w2v_att)
        start = F.normalize(v, dim=-1)
        self.vectors: torch.Tensor
        if cfg.trainable_vectors:
            self.vectors = nn.Parameter(start)
        else:
            self.register_buffer("vectors", start)
        d_w = v.shape[1]
        # initialisations of core/DAZLE.py: attention and gate start at zero (uniform attention,
        # β = ½), the score map from N(0, 1)
        self.W_1 = nn.Parameter(torch.zeros(d_w, feature_dim))
        self.W_2 = nn.Parameter(torch.randn(d_w, feature_dim))
        self.W_3 = nn.Parameter(torch.zeros(d_w, feature_dim)) if self.use_gate else None

    def attribute_vectors(self) -> torch.Tensor:
        """V as used in the forward pass (A, D_w)."""
        return F.normalize(self.vectors, dim=-1) if self.normalize_vectors else self.vectors

    def forward(
        self,
        feature_map: torch.Tensor,
        class_matrix: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> DazleOutput:
        z = self.class_matrix if class_matrix is None else class_matrix
        b, d, h, w = feature_map.shape
        flat = feature_map.reshape(b, d, h * w)  # (B, D_v, R), columns are regions
        v = self.attribute_vectors()
        mats = [self.W_1, self.W_2] + ([self.W_3] if self.W_3 is not None else [])
        keys = torch.cat([v @ m for m in mats])  # (k·A, D_v): v_aᵀ W_k for each attribute
        # (B, k·A, R): v_aᵀ W_k f_r with f_r = x_r / ‖x_r‖ (the authors' normalize_F=True); one
        # weight gradient for the batch, not one per sample (crest.regions.shared_product)
        maps = normalized_product(flat, keys.to(flat.dtype), True, out_dtype=torch.float32)
        with torch.autocast(device_type=feature_map.device.type, enabled=False):
            # split, not sliced: the backward pass is one concatenation of the parts' gradients,
            # where three slices each fill a zero (B, k·A, R) gradient and add them up
            parts = maps.split(v.shape[0], dim=1)
            att_logits, score_maps = parts[0], parts[1]
            alpha = torch.softmax(att_logits, dim=-1)  # (B, A, R)
            scores = (alpha * score_maps).sum(dim=-1)  # e (B, A)
            if self.W_3 is not None:
                gate = torch.sigmoid((alpha * parts[2]).sum(dim=-1))  # β (B, A)
            else:
                gate = torch.ones_like(scores)
            embedding = gate * scores
            logits = embedding @ z.float().t()  # (B, C')
        return DazleOutput(
            logits=logits,
            embedding=embedding,
            class_matrix=z,
            attention=alpha if return_attention else None,
            attention_scores=scores if return_attention else None,
            attribute_gate=gate,
        )
