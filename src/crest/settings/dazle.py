"""Settings of the dazle model (docs/peers.md); defaults are the authors' CUB recipe.

DAZLE (Huynh & Elhamifar, CVPR 2020). The defaults follow the released CUB notebook of
hbdat/cvpr20_DAZLE (``notebook/DAZLE_CUB.ipynb``, ``core/DAZLE.py``); the optimizer, its rate,
momentum and weight decay, the batch size and the epochs are shared settings (``train.*``) that
the recipes in :mod:`crest.models.dazle.recipes` set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from crest.settings.fields import doc

CE_OVER = ("all", "seen")
SC_FORMS = ("code", "paper")


@dataclass
class DazleConfig:
    lambda_cal: float = doc(
        0.1, "λ, weight of the self-calibration term (the authors' 0.1 on every dataset)"
    )
    ce_over: str = doc(
        "all",
        "classes of the cross-entropy's softmax: all = seen and unseen (the released code, "
        "is_conservative=True), seen = the seen classes only (the paper)",
        CE_OVER,
    )
    sc_form: str = doc(
        "code",
        "self-calibration form: −log of the batch-mean unseen mass (the released code) or "
        "−mean Σ_u log p_u (the shared block's other form; docs/peers.md)",
        SC_FORMS,
    )
    trainable_vectors: bool = doc(
        True, "fine-tune the attribute word vectors V (the authors' trainable_w2v=True)"
    )
    normalize_vectors: bool = doc(
        False,
        "L2-normalise the rows of V at every forward pass (the authors' normalize_V: false on "
        "CUB and SUN, true on AwA2); V always starts L2-normalised",
    )
    attribute_attention: bool = doc(
        True,
        "attention over attributes, β_a = σ(v_aᵀ W_3 h_a), scaling each attribute score (false = "
        "β_a = 1: the authors' SUN notebook, uniform_att_2=True)",
    )

    def validate(self, source: str) -> list[str]:
        """Problems with these settings, each naming its key (empty: none)."""
        problems = []
        if not (isinstance(self.lambda_cal, (int, float)) and math.isfinite(self.lambda_cal)):
            problems.append(
                f"{source}: dazle.lambda_cal={self.lambda_cal!r}; expected a number ≥ 0"
            )
        elif self.lambda_cal < 0:
            problems.append(f"{source}: dazle.lambda_cal={self.lambda_cal!r}; expected ≥ 0")
        if self.ce_over not in CE_OVER:
            problems.append(
                f"{source}: dazle.ce_over={self.ce_over!r}; expected one of {', '.join(CE_OVER)}"
            )
        if self.sc_form not in SC_FORMS:
            problems.append(
                f"{source}: dazle.sc_form={self.sc_form!r}; expected one of {', '.join(SC_FORMS)}"
            )
        return problems
