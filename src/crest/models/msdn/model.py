"""MSDN (Chen et al., CVPR 2022; docs/peers.md): two mutual attention sub-nets over the regions.

With regions f_r = x_r / ‖x_r‖ (R = h·w of them) and attribute vectors v_i (A of them):

* attribute→visual (a2v): each attribute attends over the regions,
  β_ir = softmax_r(v_i W_att f_r), and scores ψ_i = Σ_r β_ir · v_i W_s f_r;
* visual→attribute (v2a): each region spreads over the attributes,
  γ_ri = softmax_i(v_i W'_att f_r), and scores ψ'_i = Σ_r γ_ri · v_i W'_s f_r;

each sub-net's class scores are ψ Zᵀ, and the class scores are w ψ Zᵀ + (1 − w) ψ' Zᵀ.
Every product is linear in f_r, so the four maps v_i W_k are stacked and the regions are
projected once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crest.models.contract import ModelOutput, ZSLModel
from crest.regions import normalized_product
from crest.settings.msdn import MsdnConfig

#: the sub-nets' names in ``branches``
BRANCHES = ("a2v", "v2a")


@dataclass(kw_only=True)
class MsdnOutput(ModelOutput):
    """MSDN's forward pass: ``branches`` holds the a2v and v2a class scores (what the loss
    reads); ``logits`` is their mix; ``embedding`` the mixed attribute scores; ``attention``
    and ``attention_scores`` are the a2v sub-net's (B, A, R) map and its scores ψ (B, A)."""


def project_regions(feature_map: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(B, D_v, h, w) features and (K, D_v) maps → (B, R, K): each L2-normalised region times
    every map. The batched product reads each sample's (D_v, R) block as a transposed operand,
    and the norm divides whichever side is smaller (:func:`crest.regions.normalized_product`),
    so no normalised copy of the larger one is built."""
    b, d, h, w = feature_map.shape
    flat = feature_map.reshape(b, d, h * w)
    wt = maps.to(flat.dtype).t()  # (D_v, K)
    return normalized_product(flat, wt, weight_left=False)  # (B, R, K), one weight gradient


class MsdnModel(ZSLModel):
    name = "msdn"
    has_attention = True  # the a2v sub-net's attribute→region attention

    class_matrix: torch.Tensor  # Z (C, A), a buffer: moves with the model, saved in checkpoints

    def __init__(
        self,
        cfg: MsdnConfig,
        feature_dim: int,
        attribute_vectors: np.ndarray,
        class_matrix: np.ndarray,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        vectors = torch.as_tensor(np.asarray(attribute_vectors), dtype=torch.float32)
        word_dim = vectors.shape[1]
        # V: initialised L2-normalised (core/MSDN.py), trainable in every released recipe
        self.attribute_vectors = nn.Parameter(
            F.normalize(vectors, dim=-1), requires_grad=cfg.trainable_vectors
        )
        self.register_buffer(
            "class_matrix", torch.as_tensor(np.asarray(class_matrix), dtype=torch.float32)
        )
        # (D_w, D_v) maps, initialised as core/MSDN.py does: the a2v score map W_1 ~ N(0, 1),
        # the a2v attention map W_2 and both v2a maps (W_1_1, W_2_1) zero, so at the start a2v
        # attends uniformly and v2a scores nothing
        self.w_a2v_score = nn.Parameter(torch.randn(word_dim, feature_dim))
        self.w_a2v_attention = nn.Parameter(torch.zeros(word_dim, feature_dim))
        self.w_v2a_attention = nn.Parameter(torch.zeros(word_dim, feature_dim))
        self.w_v2a_score = nn.Parameter(torch.zeros(word_dim, feature_dim))
        self.feature_dim = feature_dim

    @property
    def num_attributes(self) -> int:
        return int(self.attribute_vectors.shape[0])

    def vectors(self) -> torch.Tensor:
        v = self.attribute_vectors
        return F.normalize(v, dim=-1) if self.cfg.normalize_vectors else v

    def forward(
        self,
        feature_map: torch.Tensor,
        class_matrix: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> MsdnOutput:
        """``feature_map`` (B, D_v, h, w) raw features; ``class_matrix`` (C', A) overrides Z."""
        z = self.class_matrix if class_matrix is None else class_matrix
        a = self.num_attributes
        v = self.vectors()
        weights = torch.stack(
            [self.w_a2v_score, self.w_a2v_attention, self.w_v2a_attention, self.w_v2a_score]
        )  # (4, D_w, D_v)
        maps = torch.matmul(v, weights).reshape(4 * a, self.feature_dim)  # rows v_i W_k
        projected = project_regions(feature_map, maps)  # (B, R, 4A), bf16 under autocast
        # the softmaxes, sums and class scores in float32, outside autocast
        with torch.autocast(device_type=projected.device.type, enabled=False):
            p = projected.float()
            score_a2v, logit_a2v, logit_v2a, score_v2a = p.split(a, dim=-1)  # (B, R, A) each
            beta = logit_a2v.softmax(dim=1)  # a2v: over the regions, per attribute
            gamma = logit_v2a.softmax(dim=-1)  # v2a: over the attributes, per region
            psi_a2v = (beta * score_a2v).sum(dim=1)  # (B, A)
            psi_v2a = (gamma * score_v2a).sum(dim=1)
            zt = z.float().t()
            s_a2v = psi_a2v @ zt  # (B, C')
            s_v2a = psi_v2a @ zt
            w = float(self.cfg.w_a2v)
            logits = w * s_a2v + (1.0 - w) * s_v2a
            embedding = w * psi_a2v + (1.0 - w) * psi_v2a
        return MsdnOutput(
            logits=logits,
            embedding=embedding,
            class_matrix=z,
            branches={"a2v": s_a2v, "v2a": s_v2a},
            attention=beta.transpose(1, 2) if return_attention else None,
            attention_scores=psi_a2v if return_attention else None,
        )
