"""Uncertainty that is measured: calibration error, AUROC, accuracy–coverage and risk–coverage.

Calibration bins are formed as scikit-learn's ``calibration_curve`` forms them, and the ROC area
equals its ``roc_auc_score`` (computed from ranks here, without importing it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bins on [0, 1] as scikit-learn's ``calibration_curve`` forms them
    (right-closed: a confidence of exactly k/bins falls in bin k − 1; 0 in the first, 1 in the last)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.searchsorted(edges[1:-1], confidence)


def reliability(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin (mean confidence, accuracy, count) for a reliability diagram (NaN where empty).

    The same bins and per-bin means as ``sklearn.calibration.calibration_curve(strategy="uniform")``,
    which leaves empty bins out; here every bin keeps its place and its count, as ECE needs them.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    index = _bin_index(confidence, bins)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(index, weights=confidence, minlength=bins) / count
        acc = np.bincount(index, weights=correct, minlength=bins) / count
    return conf, acc, count


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """ECE with equal-width confidence bins: Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|."""
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.size == 0:
        return float("nan")
    conf, acc, count = reliability(confidence, correct, bins)
    kept = count > 0
    return float((count[kept] * np.abs(acc[kept] - conf[kept])).sum() / confidence.size)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for telling positives from negatives (ties count ½);
    NaN when one of the two groups is empty or a score is NaN/inf."""
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if positive.all() or not positive.any() or not np.all(np.isfinite(scores)):
        return float("nan")  # undefined: one group empty, or scores that are not numbers
    # the Mann–Whitney form (what sklearn's roc_auc_score computes, ties ½ through average
    # ranks): every training run asks for AUROCs, and importing scikit-learn takes over a second
    _, group, count = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(count) - (count - 1) / 2.0  # 1-based rank of each distinct value
    ranks = average_rank[group.reshape(-1)]
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


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


def risk_coverage_area(uncertainty: np.ndarray, correct: np.ndarray) -> float:
    """AURC: the error rate of the k most certain samples, averaged over k = 1 … N.

    Lower is better; a perfect ranking of the same predictions gives the least possible area, a
    random one the overall error rate. Tied uncertainties are ranked by their mean error.
    """
    uncertainty = np.asarray(uncertainty, dtype=np.float64)
    wrong = 1.0 - np.asarray(correct, dtype=np.float64)
    n = len(uncertainty)
    if n == 0:
        return float("nan")
    _, inverse = np.unique(uncertainty, return_inverse=True)
    # within a tie, every order is as likely: give each member its group's mean error
    group_err = np.bincount(inverse, weights=wrong) / np.bincount(inverse)
    order = np.argsort(uncertainty, kind="mergesort")
    risk = np.cumsum(group_err[inverse[order]]) / np.arange(1, n + 1)
    return float(risk.mean())


def risk_coverage_curve(
    confidence: np.ndarray, correct: np.ndarray, points: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk): the error rate of the decisions kept when only the most confident
    fraction is accepted, at up to ``points`` coverage levels (for the risk–coverage figure)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    wrong = 1.0 - np.asarray(correct, dtype=np.float64)
    n = len(confidence)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-confidence, kind="mergesort")
    risk = np.cumsum(wrong[order]) / np.arange(1, n + 1)
    kept = np.unique(np.clip(np.round(np.linspace(1, n, min(points, n))).astype(int), 1, n))
    return kept / n, risk[kept - 1]
