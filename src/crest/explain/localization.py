"""Does VGT look where an attribute is? A localization score against ground-truth masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Localization:
    score: float  # share of (image, present attribute) pairs whose most-attended region is in the attribute's region
    uniform: float  # the same for uniform attention (a random region): mean |region| / R
    pairs: int


def localization_score(
    attention: np.ndarray, present: np.ndarray, part_masks: np.ndarray, attribute_part: np.ndarray
) -> Localization:
    """``attention`` (N, A, R), ``present`` (N, A) bool, ``part_masks`` (N, P, R) bool, ``attribute_part`` (A,).

    An attribute's true region in an image is the mask of the part it belongs to. Uniform attention
    has no most-attended region: its reference is the chance that a region drawn at random lies in
    the true region, i.e. |region| / R, averaged over the same pairs.
    """
    present = np.asarray(present, dtype=bool)
    masks = np.asarray(part_masks, dtype=bool)[:, np.asarray(attribute_part), :]  # (N, A, R)
    top = np.asarray(attention).argmax(axis=-1)  # (N, A)
    hit = np.take_along_axis(masks, top[..., None], axis=-1)[..., 0]
    if not present.any():
        return Localization(float("nan"), float("nan"), 0)
    uniform = masks.mean(axis=-1)
    return Localization(
        float(hit[present].mean()), float(uniform[present].mean()), int(present.sum())
    )
