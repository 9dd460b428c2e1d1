"""The CREST model (docs/method.md §2); built through :func:`crest.models.registry.create_model`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crest.config import ModelConfig
from crest.evidential import conflict_degree, evidence_from_logits, fuse, opinion
from crest.models.blocks import FeedForward, SelfAttentionBlock
from crest.models.contract import ModelOutput, ZSLModel, concat_outputs, shared
from crest.models.geometry import GeometryBias
from crest.models.grounding import AttributeGrounding, VisualGrounding
from crest.models.pattern_bank import MetaPatternBank
from crest.regions import embed_regions_together, to_regions

#: inference piece size on the CPU: at the CUB shape (batch 256, 2 cores) pieces of 8, 16 and 32
#: samples all ran at 53-60 samples/s, 64 at 48-53, the whole batch at 37 with 1.8 GB peak RSS
#: against 1.1-1.2 GB; 16 keeps a piece's activations (about 6 MB a tensor) in cache
CPU_INFERENCE_CHUNK = 16


@dataclass(kw_only=True)
class CrestOutput(ModelOutput):
    """CREST's forward pass: the contract's fields plus what CREST's own loss and figures read.

    The contract's ``branches`` hold s^V ("vgt") and s^A ("agt") when both directions are on;
    ``attention`` is VGT's attribute→region map with ``attention_scores`` = a^V; ``alpha`` is the
    fused Dirichlet. Per-branch fields are None when the branch is switched off.
    """

    scores_vgt: torch.Tensor | None = None  # a^V (B, A)
    scores_agt: torch.Tensor | None = None  # ã^A (B, A), after the bank
    scores_agt_raw: torch.Tensor | None = None  # a^A (B, A), before the bank
    logits_vgt: torch.Tensor | None = None  # s^V (B, C)
    logits_agt: torch.Tensor | None = None  # s^A (B, C)
    region_relevance: torch.Tensor | None = None  # AGT s_r (B, R)
    bank_query: torch.Tensor | None = None  # Q (B, d_p)
    alpha_vgt: torch.Tensor | None = None  # Dirichlet parameters per branch (B, C)
    alpha_agt: torch.Tensor | None = None
    vacuity: torch.Tensor | None = None  # fused u = K/S (B,) (docs/method.md §2.5)
    vacuity_vgt: torch.Tensor | None = None
    vacuity_agt: torch.Tensor | None = None
    conflict: torch.Tensor | None = None  # c (B,) when both branches are on
    bank_patterns: torch.Tensor | None = shared()  # meta-patterns M (φ, d_p), with a bank


class AttributeContext(NamedTuple):
    """The batch-independent part of a forward pass (the attribute side and the grid biases)."""

    attributes: torch.Tensor  # embedded attributes (A, d)
    vgt_queries: torch.Tensor | None  # VGT decoder queries (A, d), after attribute self-attention
    vgt_projection: torch.Tensor | None  # W_Vᵀ v_i (A, d)
    bias_vgt: torch.Tensor | None  # geometry logit biases (R, R)
    bias_agt: torch.Tensor | None
    attributes_agt: torch.Tensor  # AGT's embedded attributes (``attributes`` with a shared front)


def zero_residual_branches(module: nn.Module) -> None:
    """``model.residual_init=zero``: every feed-forward output layer and every self-attention
    output map under ``module`` starts at zero, so each post-LN block starts as LN(x) and its
    branches grow from the first gradients (docs/method.md §8.8). The cross-attention output maps
    keep their initialisation: they carry the image into VGT's and AGT's scores."""
    with torch.no_grad():
        for block in module.modules():
            layers: list[nn.Linear] = []
            if isinstance(block, FeedForward):
                layers.append(block.fc2)
            if isinstance(block, SelfAttentionBlock):
                layers.append(block.out)
            for layer in layers:
                layer.weight.zero_()
                if layer.bias is not None:
                    layer.bias.zero_()


def center_rows(vectors: torch.Tensor) -> torch.Tensor:
    """Word vectors minus their mean over attributes (all-zero rows, "no vector", stay zero)."""
    present = vectors.norm(dim=1) > 0
    unit = F.normalize(vectors, dim=-1)
    centred = unit - unit[present].mean(dim=0, keepdim=True)
    return torch.where(present[:, None], centred, vectors)


class CrestModel(ZSLModel):
    name = "crest"
    has_attention = True  # VGT's map, when VGT is on

    class_matrix: torch.Tensor  # Z (C, A), a buffer: moves with the model, saved in checkpoints

    def __init__(
        self,
        cfg: ModelConfig,
        feature_dim: int,
        attribute_vectors: np.ndarray,
        class_matrix: np.ndarray,
    ) -> None:
        super().__init__()
        if not (cfg.use_vgt or cfg.use_agt):
            raise ValueError("at least one of model.use_vgt and model.use_agt must be true")
        self.cfg = cfg
        vectors = torch.as_tensor(np.asarray(attribute_vectors), dtype=torch.float32)
        num_attributes, word_dim = vectors.shape
        if cfg.center_attribute_vectors:
            vectors = center_rows(vectors)
        # V: initialised L2-normalised, trainable (an all-zero row, as SUN has one, stays zero at init)
        self.attribute_vectors = nn.Parameter(F.normalize(vectors, dim=-1))
        self.register_buffer(
            "class_matrix", torch.as_tensor(np.asarray(class_matrix), dtype=torch.float32)
        )
        self.region_embed = nn.Linear(feature_dim, cfg.d)
        self.attribute_embed = nn.Linear(word_dim, cfg.d)
        # model.shared_front=false: AGT gets its own front, so that neither direction shapes the
        # embedding the other one reads (docs/method.md §8)
        own_front = not cfg.shared_front and cfg.use_vgt and cfg.use_agt
        self.region_embed_agt = nn.Linear(feature_dim, cfg.d) if own_front else None
        self.attribute_embed_agt = nn.Linear(word_dim, cfg.d) if own_front else None
        geometry = cfg.encoder == "geometry"
        self.vgt = (
            VisualGrounding(
                cfg.d,
                cfg.d_ff,
                cfg.dropout,
                word_dim,
                cfg.attribute_self_attention,
                cfg.vgt_value_gain,
                zero_output=cfg.vgt_init == "zero",
            )
            if cfg.use_vgt
            else None
        )
        self.agt = (
            AttributeGrounding(
                cfg.d, cfg.d_ff, cfg.dropout, zero_init=cfg.agt_init == "zero", gain=cfg.agt_gain
            )
            if cfg.use_agt
            else None
        )
        self.bank = (
            MetaPatternBank(num_attributes, cfg.bank_size, cfg.bank_dim, cfg.bank_topk)
            if cfg.use_agt and cfg.use_bank
            else None
        )
        self.geometry_vgt = GeometryBias() if geometry and cfg.use_vgt else None
        self.geometry_agt = GeometryBias() if geometry and cfg.use_agt else None
        self.feature_dim = feature_dim
        if cfg.residual_init == "zero":
            zero_residual_branches(self)

    @property
    def wants_data_init(self) -> bool:
        return self.cfg.front_init == "centered"

    @torch.no_grad()
    def initialize_from_data(self, feature_map: torch.Tensor) -> None:
        """``model.front_init=centered``: each region embedding's bias becomes −W x̄, x̄ the mean
        L2-normalised region of ``feature_map``, so the embedded regions start centred
        (docs/method.md §8.8)."""
        if not self.wants_data_init:
            return
        mean = to_regions(feature_map.float()).mean(dim=(0, 1))  # x̄ (D_v,)
        for linear in (self.region_embed, self.region_embed_agt):
            if linear is not None and linear.bias is not None:
                linear.bias.copy_(-(linear.weight @ mean.to(linear.weight.dtype)))

    @property
    def num_attributes(self) -> int:
        return int(self.attribute_vectors.shape[0])

    def inference_chunk(self, device: torch.device) -> int:
        """Samples per forward piece when no gradient is taken (0 = the whole batch)."""
        chunk = self.cfg.inference_chunk
        if chunk < 0:  # auto: small pieces stay in the CPU's cache; a GPU wants the whole batch
            return CPU_INFERENCE_CHUNK if device.type == "cpu" else 0
        return chunk

    def forward(
        self,
        feature_map: torch.Tensor,
        class_matrix: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> CrestOutput:
        """``feature_map`` (B, D_v, h, w); ``class_matrix`` (C', A) overrides the stored Z.

        ``return_attention`` fills ``attention`` with VGT's attribute→region map; without it
        VGT runs the fused attention kernel and keeps no (B, A, R) map for backward.
        Without autograd (evaluation, prediction) the batch runs in pieces of
        ``model.inference_chunk`` samples: every output row depends on its own sample only,
        so the result is the same, with a fraction of the activation memory.
        """
        _, _, h, w = feature_map.shape
        side = self.attribute_context(h, w)  # batch-independent: once per call, shared by pieces
        chunk = self.inference_chunk(feature_map.device)
        if not torch.is_grad_enabled() and 0 < chunk < feature_map.shape[0]:
            pieces = [
                self._forward(feature_map[i : i + chunk], side, class_matrix, return_attention)
                for i in range(0, feature_map.shape[0], chunk)
            ]
            return concat_outputs(pieces)
        return self._forward(feature_map, side, class_matrix, return_attention)

    def attribute_context(self, h: int, w: int) -> AttributeContext:
        """Everything that depends on the attributes and the grid but not on the images."""
        attributes = self.attribute_embed(self.attribute_vectors)  # (A, d)
        queries = projected = bias_vgt = bias_agt = None
        if self.vgt is not None:
            queries, projected = self.vgt.attribute_side(attributes, self.attribute_vectors)
            bias_vgt = self.geometry_vgt(h, w) if self.geometry_vgt is not None else None
        attributes_agt = attributes
        if self.agt is not None:
            bias_agt = self.geometry_agt(h, w) if self.geometry_agt is not None else None
            if self.attribute_embed_agt is not None:
                attributes_agt = self.attribute_embed_agt(self.attribute_vectors)
        return AttributeContext(attributes, queries, projected, bias_vgt, bias_agt, attributes_agt)

    def _forward(
        self,
        feature_map: torch.Tensor,
        side: AttributeContext,
        class_matrix: torch.Tensor | None,
        return_attention: bool,
    ) -> CrestOutput:
        z = self.class_matrix if class_matrix is None else class_matrix
        # (B, R, d), regions L2-normalised; AGT's own front (if any) in the same product
        fronts = [self.region_embed]
        if self.agt is not None and self.region_embed_agt is not None:
            fronts.append(self.region_embed_agt)
        regions, *own_agt = embed_regions_together(feature_map, fronts)
        # training fuses with μ (Eq. 16); the reported scores may use the μ validation chose
        mu = self.cfg.mu if self.training or self.cfg.score_mu is None else self.cfg.score_mu
        a_v = attention = a_a_raw = a_a = relevance = query = None
        if self.vgt is not None:
            assert side.vgt_queries is not None and side.vgt_projection is not None
            a_v, attention, _ = self.vgt(
                regions, side.vgt_queries, side.vgt_projection, side.bias_vgt, return_attention
            )
        if self.agt is not None:
            regions_agt = own_agt[0] if own_agt else regions
            a_a_raw, relevance = self.agt(regions_agt, side.attributes_agt, side.bias_agt)
            a_a = a_a_raw
            if self.bank is not None:
                a_a, query = self.bank(a_a_raw)
        if a_v is not None and a_a is not None:
            embedding = mu * a_a + (1.0 - mu) * a_v
        else:
            embedding = a_v if a_v is not None else a_a
        assert embedding is not None
        zt = z.t().to(embedding.dtype)
        logits_v = a_v @ zt if a_v is not None else None
        logits_a = a_a @ zt if a_a is not None else None
        alpha_v = evidence_from_logits(logits_v.float()) + 1.0 if logits_v is not None else None
        alpha_a = evidence_from_logits(logits_a.float()) + 1.0 if logits_a is not None else None
        conflict = None
        alpha: torch.Tensor
        if alpha_v is not None and alpha_a is not None:
            alpha = fuse(self.cfg.fusion, alpha_v, alpha_a)
            conflict = conflict_degree(alpha_v, alpha_a)
        else:
            single = alpha_v if alpha_v is not None else alpha_a
            assert single is not None
            alpha = single
        both = logits_v is not None and logits_a is not None
        return CrestOutput(
            branches={"vgt": logits_v, "agt": logits_a} if both else {},  # type: ignore[dict-item]
            attention_scores=a_v if attention is not None else None,
            branch_alpha={"vgt": alpha_v, "agt": alpha_a} if both else {},  # type: ignore[dict-item]
            embedding=embedding,
            logits=embedding @ zt,
            scores_vgt=a_v,
            scores_agt=a_a,
            scores_agt_raw=a_a_raw,
            logits_vgt=logits_v,
            logits_agt=logits_a,
            attention=attention,
            region_relevance=relevance,
            bank_query=query,
            alpha_vgt=alpha_v,
            alpha_agt=alpha_a,
            alpha=alpha,
            vacuity=opinion(alpha).uncertainty.squeeze(-1),
            vacuity_vgt=opinion(alpha_v).uncertainty.squeeze(-1) if alpha_v is not None else None,
            vacuity_agt=opinion(alpha_a).uncertainty.squeeze(-1) if alpha_a is not None else None,
            conflict=conflict,
            class_matrix=z,
            bank_patterns=self.bank.patterns if self.bank is not None else None,
        )
