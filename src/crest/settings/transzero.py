"""Settings of the transzero model (docs/peers.md); defaults are the authors' CUB recipe.

Sources: ``wandb_config/cub_gzsl.yaml`` and ``model.py`` of github:shiming-chen/TransZero (the
field each setting stands for is named in its help text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from crest.settings.fields import doc


@dataclass
class TransZeroConfig:
    lambda_cal: float = doc(0.3, "λ_SC, weight of the self-calibration term (yaml lambda_)")
    lambda_reg: float = doc(
        0.005, "λ_AR, weight of the attribute-regression MSE term (yaml lambda_reg)"
    )
    d: int = doc(300, "common width of encoder and decoder (yaml tf_common_dim)")
    d_ff: int = doc(512, "FFN hidden width of encoder and decoder (yaml tf_dim_feedforward)")
    dropout: float = doc(
        0.4, "dropout p of the residual branches, FFNs and decoder attention (yaml tf_dropout)"
    )
    encoder_attention_dropout: float = doc(
        0.1,
        "dropout p on the encoder's attention weights (fixed at 0.1 in the authors' model.py, "
        "whatever tf_dropout is)",
    )
    encoder_layers: int = doc(1, "feature augmentation encoder layers (yaml tf_ec_layer)")
    decoder_layers: int = doc(1, "visual-semantic decoder layers (yaml tf_dc_layer)")
    self_attention: bool = doc(
        True, "attribute self-attention in the decoder before cross-attention (yaml tf_SAtt)"
    )
    geometry: bool = doc(
        True,
        "subtract the learned relative-geometry term from the encoder's attention logits "
        "(the locality augmentation of the feature augmentation encoder; false = plain self-"
        "attention, an ablation, not an authors' recipe)",
    )
    normalize_vectors: bool = doc(
        False,
        "L2-normalise the (trainable) attribute word vectors at every forward pass; they are "
        "always normalised once at initialisation (yaml normalize_V)",
    )
    ce_over: str = doc(
        "all",
        "cross-entropy over all classes, seen and unseen (the authors' is_conservative=True), "
        "or over the seen classes only",
        ("all", "seen"),
    )

    def validate(self, source: str) -> list[str]:
        """Problems with these settings, each naming its key (empty: none)."""
        problems: list[str] = []

        def bad(key: str, value: object, expected: str) -> None:
            problems.append(f"{source}: transzero.{key}={value!r}; expected {expected}")

        for key in ("lambda_cal", "lambda_reg"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                bad(key, value, "a finite number ≥ 0")
        for key in ("d", "d_ff", "encoder_layers", "decoder_layers"):
            value = getattr(self, key)
            if value < 1:
                bad(key, value, "an integer ≥ 1")
        for key in ("dropout", "encoder_attention_dropout"):
            value = getattr(self, key)
            if not (0 <= value < 1):
                bad(key, value, "a probability in [0, 1)")
        if self.ce_over not in ("all", "seen"):
            bad("ce_over", self.ce_over, "one of all, seen")
        return problems
