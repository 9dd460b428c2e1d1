"""Settings of the msdn model (docs/peers.md); defaults are the authors' CUB recipe.

MSDN (Chen et al., CVPR 2022) has two sub-nets, attribute→visual (a2v) and visual→attribute
(v2a), each scoring classes; training adds a semantic distillation term between them and test
scores mix the two. Values come from the authors' ``MSDN_cub.py`` and ``core/helper_MSDN_CUB.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from crest.settings.fields import doc


@dataclass
class MsdnConfig:
    lambda_cal: float = doc(
        0.1,
        "λ_cal, weight of each sub-net's self-calibration term (MSDN_cub.py lambda_; SUN 0.0001, AWA2 0.12)",
    )
    lambda_distill: float = doc(
        0.001,
        "λ_d, weight of the semantic distillation term between the two sub-nets "
        "(MSDN_cub.py; SUN 0.01, AWA2 1e-7)",
    )
    w_a2v: float = doc(
        0.9,
        "weight of the attribute→visual sub-net in the class scores; the visual→attribute one "
        "gets 1 − w_a2v (helper_MSDN_*.py: CUB 0.9, SUN 0.7, AWA2 1.0)",
    )
    normalize_vectors: bool = doc(
        False,
        "L2-normalise the (trainable) attribute vectors V at every forward (normalize_V: AWA2 "
        "only); V is initialised L2-normalised either way",
    )
    trainable_vectors: bool = doc(
        True, "learn the attribute vectors V (trainable_w2v=True in all released recipes)"
    )

    def validate(self, source: str) -> list[str]:
        """Problems with these settings, each naming its key (empty: none)."""
        problems: list[str] = []
        for key in ("lambda_cal", "lambda_distill"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                problems.append(f"{source}: msdn.{key}={value!r}; expected a finite number ≥ 0")
        w = self.w_a2v
        if not (isinstance(w, (int, float)) and math.isfinite(w) and 0.0 <= w <= 1.0):
            problems.append(
                f"{source}: msdn.w_a2v={w!r}; expected in [0, 1] (the v2a sub-net gets 1 − w_a2v)"
            )
        return problems
