"""Evaluation (docs/method.md §5-6): scores over all classes, CZSL, GZSL U/S/H at γ, the γ curve,
and the reported opinion (confidence, p_unseen) beside the paper's vacuity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from crest.calibration import (
    accuracy_coverage,
    auroc,
    expected_calibration_error,
    reliability,
    risk_coverage_area,
    risk_coverage_curve,
)
from crest.data.schema.feature_cache import FeatureCache
from crest.engine.checkpoint import load_model, selected_gamma, selected_opinion
from crest.engine.runner import file_rows, run_model
from crest.metrics import Key, czsl_accuracy, gzsl, seen_unseen_curve
from crest.models.contract import ModelOutput, ZSLModel
from crest.opinion import OpinionSettings, Reported, report


@dataclass
class Outputs:
    """Per-sample outputs of a model on some rows (numpy, on CPU)."""

    logits: np.ndarray  # (N, C) uncalibrated class scores
    labels: np.ndarray  # (N,)
    vacuity: np.ndarray | None  # (N,) the fused u = K/S over the classes in play (evidential)
    rows: np.ndarray  # (N,) file rows
    alpha: np.ndarray | None  # (N, C) fused Dirichlet parameters over all classes (evidential)
    # the model's named branches scored alone (CREST: "vgt" s^V and "agt" s^A)
    branch_logits: dict[str, np.ndarray] = field(default_factory=dict)  # (N, C) per branch
    branch_vacuity: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) per branch


@torch.no_grad()
def collect_outputs(
    model: ZSLModel,
    path: str | Path,
    rows: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    batch_size: int = 256,
    precision: str = "fp32",
    classes: np.ndarray | None = None,
    num_workers: int = 0,
    cache: FeatureCache | None = None,
) -> Outputs:
    """Run ``model`` over file rows; vacuity is computed over ``classes`` (default: all).
    Rows come from ``cache`` when given (every row must be in it), else from the file.

    Under torchrun every rank takes a contiguous share of whole batches (the same batches a single
    process would form, never padded) and the shares are gathered in order: each row is counted
    once and the result equals a single-process evaluation.
    """
    rows = np.asarray(rows)
    world, rank = _world()
    mine = rows
    if world > 1:
        batches = np.array_split(np.arange((len(rows) + batch_size - 1) // batch_size), world)[rank]
        mine = (
            rows[batches[0] * batch_size : (batches[-1] + 1) * batch_size]
            if len(batches)
            else rows[:0]
        )
    local = _collect(
        model, path, mine, labels, device, batch_size, precision, classes, num_workers, cache
    )
    if world == 1:
        return local
    shares: list[Any] = [None] * world
    dist.all_gather_object(
        shares,
        (
            local.logits,
            local.labels,
            local.vacuity,
            local.alpha,
            local.branch_logits,
            local.branch_vacuity,
        ),
    )
    return Outputs(
        logits=np.concatenate([s[0] for s in shares]),
        labels=np.concatenate([s[1] for s in shares]),
        vacuity=None if local.vacuity is None else np.concatenate([s[2] for s in shares]),
        rows=rows,
        alpha=None if local.alpha is None else np.concatenate([s[3] for s in shares]),
        branch_logits={k: np.concatenate([s[4][k] for s in shares]) for k in local.branch_logits},
        branch_vacuity={k: np.concatenate([s[5][k] for s in shares]) for k in local.branch_vacuity},
    )


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _collect(
    model: ZSLModel,
    path: str | Path,
    rows: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    batch_size: int,
    precision: str,
    classes: np.ndarray | None,
    num_workers: int,
    cache: FeatureCache | None,
) -> Outputs:
    def pick(out: ModelOutput, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        assert y is not None
        kept = {"logits": out.logits.float(), "labels": y}
        if out.alpha is not None:
            # vacuity over the classes in play only (train ∪ validation classes under val)
            kept["vacuity"] = _vacuity(out.alpha, classes)
            kept["alpha"] = out.alpha.float()
        for name, branch in out.branches.items():
            kept[f"logits_{name}"] = branch.float()
            if name in out.branch_alpha:
                kept[f"vacuity_{name}"] = _vacuity(out.branch_alpha[name], classes)
        return kept

    reader = file_rows(path, rows, labels, device, batch_size, cache, num_workers)
    got = run_model(model, reader, pick, precision, progress="evaluating")
    width = model.num_classes()
    # what the model gives is known from a forward pass; a rank with no rows asks the model
    probe = got or _probe_keys(model, path, labels, device, precision, classes, pick)
    evidential = "alpha" in probe
    branches = sorted(k.removeprefix("logits_") for k in probe if k.startswith("logits_"))

    def field(name: str, shape: tuple[int, ...]) -> np.ndarray:
        # no rows on this rank: empty arrays, so that every rank gathers the same keys
        return got[name] if name in got else np.zeros(shape)

    return Outputs(
        logits=field("logits", (0, width)),
        labels=field("labels", (0,)).astype(np.int64),
        vacuity=field("vacuity", (0,)) if evidential else None,
        rows=np.asarray(rows),
        alpha=field("alpha", (0, width)) if evidential else None,
        branch_logits={n: field(f"logits_{n}", (0, width)) for n in branches},
        branch_vacuity={
            n: field(f"vacuity_{n}", (0,)) for n in branches if f"vacuity_{n}" in probe
        },
    )


def _probe_keys(
    model: ZSLModel,
    path: str | Path,
    labels: np.ndarray,
    device: torch.device,
    precision: str,
    classes: np.ndarray | None,
    pick: Any,
) -> dict[str, np.ndarray]:
    """The outputs one row gives (a rank whose share is empty still gathers the same keys)."""
    return run_model(
        model, file_rows(path, np.zeros(1, np.int64), labels, device, 1), pick, precision
    )


def _vacuity(alpha: torch.Tensor, classes: np.ndarray | None) -> torch.Tensor:
    """u = K/S of a Dirichlet over ``classes`` (None: all of them)."""
    alpha = alpha.float()
    if classes is not None:
        alpha = alpha[:, torch.as_tensor(classes, device=alpha.device)]
    return alpha.shape[1] / alpha.sum(dim=1)


def decision_probability(logits: np.ndarray, gamma: float, num_seen: int) -> np.ndarray:
    """The probability behind the Eq. 18 decision: softmax over the classes in play of the
    calibrated scores s + γ·1[unseen] (``logits`` (N, K) with the seen classes first).

    Its argmax is the reported GZSL prediction, so its maximum is that prediction's confidence.
    """
    s = logits.astype(np.float64).copy()
    s[:, num_seen:] += gamma
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class PlayOutputs:
    """Seen and unseen rows of an evaluation joined, over the classes in play (seen first)."""

    scores: np.ndarray  # (N, K) fused scores s
    target: np.ndarray  # (N,) column of the true class
    unseen_column: np.ndarray  # (K,) bool
    is_unseen_image: np.ndarray  # (N,) bool
    vacuity: np.ndarray | None  # (N,), evidential models only
    alpha: np.ndarray | None  # (N, K) the fused Dirichlet, evidential models only
    branch_scores: dict[str, np.ndarray]  # s^V, s^A over the same columns
    rows: np.ndarray  # (N,) file rows


def play_outputs(
    seen_out: Outputs,
    unseen_out: Outputs,
    seen: np.ndarray,
    unseen: np.ndarray,
    mu: float | None = None,
) -> PlayOutputs:
    """Join an evaluation's outputs over the classes in play; with ``mu`` the fused scores are
    μ s^A + (1 − μ) s^V (Eq. 16) formed from the two directions' scores."""
    play = np.concatenate([seen, unseen])
    labels = np.concatenate([seen_out.labels, unseen_out.labels]).astype(np.int64)
    width = int(max(play.max(initial=0), labels.max(initial=0))) + 1
    column = np.full(width, -1, np.int64)  # class id → its column (-1: not in play)
    column[play] = np.arange(len(play))
    branches = {
        n: np.concatenate([seen_out.branch_logits[n], unseen_out.branch_logits[n]])[:, play]
        for n in seen_out.branch_logits
    }
    if mu is not None and {"vgt", "agt"} <= set(branches):
        scores = mu * branches["agt"] + (1.0 - mu) * branches["vgt"]
    else:
        scores = np.concatenate([seen_out.logits, unseen_out.logits])[:, play]
    return PlayOutputs(
        scores=scores,
        target=column[labels],
        unseen_column=np.r_[np.zeros(len(seen), bool), np.ones(len(unseen), bool)],
        is_unseen_image=np.r_[
            np.zeros(len(seen_out.labels), bool), np.ones(len(unseen_out.labels), bool)
        ],
        vacuity=_joined(seen_out.vacuity, unseen_out.vacuity),
        alpha=None
        if seen_out.alpha is None or unseen_out.alpha is None
        else np.concatenate([seen_out.alpha, unseen_out.alpha])[:, play],
        branch_scores=branches,
        rows=np.concatenate([seen_out.rows, unseen_out.rows]),
    )


def _joined(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return None if a is None or b is None else np.concatenate([a, b])


def reported_opinion(joined: PlayOutputs, gamma: float, settings: OpinionSettings) -> Reported:
    """The reported opinion (confidence, p_unseen) of every image of ``joined``."""
    return report(
        joined.scores,
        joined.unseen_column,
        gamma,
        settings,
        joined.branch_scores,
        joined.vacuity,
    )


def uncertainty_metrics(
    seen_out: Outputs,
    unseen_out: Outputs,
    seen: np.ndarray,
    unseen: np.ndarray,
    gamma: float,
    opinion: OpinionSettings | None = None,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """How far the reported opinion can be trusted, on the GZSL decisions at γ (Eq. 18):

    * ``auroc_error``: AUROC of 1 − ``confidence`` for telling wrong from right decisions;
    * ``auroc_unseen``: AUROC of ``p_unseen`` for telling unseen-class from seen-class images;
    * ``ece``: calibration error of ``confidence``; ``ece_p_unseen`` of ``p_unseen``;
    * ``aurc``: area under the risk–coverage curve of the decisions ranked by confidence (lower is
      better), and ``coverage_auc``, the accuracy–coverage area at 20 levels;
    * references: the paper's vacuity (``auroc_error_vacuity``, ``auroc_unseen_vacuity``), the
      plain softmax decision probability (``auroc_error_softmax``, ``ece_softmax``) and the
      paper's projected probability α/S (``ece_dirichlet``).

    ``opinion`` sets T, b and the error model (default: the fixed settings, docs/method.md §6).
    """
    settings = opinion or OpinionSettings()
    joined = play_outputs(seen_out, unseen_out, seen, unseen)
    reported = reported_opinion(joined, gamma, settings)
    correct = reported.decision == joined.target
    conf, p_unseen, is_unseen = reported.confidence, reported.p_unseen, joined.is_unseen_image
    softmax = (
        decision_probability(joined.scores, gamma, len(seen)).max(axis=1) if len(conf) else conf
    )
    curve = accuracy_coverage(-conf, correct)
    conf_bins, acc_bins, counts = reliability(conf, correct)
    pu_bins, pu_freq, pu_counts = reliability(p_unseen, is_unseen)
    risk = risk_coverage_curve(conf, correct)
    scalars: dict[str, float] = {
        Key.CONFIDENCE: _mean(conf),
        Key.ECE: expected_calibration_error(conf, correct),
        Key.AUROC_ERROR: auroc(-conf, ~correct),
        Key.AUROC_UNSEEN: auroc(p_unseen, is_unseen),
        # the same bins: p_unseen is a probability of the event "unseen class"
        Key.ECE_P_UNSEEN: expected_calibration_error(p_unseen, is_unseen),
        Key.P_UNSEEN_SEEN: _mean(p_unseen[~is_unseen]),
        Key.P_UNSEEN_UNSEEN: _mean(p_unseen[is_unseen]),
        Key.AURC: risk_coverage_area(-conf, correct),
        Key.COVERAGE_AUC: curve.area,
        Key.AUROC_ERROR_SOFTMAX: auroc(-softmax, ~correct),
        Key.ECE_SOFTMAX: expected_calibration_error(softmax, correct),
    }
    if joined.vacuity is not None and joined.alpha is not None:  # evidential models only
        dirichlet_prob = joined.alpha / joined.alpha.sum(axis=1, keepdims=True)
        dirichlet_correct = dirichlet_prob.argmax(axis=1) == joined.target
        scalars[Key.AUROC_ERROR_VACUITY] = auroc(joined.vacuity, ~correct)
        scalars[Key.AUROC_UNSEEN_VACUITY] = auroc(joined.vacuity, is_unseen)
        scalars[Key.ECE_DIRICHLET] = expected_calibration_error(
            dirichlet_prob.max(axis=1) if len(conf) else conf, dirichlet_correct
        )
    curves = {
        "coverage": curve.coverage.tolist(),
        "coverage_accuracy": curve.accuracy.tolist(),
        "risk_coverage": risk[0].tolist(),
        "risk": risk[1].tolist(),
        "reliability_confidence": np.nan_to_num(conf_bins, nan=-1.0).tolist(),
        "reliability_accuracy": np.nan_to_num(acc_bins, nan=-1.0).tolist(),
        "reliability_count": counts.tolist(),
        "reliability_p_unseen": np.nan_to_num(pu_bins, nan=-1.0).tolist(),
        "reliability_unseen_frequency": np.nan_to_num(pu_freq, nan=-1.0).tolist(),
        "reliability_p_unseen_count": pu_counts.tolist(),
        "p_unseen_hist_seen": np.histogram(p_unseen[~is_unseen], P_UNSEEN_EDGES)[0].tolist(),
        "p_unseen_hist_unseen": np.histogram(p_unseen[is_unseen], P_UNSEEN_EDGES)[0].tolist(),
    }
    return scalars, curves


#: bins of the p_unseen histograms (seen and unseen images)
P_UNSEEN_EDGES = np.linspace(0.0, 1.0, 21)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def branch_metrics(
    seen_out: Outputs, unseen_out: Outputs, seen: np.ndarray, unseen: np.ndarray, gamma: float
) -> dict[str, dict[str, float]]:
    """Each of the model's branches scored alone: CZSL, GZSL at the run's γ, the best-γ H of its own
    seen–unseen curve (the fair comparison: a branch's score scale differs from the fused one),
    and its mean uncertainty; empty for a one-branch model."""
    result = {}
    for name in seen_out.branch_logits:
        ls, lu = seen_out.branch_logits[name], unseen_out.branch_logits[name]
        ys, yu = seen_out.labels, unseen_out.labels
        g = gzsl(ls, ys, lu, yu, seen, unseen, gamma)
        curve = seen_unseen_curve(ls, ys, lu, yu, seen, unseen)
        result[name] = {
            Key.CZSL: czsl_accuracy(lu, yu, unseen),
            Key.U: g.unseen,
            Key.S: g.seen,
            Key.H: g.harmonic,
            Key.BEST_GAMMA: curve.best_gamma,
            Key.BEST_H: curve.best_harmonic,
        }
        if name in seen_out.branch_vacuity and name in unseen_out.branch_vacuity:
            result[name]["vacuity"] = _mean(
                np.concatenate([seen_out.branch_vacuity[name], unseen_out.branch_vacuity[name]])
            )
    return result


#: the μ values tried by validation (train.select_mu)
MU_GRID = tuple(round(0.1 * k, 1) for k in range(11))


def mu_curve(
    seen_out: Outputs,
    unseen_out: Outputs,
    seen: np.ndarray,
    unseen: np.ndarray,
    configured: float | None = None,
) -> list[dict[str, float]]:
    """For each μ of MU_GRID (and the ``configured`` μ), the best-γ H and the CZSL of the fused
    scores μ s^A + (1 − μ) s^V (Eq. 16, 18 with another μ): what validation chooses μ from. Empty
    for a one-branch model."""
    if not {"vgt", "agt"} <= set(seen_out.branch_logits):  # CREST's two directions (Eq. 16)
        return []
    grid = sorted(set(MU_GRID) | ({round(configured, 6)} if configured is not None else set()))
    (vs, as_), (vu, au) = (
        (o.branch_logits["vgt"], o.branch_logits["agt"]) for o in (seen_out, unseen_out)
    )
    curve = []
    for mu in grid:
        c = seen_unseen_curve(
            mu * as_ + (1 - mu) * vs,
            seen_out.labels,
            mu * au + (1 - mu) * vu,
            unseen_out.labels,
            seen,
            unseen,
        )
        point = {"mu": mu, Key.BEST_GAMMA: c.best_gamma, Key.BEST_H: c.best_harmonic}
        point[Key.CZSL] = czsl_accuracy(mu * au + (1 - mu) * vu, unseen_out.labels, unseen)
        curve.append(point)
    return curve


def zsl_metrics(
    seen_out: Outputs,
    unseen_out: Outputs,
    seen: np.ndarray,
    unseen: np.ndarray,
    gamma: float,
    opinion: OpinionSettings | None = None,
) -> dict[str, Any]:
    """CZSL, GZSL U/S/H at γ, AUSUC and the γ of best H, mean vacuity on seen/unseen samples,
    the measures of the reported opinion of :func:`uncertainty_metrics` (and, under ``curves``,
    the coverage curves, reliability diagrams and p_unseen histograms) and, under ``branches``,
    VGT and AGT scored alone (:func:`branch_metrics`)."""
    g = gzsl(
        seen_out.logits, seen_out.labels, unseen_out.logits, unseen_out.labels, seen, unseen, gamma
    )
    curve = seen_unseen_curve(
        seen_out.logits, seen_out.labels, unseen_out.logits, unseen_out.labels, seen, unseen
    )
    scalars, curves = uncertainty_metrics(seen_out, unseen_out, seen, unseen, gamma, opinion)
    if seen_out.vacuity is not None and unseen_out.vacuity is not None:
        scalars[Key.VACUITY_SEEN] = _mean(seen_out.vacuity)
        scalars[Key.VACUITY_UNSEEN] = _mean(unseen_out.vacuity)
    return (
        scalars
        | {"curves": curves}
        | {
            Key.CZSL: czsl_accuracy(unseen_out.logits, unseen_out.labels, unseen),
            Key.U: g.unseen,
            Key.S: g.seen,
            Key.H: g.harmonic,
            Key.GAMMA: float(gamma),
            Key.AUSUC: curve.ausuc,
            Key.BEST_GAMMA: curve.best_gamma,
            Key.BEST_H: curve.best_harmonic,
            "branches": branch_metrics(seen_out, unseen_out, seen, unseen, gamma),
        }
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    gamma: float | None = None,
    data: str | Path | None = None,
    device: str = "auto",
    allow_other_classes: bool = False,
) -> dict[str, Any]:
    """Test metrics of a saved model: CZSL, GZSL at γ (given, else the run's), AUSUC, uncertainty.
    A ``data`` file with another class side is refused unless ``allow_other_classes``."""
    r = load_model(
        checkpoint, data=data, device=device, images=True, allow_other_classes=allow_other_classes
    )
    state, cfg, bench, model, dev, path = r.state, r.cfg, r.bench, r.model, r.device, r.data_path
    assert path is not None
    if gamma is None:
        gamma, how = selected_gamma(state, cfg), "the run's γ"
    else:
        how = "γ given on the command line"
    common: dict[str, Any] = {
        "device": dev,
        "batch_size": cfg.eval.batch_size,
        "precision": cfg.train.precision,
    }
    seen_out = collect_outputs(model, path, bench.splits["test_seen"], bench.labels, **common)
    unseen_out = collect_outputs(model, path, bench.splits["test_unseen"], bench.labels, **common)
    opinion = selected_opinion(state)
    metrics: dict[str, Any] = zsl_metrics(
        seen_out, unseen_out, bench.seen_classes, bench.unseen_classes, gamma, opinion
    )
    metrics[Key.OPINION] = opinion.describe()
    metrics.update(
        selection=f"checkpoint ({state.get('phase', 'final')} phase)",
        epoch=int(state["epoch"]),
        selection_detail=f"epoch {state['epoch']} as saved in {Path(checkpoint).name}; {how} ({gamma:g})",
    )
    return metrics
