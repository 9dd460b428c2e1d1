"""Uncertainty that is measured: calibration error, unseen-vs-seen AUROC, accuracy–coverage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """ECE with equal-width confidence bins: Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|.

    A confidence of exactly 0 falls in the first bin, 1 in the last.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return float("nan")
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / confidence.size)


def reliability(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin (mean confidence, accuracy, count) for a reliability diagram (NaN where empty)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    conf, acc, count = np.full(bins, np.nan), np.full(bins, np.nan), np.zeros(bins, dtype=int)
    for b in range(bins):
        members = index == b
        count[b] = members.sum()
        if count[b]:
            conf[b], acc[b] = confidence[members].mean(), correct[members].mean()
    return conf, acc, count


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for telling positives from negatives (ties count ½).

    Computed as the Mann–Whitney U statistic with average ranks.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


@dataclass(frozen=True)
class CoverageCurve:
    """Accuracy on the most certain fraction of samples, for each coverage level."""

    coverage: np.ndarray  # fractions kept, increasing to 1
    accuracy: np.ndarray
    area: float  # mean accuracy over the coverage levels (area under the curve)


def accuracy_coverage(
    uncertainty: np.ndarray, correct: np.ndarray, levels: int = 20
) -> CoverageCurve:
    """Keep the ``x`` most certain samples (lowest uncertainty; ties broken by order) for x = N/levels … N."""
    uncertainty = np.asarray(uncertainty, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    n = len(uncertainty)
    if n == 0:
        return CoverageCurve(np.zeros(0), np.zeros(0), float("nan"))
    order = np.argsort(uncertainty, kind="mergesort")
    cum = np.cumsum(correct[order])
    kept = np.unique(
        np.clip(np.round(np.linspace(1, levels, levels) / levels * n).astype(int), 1, n)
    )
    acc = cum[kept - 1] / kept
    return CoverageCurve(coverage=kept / n, accuracy=acc, area=float(acc.mean()))
