"""ZSL metrics (Xian et al.): accuracy is always the mean over classes of per-class top-1 accuracy.

Scores are (N, C) over *all* classes of the benchmark; functions take the classes in play
explicitly, so the same code serves the test protocol and the validation protocol.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


class Key:
    """The names of the metrics in metrics.json, metrics.jsonl and every report: this class is
    their one owner, so a metric is renamed in one place (docs/method.md §5)."""

    CZSL = "czsl_acc"
    U = "gzsl_u"
    S = "gzsl_s"
    H = "gzsl_h"
    GAMMA = "gamma"
    BEST_GAMMA = "best_gamma"
    BEST_H = "best_gamma_h"
    AUSUC = "ausuc"
    VACUITY_SEEN = "vacuity_seen"  # mean paper's u = K/S on seen / unseen images
    VACUITY_UNSEEN = "vacuity_unseen"
    # the reported opinion (crest.opinion, docs/method.md §6)
    AUROC_ERROR = "auroc_error"  # of 1 − confidence, wrong vs right decisions
    AUROC_UNSEEN = "auroc_unseen"  # of p_unseen, unseen vs seen images
    ECE = "ece"  # of confidence
    ECE_P_UNSEEN = "ece_p_unseen"  # of p_unseen as the probability that the image is unseen
    CONFIDENCE = "confidence"  # mean confidence
    P_UNSEEN_SEEN = "p_unseen_seen"  # mean p_unseen on seen / unseen images
    P_UNSEEN_UNSEEN = "p_unseen_unseen"
    AURC = "aurc"  # risk–coverage area, decisions ranked by confidence
    COVERAGE_AUC = "coverage_auc"
    # references: the paper's vacuity and the plain softmax decision probability
    AUROC_ERROR_VACUITY = "auroc_error_vacuity"
    AUROC_UNSEEN_VACUITY = "auroc_unseen_vacuity"
    AUROC_ERROR_SOFTMAX = "auroc_error_softmax"
    ECE_SOFTMAX = "ece_softmax"
    ECE_DIRICHLET = "ece_dirichlet"
    OPINION = "opinion"  # how the reported opinion was set (OpinionSettings.describe)
    SELECTION_DETAIL = "selection_detail"

    #: names of earlier releases, still read from old metrics files and checkpoints
    LEGACY: ClassVar[dict[str, str]] = {
        VACUITY_SEEN: "uncertainty_seen",
        VACUITY_UNSEEN: "uncertainty_unseen",
    }

    @classmethod
    def read(cls, record: dict[str, Any], key: str, default: Any = None) -> Any:
        """``record[key]``, or its name of an earlier release, or ``default``."""
        if key in record:
            return record[key]
        return record.get(cls.LEGACY.get(key, key), default)


@dataclass(frozen=True)
class ZslScores:
    """The four numbers of a ZSL table (fractions in [0, 1]): CZSL accuracy on unseen classes,
    and GZSL accuracy on unseen (U) and seen (S) test images with their harmonic mean H."""

    czsl: float
    unseen: float
    seen: float
    harmonic: float

    def as_dict(self) -> dict[str, float]:
        return {Key.CZSL: self.czsl, Key.U: self.unseen, Key.S: self.seen, Key.H: self.harmonic}

    @classmethod
    def of(cls, record: dict[str, float]) -> ZslScores:
        """The scores of a metrics record (metrics.json, a history entry, a branch's entry)."""
        return cls(record[Key.CZSL], record[Key.U], record[Key.S], record[Key.H])


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def per_class_accuracy(y_true: ArrayLike, y_pred: ArrayLike, classes: ArrayLike) -> float:
    """Mean over ``classes`` of the top-1 accuracy within each class.

    A class with no samples is left out of the mean (with a warning), as it has no accuracy.
    """
    y_true, y_pred, classes = (
        _np(y_true).astype(np.int64),
        _np(y_pred).astype(np.int64),
        _np(classes).astype(np.int64),
    )
    accs = []
    empty = []
    for c in classes:
        mask = y_true == c
        if not mask.any():
            empty.append(int(c))
            continue
        accs.append(float((y_pred[mask] == c).mean()))
    if empty:
        warnings.warn(
            f"{len(empty)} classes have no test samples and are left out of the mean (e.g. class {empty[0]})",
            stacklevel=2,
        )
    return float(np.mean(accs)) if accs else 0.0


def _restricted_argmax(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return classes[np.argmax(scores[:, classes], axis=1)]


def czsl_accuracy(scores: ArrayLike, y_true: ArrayLike, unseen_classes: ArrayLike) -> float:
    """Conventional ZSL: predict among unseen classes only; per-class mean accuracy."""
    s, unseen = _np(scores), _np(unseen_classes).astype(np.int64)
    return per_class_accuracy(y_true, _restricted_argmax(s, unseen), unseen)


@dataclass(frozen=True)
class GZSLResult:
    """Generalised ZSL accuracies at one calibration γ (all in [0, 1])."""

    seen: float
    unseen: float
    harmonic: float
    gamma: float

    @property
    def S(self) -> float:  # the paper's names
        return self.seen

    @property
    def U(self) -> float:
        return self.unseen

    @property
    def H(self) -> float:
        return self.harmonic


def harmonic_mean(seen: float, unseen: float) -> float:
    return 0.0 if seen + unseen == 0 else 2.0 * seen * unseen / (seen + unseen)


def _calibrated_predict(
    scores: np.ndarray, seen: np.ndarray, unseen: np.ndarray, gamma: float
) -> np.ndarray:
    play = np.concatenate([seen, unseen])
    s = scores[:, play].astype(np.float64)
    s[:, len(seen) :] += gamma
    return play[np.argmax(s, axis=1)]


def gzsl(
    scores_seen: ArrayLike,
    y_seen: ArrayLike,
    scores_unseen: ArrayLike,
    y_unseen: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike,
    gamma: float = 0.0,
) -> GZSLResult:
    """GZSL S, U, H: argmax over seen ∪ unseen with γ added to unseen-class scores."""
    seen, unseen = _np(seen_classes).astype(np.int64), _np(unseen_classes).astype(np.int64)
    pred_s = _calibrated_predict(_np(scores_seen), seen, unseen, gamma)
    pred_u = _calibrated_predict(_np(scores_unseen), seen, unseen, gamma)
    s = per_class_accuracy(y_seen, pred_s, seen)
    u = per_class_accuracy(y_unseen, pred_u, unseen)
    return GZSLResult(seen=s, unseen=u, harmonic=harmonic_mean(s, u), gamma=float(gamma))


@dataclass(frozen=True)
class SeenUnseenCurve:
    """S and U as γ sweeps from -inf to +inf (Chao et al.), its area AUSUC, and the best-H point."""

    gammas: np.ndarray
    seen: np.ndarray
    unseen: np.ndarray
    ausuc: float
    best_gamma: float
    best_harmonic: float


def _sample_weights(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Weight of each sample in a per-class mean accuracy (1 / (#classes with samples · class count))."""
    counts = {int(c): int((y == c).sum()) for c in classes}
    present = [c for c, k in counts.items() if k > 0]
    w = np.zeros(len(y))
    for c in present:
        w[y == c] = 1.0 / (len(present) * counts[c])
    return w


def seen_unseen_curve(
    scores_seen: ArrayLike,
    y_seen: ArrayLike,
    scores_unseen: ArrayLike,
    y_unseen: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike,
) -> SeenUnseenCurve:
    """The exact seen–unseen accuracy curve over γ, its area (AUSUC) and the γ of best H.

    A sample's prediction switches from its best seen class to its best unseen class when γ
    passes ``max_seen - max_unseen``; S(γ) and U(γ) are step functions of those thresholds,
    evaluated exactly at every one of them.
    """
    seen, unseen = _np(seen_classes).astype(np.int64), _np(unseen_classes).astype(np.int64)
    ys, yu = _np(y_seen).astype(np.int64), _np(y_unseen).astype(np.int64)
    parts = []
    for scores, y, is_seen in ((_np(scores_seen), ys, True), (_np(scores_unseen), yu, False)):
        s = scores.astype(np.float64)
        best_s, best_u = s[:, seen].max(1), s[:, unseen].max(1)
        pred_s, pred_u = _restricted_argmax(s, seen), _restricted_argmax(s, unseen)
        threshold = best_s - best_u  # unseen wins when gamma > threshold
        weight = _sample_weights(y, seen if is_seen else unseen)
        correct = (pred_s == y) if is_seen else (pred_u == y)
        parts.append((threshold, weight * correct, is_seen))
    thresholds = np.unique(np.concatenate([p[0] for p in parts]))
    # evaluate at -inf, then just above each threshold (ties go to the seen class at gamma == threshold)
    gammas = np.concatenate([[-np.inf], thresholds])
    seen_acc = np.zeros(len(gammas))
    unseen_acc = np.zeros(len(gammas))
    for threshold, gain, is_seen in parts:
        order = np.argsort(threshold)
        t_sorted, g_sorted = threshold[order], gain[order]
        # number of samples whose threshold < gamma (switched to unseen) for gamma just above each point
        switched = np.searchsorted(t_sorted, gammas, side="right")
        cum = np.concatenate([[0.0], np.cumsum(g_sorted)])
        if is_seen:
            seen_acc = cum[-1] - cum[switched]  # still predicted seen
        else:
            unseen_acc = cum[switched]
    # trapezoid rule for the area under S as a function of U (U grows with gamma)
    ausuc = float(np.sum(np.diff(unseen_acc) * (seen_acc[1:] + seen_acc[:-1]) / 2.0))
    h = np.where(
        seen_acc + unseen_acc > 0,
        2 * seen_acc * unseen_acc / np.maximum(seen_acc + unseen_acc, 1e-12),
        0.0,
    )
    k = int(np.argmax(h))
    # a representative gamma strictly inside the chosen step
    best_gamma = _inside_step(gammas, k)
    return SeenUnseenCurve(
        gammas=gammas,
        seen=seen_acc,
        unseen=unseen_acc,
        ausuc=ausuc,
        best_gamma=best_gamma,
        best_harmonic=float(h[k]),
    )


def _inside_step(gammas: np.ndarray, k: int) -> float:
    """A finite γ that realises step k of the curve (between threshold k and the next)."""
    finite = gammas[np.isfinite(gammas)]
    if finite.size == 0:
        return 0.0
    if k == 0:
        return float(finite[0] - 1.0)
    lo = gammas[k]
    hi = gammas[k + 1] if k + 1 < len(gammas) else lo + 2.0
    return float((lo + hi) / 2.0)
