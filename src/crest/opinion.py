"""The opinion crest reports for each image (docs/method.md §6): ``confidence``, the probability
that the GZSL decision is right, and ``p_unseen``, the belief that the image shows a class not seen
in training. The paper's vacuity u = K/S stays the model's own quantity (§2.5).

A labelled extension of the paper. The paper's evidence softplus(s) reads the unpinned absolute
level of the logits, so its opinion says little about the decision (§8.5). The reported opinion
reads the calibrated scores' *relative* level instead:

    e_c = exp((s_c + γ·1[c ∈ C^u] − b) / T),   α = e + 1,   S = Σ_c α_c

``confidence`` is the projected probability α_ĉ/S of the decided class ĉ (the argmax of Eq. 18);
``p_unseen`` the projected probability of the opinion coarsened over the partition {C^s, C^u},
Σ_{c∈C^u} α_c / S. T and b are fitted on validation classes (train classes seen, validation classes
pseudo-unseen) by the likelihood of the true class; without a validation phase T = 1 and no level
(b → −∞), where ``confidence`` is the softmax decision probability of earlier releases.

Optionally (``ErrorModel``) a logistic model over the signals of :func:`signals`, fitted on the same
validation outputs, replaces the projected probability as ``confidence`` where it ranked errors
better under cross-validation. Pure numpy/torch: nothing here reads files or knows the trainer.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from crest.evidential import conflict_degree, evidence_from_logits

#: T and b without a validation phase (`final`, `test-oracle`): the softmax decision probability
FIXED_TEMPERATURE = 1.0
#: the signals the error model may combine (docs/method.md §6.2)
SIGNALS = (
    "confidence_logit",  # log-odds of the opinion's projected probability of the decision
    "margin",  # (top-1 − top-2) of the calibrated scores, over T
    "partition_margin",  # |log-odds of p_unseen|: how decided the seen/unseen question is
    "decided_unseen",  # 1 when the decision is an unseen class
    "branch_agreement",  # share of the two directions whose own decision equals the fused one
    "log_vacuity",  # log of the paper's u = K/S
    "conflict",  # the paper's conflict degree c between the two directions (Eq. 8-10)
)
#: the error model is adopted only when its cross-validated AUROC beats the confidence's by this
ADOPT_MARGIN = 0.005
_EPS = 1e-6


@dataclass(frozen=True)
class ErrorModel:
    """A logistic model P(decision right) = σ(w · (x − mean)/scale + bias) over named signals."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, x: dict[str, np.ndarray]) -> np.ndarray:
        z = np.full(len(next(iter(x.values()))), self.bias, dtype=np.float64)
        for name, m, s, w in zip(self.names, self.mean, self.scale, self.weights, strict=True):
            z += w * (np.asarray(x[name], np.float64) - m) / s
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErrorModel:
        return cls(
            tuple(d["names"]),
            tuple(float(v) for v in d["mean"]),
            tuple(float(v) for v in d["scale"]),
            tuple(float(v) for v in d["weights"]),
            float(d["bias"]),
        )


@dataclass(frozen=True)
class OpinionSettings:
    """How scores become the reported opinion: T, the level b (None: no level), where they came
    from, the optional error model and the validation decisions behind ``--max-risk``."""

    temperature: float = FIXED_TEMPERATURE
    level: float | None = None
    source: str = "fixed"  # "validation": fitted on validation classes; "fixed": the values above
    error_model: ErrorModel | None = None
    # what validation measured (kept for the record and the report)
    fit: dict[str, float] = field(default_factory=dict)
    # the validation decisions' confidences and whether each was right, for --max-risk thresholds
    val_confidence: tuple[float, ...] = ()
    val_correct: tuple[bool, ...] = ()

    def describe(self) -> str:
        level = "no level" if self.level is None else f"b = {self.level:.3f}"
        how = "fitted on the validation classes" if self.source == "validation" else "fixed"
        text = f"T = {self.temperature:.3f}, {level}, {how}"
        if self.error_model is not None:
            text += "; confidence from the error model over " + ", ".join(self.error_model.names)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "level": self.level,
            "source": self.source,
            "error_model": None if self.error_model is None else self.error_model.to_dict(),
            "fit": dict(self.fit),
            "val_confidence": [round(float(c), 6) for c in self.val_confidence],
            "val_correct": [bool(c) for c in self.val_correct],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> OpinionSettings:
        """Settings saved by :meth:`to_dict`; None (a model saved before them): the fixed ones."""
        if not d:
            return cls()
        level = d.get("level")
        return cls(
            temperature=float(d.get("temperature", FIXED_TEMPERATURE)),
            level=None if level is None else float(level),
            source=str(d.get("source", "fixed")),
            error_model=ErrorModel.from_dict(d["error_model"]) if d.get("error_model") else None,
            fit={k: float(v) for k, v in d.get("fit", {}).items()},
            val_confidence=tuple(float(c) for c in d.get("val_confidence", [])),
            val_correct=tuple(bool(c) for c in d.get("val_correct", [])),
        )


@dataclass(frozen=True)
class Reported:
    """Per image: the decision (a column of the scores), its confidence and p_unseen."""

    decision: np.ndarray  # (N,) column index of the decided class
    confidence: np.ndarray  # (N,) P(decision right)
    p_unseen: np.ndarray  # (N,) belief that the image shows an unseen class
    projected: np.ndarray  # (N,) the opinion's projected probability of the decision


def calibrated(scores: np.ndarray, unseen: np.ndarray, gamma: float) -> np.ndarray:
    """s + γ·1[unseen] (float64), ``unseen`` a boolean mask over the columns."""
    return np.asarray(scores, np.float64) + gamma * np.asarray(unseen, np.float64)[None, :]


def log_alpha(z: torch.Tensor, temperature: Any, level: Any | None) -> torch.Tensor:
    """log α of the reported opinion for calibrated scores ``z``: log(exp((z − b)/T) + 1), or
    z/T without a level (evidence ≫ 1: the +1 of every class vanishes)."""
    if level is None:
        return z / temperature
    return torch.logaddexp((z - level) / temperature, torch.zeros((), dtype=z.dtype))


def opinion_probabilities(
    scores: np.ndarray, unseen: np.ndarray, gamma: float, settings: OpinionSettings
) -> np.ndarray:
    """The reported opinion's projected probabilities α/S over the columns (N, K)."""
    z = torch.as_tensor(calibrated(scores, unseen, gamma))
    la = log_alpha(z, settings.temperature, settings.level)
    return torch.softmax(la, dim=1).numpy()


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _conflict(vgt: np.ndarray, agt: np.ndarray) -> np.ndarray:
    alphas = [
        evidence_from_logits(torch.as_tensor(x, dtype=torch.float64)) + 1.0 for x in (vgt, agt)
    ]
    return conflict_degree(*alphas).numpy()


def signals(
    scores: np.ndarray,
    unseen: np.ndarray,
    gamma: float,
    settings: OpinionSettings,
    branch_scores: dict[str, np.ndarray] | None = None,
    vacuity: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-image signals of :data:`SIGNALS` (those the inputs allow) over the columns of
    ``scores`` (N, K); ``branch_scores`` holds s^V and s^A over the same columns."""
    z = calibrated(scores, unseen, gamma)
    prob = opinion_probabilities(scores, unseen, gamma, settings)
    decision = z.argmax(axis=1)
    rows = np.arange(len(z))
    top2 = -np.sort(-z, axis=1)[:, :2] if z.shape[1] > 1 else np.c_[z, z]
    p_unseen = prob[:, np.asarray(unseen, bool)].sum(axis=1)
    out = {
        "confidence_logit": _logit(prob[rows, decision]),
        "margin": (top2[:, 0] - top2[:, 1]) / settings.temperature,
        "partition_margin": np.abs(_logit(p_unseen)),
        "decided_unseen": np.asarray(unseen, bool)[decision].astype(np.float64),
    }
    if branch_scores and {"vgt", "agt"} <= set(branch_scores):
        agree = [
            calibrated(branch_scores[n], unseen, gamma).argmax(axis=1) == decision
            for n in ("vgt", "agt")
        ]
        out["branch_agreement"] = (agree[0].astype(np.float64) + agree[1]) / 2.0
        out["conflict"] = _conflict(branch_scores["vgt"], branch_scores["agt"])
    if vacuity is not None:
        out["log_vacuity"] = np.log(np.clip(np.asarray(vacuity, np.float64), _EPS, None))
    return out


def report(
    scores: np.ndarray,
    unseen: np.ndarray,
    gamma: float,
    settings: OpinionSettings,
    branch_scores: dict[str, np.ndarray] | None = None,
    vacuity: np.ndarray | None = None,
) -> Reported:
    """The reported opinion of each image (rows of ``scores`` (N, K) over the classes in play,
    ``unseen`` a boolean mask over those columns)."""
    prob = opinion_probabilities(scores, unseen, gamma, settings)
    decision = calibrated(scores, unseen, gamma).argmax(axis=1) if len(prob) else np.zeros(0, int)
    projected = prob[np.arange(len(prob)), decision]
    confidence = projected
    model = settings.error_model
    if model is not None and len(prob):
        x = signals(scores, unseen, gamma, settings, branch_scores, vacuity)
        if set(model.names) <= set(x):
            confidence = model.probability(x)
        else:  # e.g. a one-branch call: the model's thresholds no longer match what is reported
            warnings.warn(
                "the error model needs the signals "
                f"{sorted(set(model.names) - set(x))}, which these outputs lack; confidence is "
                "the opinion's projected probability instead",
                stacklevel=2,
            )
    p_unseen = prob[:, np.asarray(unseen, bool)].sum(axis=1)
    return Reported(decision, confidence, p_unseen, projected)


# ---- fitting on validation classes -----------------------------------------------------------


def fit_temperature_level(
    scores: np.ndarray, target: np.ndarray, unseen: np.ndarray, gamma: float
) -> tuple[float, float | None, float]:
    """(T, b, NLL): the T and level b that maximise the likelihood of the true class ``target``
    (column indices) under α/S; b is kept only where it beats the no-level opinion's likelihood."""
    z = torch.as_tensor(calibrated(scores, unseen, gamma))
    y = torch.as_tensor(np.asarray(target, np.int64))

    def nll(log_t: torch.Tensor, level: torch.Tensor | None) -> torch.Tensor:
        la = log_alpha(z, log_t.exp(), level)
        return -(la.gather(1, y[:, None]).squeeze(1) - torch.logsumexp(la, dim=1)).mean()

    # a coarse grid first (the likelihood is not convex in (T, b)), then L-BFGS from its best
    top = z.max(dim=1).values
    best: tuple[float, float, float | None] = (math.inf, 0.0, None)
    for t in np.geomspace(0.05, 20.0, 13):
        log_t = torch.tensor(math.log(t), dtype=torch.float64)
        value = float(nll(log_t, None))
        if value < best[0]:
            best = (value, math.log(t), None)
        for q in (0.1, 0.3, 0.5, 0.7, 0.9):
            level = torch.quantile(top, q) - t * torch.tensor([0.0, 2.0, 5.0], dtype=torch.float64)
            for b in level:
                value = float(nll(log_t, b))
                if value < best[0]:
                    best = (value, math.log(t), float(b))
    refined = _refine(nll, best[1], best[2])
    if refined[0] < best[0]:
        best = refined
    value, log_t_best, level_best = best
    return math.exp(log_t_best), level_best, value


def _refine(nll: Any, log_t: float, level: float | None) -> tuple[float, float, float | None]:
    t_param = torch.tensor(log_t, dtype=torch.float64, requires_grad=True)
    params = [t_param]
    b_param = None
    if level is not None:
        b_param = torch.tensor(level, dtype=torch.float64, requires_grad=True)
        params.append(b_param)
    opt = torch.optim.LBFGS(params, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nll(t_param.clamp(-6.0, 6.0), b_param)
        loss.backward()
        return loss

    try:
        opt.step(closure)
    except RuntimeError:  # a step that left the finite range: keep the grid's point
        return (math.inf, log_t, level)
    with torch.no_grad():
        value = float(nll(t_param.clamp(-6.0, 6.0), b_param))
    if not math.isfinite(value):
        return (math.inf, log_t, level)
    return (
        value,
        float(t_param.detach().clamp(-6.0, 6.0)),
        None if b_param is None else float(b_param.detach()),
    )


def fit_error_model(
    x: dict[str, np.ndarray], correct: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[ErrorModel | None, dict[str, float]]:
    """A logistic model of P(right) over the signals ``x``, and what cross-validation measured:
    ``auroc_confidence`` (the projected probability alone) and ``auroc_error_model`` (out of fold).
    The model is returned only when it beats the confidence by :data:`ADOPT_MARGIN`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    correct = np.asarray(correct, bool)
    names = tuple(n for n in SIGNALS if n in x)
    if correct.all() or not correct.any() or min(correct.sum(), (~correct).sum()) < folds:
        return None, {}
    data = np.stack([np.asarray(x[n], np.float64) for n in names], axis=1)
    mean, scale = data.mean(axis=0), data.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    std = (data - mean) / scale
    held_out = np.zeros(len(correct))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(std, correct):
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(std[train], correct[train])
        held_out[test] = lr.decision_function(std[test])
    measured = {
        "auroc_confidence": float(roc_auc_score(~correct, -x["confidence_logit"])),
        "auroc_error_model": float(roc_auc_score(~correct, -held_out)),
    }
    if measured["auroc_error_model"] < measured["auroc_confidence"] + ADOPT_MARGIN:
        return None, measured
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(std, correct)
    model = ErrorModel(
        names,
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in lr.coef_[0]),
        float(lr.intercept_[0]),
    )
    return model, measured


def fit_opinion(
    scores: np.ndarray,
    target: np.ndarray,
    unseen: np.ndarray,
    gamma: float,
    branch_scores: dict[str, np.ndarray] | None = None,
    vacuity: np.ndarray | None = None,
    error_model: bool = True,
) -> OpinionSettings:
    """Fit the reported opinion on validation outputs: ``scores`` (N, K) over the validation
    protocol's classes in play, ``target`` the true class's column, ``unseen`` the mask of the
    validation (pseudo-unseen) classes, ``gamma`` the validated γ."""
    temperature, level, nll = fit_temperature_level(scores, target, unseen, gamma)
    settings = OpinionSettings(temperature, level, "validation", fit={"nll": nll})
    decision = calibrated(scores, unseen, gamma).argmax(axis=1)
    correct = decision == np.asarray(target)
    fit = dict(settings.fit)
    model = None
    if error_model:
        x = signals(scores, unseen, gamma, settings, branch_scores, vacuity)
        model, measured = fit_error_model(x, correct)
        fit.update(measured)
    settings = OpinionSettings(temperature, level, "validation", model, fit)
    confidence = report(scores, unseen, gamma, settings, branch_scores, vacuity).confidence
    return OpinionSettings(
        temperature,
        level,
        "validation",
        model,
        fit,
        tuple(float(c) for c in confidence),
        tuple(bool(c) for c in correct),
    )


# ---- acting on it ----------------------------------------------------------------------------


#: one-sided confidence of the bound on the validation error rate behind --max-risk, shared by
#: the RISK_LEVELS coverage levels tested (Bonferroni), so that the chosen one holds at 95 %
RISK_DELTA = 0.05
RISK_LEVELS = 20


def risk_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    max_risk: float,
    delta: float = RISK_DELTA,
    levels: int = RISK_LEVELS,
) -> float:
    """The confidence threshold t of the largest coverage among ``levels`` equally spaced ones
    (5 %, 10 %, …, 100 % of the decisions, ranked by confidence) whose one-sided Clopper–Pearson
    upper bound of the error rate, at δ = ``delta``/``levels`` each (so that the chosen level holds
    at 1 − ``delta``), is ≤ ``max_risk``: selective classification with guaranteed risk (Geifman
    & El-Yaniv 2017). A tie at a level's boundary is accepted or refused as a whole. +inf when no
    level qualifies; ``delta=0`` bounds the observed error rate itself."""
    from scipy.stats import beta

    confidence = np.asarray(confidence, np.float64)
    wrong = 1.0 - np.asarray(correct, np.float64)
    n = confidence.size
    if n == 0:
        return math.inf
    order = np.argsort(-confidence, kind="mergesort")
    sorted_conf = confidence[order]
    errors = np.cumsum(wrong[order])
    # each level's threshold is the confidence of its last decision; its ties come in too
    kept = np.unique(np.clip(np.ceil(np.arange(1, levels + 1) / levels * n).astype(int), 1, n))
    kept = np.searchsorted(-sorted_conf, -sorted_conf[kept - 1], side="right")
    kept = np.unique(kept)
    m = errors[kept - 1]
    if delta > 0:
        per_level = delta / levels
        bound = np.where(m < kept, beta.ppf(1.0 - per_level, m + 1, kept - m), 1.0)
    else:
        bound = m / kept
    ok = np.flatnonzero(bound <= max_risk)
    return math.inf if ok.size == 0 else float(sorted_conf[kept[ok[-1]] - 1])


def self_estimated_threshold(confidence: np.ndarray, max_risk: float) -> float:
    """Without validation decisions: the lowest threshold whose accepted decisions have a mean
    1 − confidence ≤ ``max_risk`` (it trusts the confidence's calibration); +inf when none does."""
    confidence = np.asarray(confidence, np.float64)
    if confidence.size == 0:
        return math.inf
    order = np.argsort(-confidence, kind="mergesort")
    sorted_conf = confidence[order]
    expected = np.cumsum(1.0 - sorted_conf) / np.arange(1, len(order) + 1)
    last_of_tie = np.r_[sorted_conf[1:] != sorted_conf[:-1], True]
    ok = np.flatnonzero((expected <= max_risk) & last_of_tie)
    return math.inf if ok.size == 0 else float(sorted_conf[ok[-1]])


def abstention_threshold(
    settings: OpinionSettings, confidence: np.ndarray, max_risk: float, guard: bool = True
) -> tuple[float, str]:
    """(threshold, how it was chosen) for ``--max-risk``: from the validation decisions saved
    with a fitted opinion (:func:`risk_threshold`) and, with ``guard``, never below the threshold
    the inputs' own confidences ask for (:func:`self_estimated_threshold`): validation classes
    are not the test classes, and an input set harder than validation lowers its confidences.
    Without validation decisions, or where no coverage level of them has a bound ≤ ``max_risk``,
    the inputs' own threshold alone, and the text says so."""
    own = self_estimated_threshold(confidence, max_risk)
    if not settings.val_confidence:
        return own, (
            "estimated from these inputs' own confidences (no validation decisions are saved with "
            "this model: no validation phase, or saved before crest fitted its opinion): "
            f"their mean 1 − confidence ≤ {max_risk:g}"
        )
    val = risk_threshold(
        np.asarray(settings.val_confidence), np.asarray(settings.val_correct), max_risk
    )
    how = (
        f"{len(settings.val_confidence)} validation decisions (95 % upper bound of their error "
        f"rate ≤ {max_risk:g})"
    )
    if math.isinf(val):  # validation cannot vouch for any level: say so, and estimate instead
        return own, (
            f"estimated from these inputs' own confidences (mean 1 − confidence ≤ {max_risk:g}): "
            f"no coverage level of the {how.split(' (')[0]} has a 95 % bound ≤ {max_risk:g}"
        )
    if guard and own > val:
        return own, f"the inputs' own confidences (mean 1 − confidence ≤ {max_risk:g}), above {how}"
    return val, f"chosen on {how}"
