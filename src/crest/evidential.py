"""Evidential deep learning pieces of CREST (docs/method.md §2.5 and §3.4), reusable beyond ZSL.

Everything works on Dirichlet parameters ``alpha`` of shape (..., K), alpha = evidence + 1.
Subjective-logic view: belief b = e/S, uncertainty u = K/S, with S = Σ alpha and Σ b + u = 1.

Evidence is clamped at :data:`MAX_EVIDENCE` (alpha at MAX_EVIDENCE + 1) wherever it enters: past it,
float32 products of uncertainties underflow (Dempster fusion turns NaN at 1e30) and the
lgamma/digamma differences of the loss cancel catastrophically (a negative EDL loss at 1e30;
bf16 and fp32 inputs of 1e4 gave losses 2.08 and 74.08). The clamp has no gradient beyond it.
The EDL terms are computed in float64 and returned in float32 (float64 stays float64).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class Dirichlet(NamedTuple):
    """An opinion: Dirichlet parameters and the quantities derived from them."""

    alpha: torch.Tensor  # (..., K)
    strength: torch.Tensor  # (..., 1)  S = Σ alpha
    belief: torch.Tensor  # (..., K)  b = e / S
    uncertainty: torch.Tensor  # (..., 1)  u = K / S
    probability: torch.Tensor  # (..., K)  alpha / S


#: the largest evidence a class can hold (docs/method.md §2.5); alpha ≤ MAX_EVIDENCE + 1
MAX_EVIDENCE = 1e6


def _bounded(alpha: torch.Tensor) -> torch.Tensor:
    """``alpha`` in float32 or wider, with evidence clamped at MAX_EVIDENCE."""
    return _wide(alpha).clamp(max=MAX_EVIDENCE + 1.0)


def _wide(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 in, float32 inside: digamma, lgamma and the sums over classes lose too
    much in half precision (negative losses in bf16, NaN in fp16); float64 stays float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def dirichlet(evidence: torch.Tensor) -> Dirichlet:
    """The opinion of non-negative ``evidence`` (..., K): alpha = e + 1."""
    return opinion(_wide(evidence) + 1.0)


def opinion(alpha: torch.Tensor) -> Dirichlet:
    """The opinion of Dirichlet parameters ``alpha`` (..., K), all ≥ 1 (evidence clamped at
    MAX_EVIDENCE)."""
    alpha = _bounded(alpha)
    k = alpha.shape[-1]
    strength = alpha.sum(dim=-1, keepdim=True)
    return Dirichlet(
        alpha=alpha,
        strength=strength,
        belief=(alpha - 1.0) / strength,
        uncertainty=k / strength,
        probability=alpha / strength,
    )


def evidence_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Non-negative evidence from class logits: softplus, at most MAX_EVIDENCE (docs/method.md §2.5)."""
    return F.softplus(_wide(logits)).clamp(max=MAX_EVIDENCE)


def kl_to_uniform(alpha: torch.Tensor) -> torch.Tensor:
    """KL(Dir(alpha) ‖ Dir(1)) per sample, in closed form (..., K) → (...); computed in float64
    (a difference of large lgamma values), returned in alpha's float32-or-wider dtype."""
    out_dtype = _wide(alpha).dtype
    alpha = _bounded(alpha).double()
    k = alpha.shape[-1]
    s = alpha.sum(dim=-1)
    return (
        torch.lgamma(s)
        - torch.lgamma(torch.tensor(float(k), dtype=alpha.dtype, device=alpha.device))
        - torch.lgamma(alpha).sum(dim=-1)
        + ((alpha - 1.0) * (torch.digamma(alpha) - torch.digamma(s).unsqueeze(-1))).sum(dim=-1)
    ).to(out_dtype)


def edl_terms(alpha: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample digamma cross-entropy and KL with the target evidence removed (Eq. 11–14),
    computed in float64 and returned in alpha's float32-or-wider dtype."""
    out_dtype = _wide(alpha).dtype
    alpha = _bounded(alpha).double()
    y = F.one_hot(target, alpha.shape[-1]).to(alpha.dtype)
    s = alpha.sum(dim=-1)
    ace = torch.digamma(s) - (y * torch.digamma(alpha)).sum(dim=-1)
    alpha_tilde = y + (1.0 - y) * alpha
    return ace.to(out_dtype), kl_to_uniform(alpha_tilde).to(out_dtype)


def kl_weight(epoch: int, anneal_epochs: int) -> float:
    """λ_t = min(1, t / ξ): the KL term fades in over ``anneal_epochs`` epochs."""
    return 1.0 if anneal_epochs <= 0 else min(1.0, epoch / anneal_epochs)


def edl_loss(
    alpha: torch.Tensor, target: torch.Tensor, epoch: int, anneal_epochs: int = 10
) -> torch.Tensor:
    """Batch mean of digamma CE + min(1, epoch/anneal) · KL; ``target`` holds class indices."""
    ace, kl = edl_terms(alpha, target)
    return (ace + kl_weight(epoch, anneal_epochs) * kl).mean()


def fuse_average(alpha_1: torch.Tensor, alpha_2: torch.Tensor) -> torch.Tensor:
    """Averaging belief fusion: exactly the evidence average, ᾱ = (e_1 + e_2)/2 + 1."""
    return (_bounded(alpha_1) + _bounded(alpha_2)) / 2.0


def fuse_dempster(alpha_1: torch.Tensor, alpha_2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The reduced Dempster rule of TMC: b = (b1⊙b2 + b1 u2 + b2 u1)/(1−κ), u = u1 u2/(1−κ)."""
    o1, o2 = opinion(alpha_1), opinion(alpha_2)
    k = alpha_1.shape[-1]
    total = o1.belief.sum(-1, keepdim=True) * o2.belief.sum(-1, keepdim=True)
    agree = (o1.belief * o2.belief).sum(-1, keepdim=True)
    kappa = total - agree  # Σ_{i≠j} b1_i b2_j
    norm = (1.0 - kappa).clamp_min(eps)
    belief = (
        o1.belief * o2.belief + o1.belief * o2.uncertainty + o2.belief * o1.uncertainty
    ) / norm
    uncertainty = o1.uncertainty * o2.uncertainty / norm
    strength = k / uncertainty
    return belief * strength + 1.0


def conflict_degree(alpha_1: torch.Tensor, alpha_2: torch.Tensor) -> torch.Tensor:
    """c = c_p · c_c (Eq. 8–10): projected-probability distance times joint certainty, per sample."""
    o1, o2 = opinion(alpha_1), opinion(alpha_2)
    c_p = 0.5 * (o1.probability - o2.probability).abs().sum(dim=-1)
    c_c = (1.0 - o1.uncertainty.squeeze(-1)) * (1.0 - o2.uncertainty.squeeze(-1))
    return c_p * c_c


#: Dirichlet fusion rules of ``model.fusion``
FUSION_RULES = {"average": fuse_average, "dempster": fuse_dempster}


def fuse(rule: str, alpha_1: torch.Tensor, alpha_2: torch.Tensor) -> torch.Tensor:
    """Fuse two opinions with the named rule (``average`` or ``dempster``)."""
    return FUSION_RULES[rule](alpha_1, alpha_2)
