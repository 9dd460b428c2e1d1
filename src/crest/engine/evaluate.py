"""Evaluation (docs/method.md §5): scores over all classes, CZSL, GZSL U/S/H at γ, the γ curve, uncertainty."""

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
)
from crest.data.schema.feature_cache import FeatureCache
from crest.engine.checkpoint import load_model, selected_gamma
from crest.engine.runner import file_rows, run_model
from crest.metrics import Key, czsl_accuracy, gzsl, seen_unseen_curve
from crest.models.crest import CrestModel, CrestOutput


@dataclass
class Outputs:
    """Per-sample outputs of a model on some rows (numpy, on CPU)."""

    logits: np.ndarray  # (N, C) uncalibrated f·Zᵀ
    labels: np.ndarray  # (N,)
    uncertainty: np.ndarray  # (N,) fused u over the classes in play
    rows: np.ndarray  # (N,) file rows
    alpha: np.ndarray  # (N, C) fused Dirichlet parameters over all classes
    # each grounding direction alone ("vgt": s^V, "agt": s^A), when the model has both
    branch_logits: dict[str, np.ndarray] = field(default_factory=dict)  # (N, C) per branch
    branch_uncertainty: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) per branch


#: the single-direction outputs of a two-branch model: (logits field, Dirichlet field) per name
BRANCHES = {"vgt": ("logits_vgt", "alpha_vgt"), "agt": ("logits_agt", "alpha_agt")}


@torch.no_grad()
def collect_outputs(
    model: CrestModel,
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
    """Run ``model`` over file rows; uncertainty is computed over ``classes`` (default: all).
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
            local.uncertainty,
            local.alpha,
            local.branch_logits,
            local.branch_uncertainty,
        ),
    )
    return Outputs(
        logits=np.concatenate([s[0] for s in shares]),
        labels=np.concatenate([s[1] for s in shares]),
        uncertainty=np.concatenate([s[2] for s in shares]),
        rows=rows,
        alpha=np.concatenate([s[3] for s in shares]),
        branch_logits={k: np.concatenate([s[4][k] for s in shares]) for k in local.branch_logits},
        branch_uncertainty={
            k: np.concatenate([s[5][k] for s in shares]) for k in local.branch_uncertainty
        },
    )


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _collect(
    model: CrestModel,
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
    both = model.vgt is not None and model.agt is not None

    def pick(out: CrestOutput, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        assert y is not None
        kept = {
            "logits": out.logits.float(),
            # uncertainty over the classes in play only (train ∪ validation classes under val)
            "uncertainty": _uncertainty(out.alpha, classes),
            "labels": y,
            "alpha": out.alpha.float(),
        }
        if both:
            for name, (logit_field, alpha_field) in BRANCHES.items():
                kept[f"logits_{name}"] = getattr(out, logit_field).float()
                kept[f"uncertainty_{name}"] = _uncertainty(getattr(out, alpha_field), classes)
        return kept

    reader = file_rows(path, rows, labels, device, batch_size, cache, num_workers)
    got = run_model(model, reader, pick, precision, progress="evaluating")
    width = model.class_matrix.shape[0]

    def field(name: str, shape: tuple[int, ...]) -> np.ndarray:
        # no rows on this rank: empty arrays, so that every rank gathers the same keys
        return got[name] if name in got else np.zeros(shape)

    return Outputs(
        logits=field("logits", (0, width)),
        labels=field("labels", (0,)).astype(np.int64),
        uncertainty=field("uncertainty", (0,)),
        rows=np.asarray(rows),
        alpha=field("alpha", (0, width)),
        branch_logits={n: field(f"logits_{n}", (0, width)) for n in BRANCHES} if both else {},
        branch_uncertainty={n: field(f"uncertainty_{n}", (0,)) for n in BRANCHES} if both else {},
    )


def _uncertainty(alpha: torch.Tensor, classes: np.ndarray | None) -> torch.Tensor:
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


def uncertainty_metrics(
    seen_out: Outputs, unseen_out: Outputs, seen: np.ndarray, unseen: np.ndarray, gamma: float
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """How far the fused uncertainty can be trusted, on the GZSL decisions at γ (Eq. 18):

    * ``auroc_error``: AUROC of u for telling wrong from right decisions;
    * ``auroc_unseen``: AUROC of u for telling unseen-class from seen-class images;
    * ``ece``: calibration error of the decision's probability (:func:`decision_probability`);
      ``ece_dirichlet`` the same for the fused projected probability α/S, for comparison;
    * ``aurc``: area under the risk–coverage curve of the decisions ranked by u (lower is better),
      and ``coverage_auc``, the accuracy–coverage area at 20 levels;
    * references: ``auroc_error_confidence`` (1 − the decision's confidence instead of u) and
      ``auroc_unseen_seen_only_u`` (u = K/S over the seen classes only).
    """
    play = np.concatenate([seen, unseen])
    labels = np.concatenate([seen_out.labels, unseen_out.labels])
    alpha = np.concatenate([seen_out.alpha, unseen_out.alpha])[:, play]
    dirichlet_prob = alpha / alpha.sum(axis=1, keepdims=True)
    logits = np.concatenate([seen_out.logits, unseen_out.logits])[:, play]
    prob = decision_probability(logits, gamma, len(seen))
    pred = play[prob.argmax(axis=1)]
    correct = pred == labels
    u = np.concatenate([seen_out.uncertainty, unseen_out.uncertainty])
    is_unseen = np.concatenate(
        [np.zeros(len(seen_out.labels), bool), np.ones(len(unseen_out.labels), bool)]
    )
    curve = accuracy_coverage(u, correct)
    conf = prob.max(axis=1)
    conf_bins, acc_bins, counts = reliability(conf, correct)
    dirichlet_conf = dirichlet_prob.max(axis=1)
    dirichlet_correct = play[dirichlet_prob.argmax(axis=1)] == labels
    # references beside the fused u: the decision's own confidence, and u over the seen classes
    # only (how familiar the image is to the training classes); docs/method.md compares them
    seen_alpha = np.concatenate([seen_out.alpha, unseen_out.alpha])[:, seen]
    u_seen_only = len(seen) / seen_alpha.sum(axis=1)
    scalars = {
        Key.ECE: expected_calibration_error(conf, correct),
        Key.ECE_DIRICHLET: expected_calibration_error(dirichlet_conf, dirichlet_correct),
        Key.CONFIDENCE: float(conf.mean()) if len(conf) else float("nan"),
        Key.AUROC_ERROR: auroc(u, ~correct),
        Key.AUROC_UNSEEN: auroc(u, is_unseen),
        Key.AUROC_ERROR_CONFIDENCE: auroc(-conf, ~correct),
        Key.AUROC_UNSEEN_SEEN_ONLY_U: auroc(u_seen_only, is_unseen),
        Key.AURC: risk_coverage_area(u, correct),
        Key.COVERAGE_AUC: curve.area,
    }
    curves = {
        "coverage": curve.coverage.tolist(),
        "coverage_accuracy": curve.accuracy.tolist(),
        "reliability_confidence": np.nan_to_num(conf_bins, nan=-1.0).tolist(),
        "reliability_accuracy": np.nan_to_num(acc_bins, nan=-1.0).tolist(),
        "reliability_count": counts.tolist(),
    }
    return scalars, curves


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def branch_metrics(
    seen_out: Outputs, unseen_out: Outputs, seen: np.ndarray, unseen: np.ndarray, gamma: float
) -> dict[str, dict[str, float]]:
    """Each grounding direction scored alone: CZSL, GZSL at the run's γ, the best-γ H of its own
    seen–unseen curve (the fair comparison: a branch's score scale differs from the fused one),
    and its mean uncertainty; empty for a one-branch model."""
    result = {}
    for name in seen_out.branch_logits:
        ls, lu = seen_out.branch_logits[name], unseen_out.branch_logits[name]
        ys, yu = seen_out.labels, unseen_out.labels
        g = gzsl(ls, ys, lu, yu, seen, unseen, gamma)
        curve = seen_unseen_curve(ls, ys, lu, yu, seen, unseen)
        u = np.concatenate([seen_out.branch_uncertainty[name], unseen_out.branch_uncertainty[name]])
        result[name] = {
            Key.CZSL: czsl_accuracy(lu, yu, unseen),
            Key.U: g.unseen,
            Key.S: g.seen,
            Key.H: g.harmonic,
            Key.BEST_GAMMA: curve.best_gamma,
            Key.BEST_H: curve.best_harmonic,
            "uncertainty": _mean(u),
        }
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
    """For each μ of MU_GRID (and the ``configured`` μ), the best-γ H of the fused scores
    μ s^A + (1 − μ) s^V (Eq. 16, 18 with another μ): what validation chooses μ from. Empty for a
    one-branch model."""
    if not seen_out.branch_logits:
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
        curve.append({"mu": mu, Key.BEST_GAMMA: c.best_gamma, Key.BEST_H: c.best_harmonic})
    return curve


def zsl_metrics(
    seen_out: Outputs, unseen_out: Outputs, seen: np.ndarray, unseen: np.ndarray, gamma: float
) -> dict[str, Any]:
    """CZSL, GZSL U/S/H at γ, AUSUC and the γ of best H, mean uncertainty on seen/unseen samples,
    the uncertainty measures of :func:`uncertainty_metrics` (and, under ``curves``, the
    accuracy–coverage curve and the reliability diagram) and, under ``branches``, VGT and AGT
    scored alone (:func:`branch_metrics`)."""
    g = gzsl(
        seen_out.logits, seen_out.labels, unseen_out.logits, unseen_out.labels, seen, unseen, gamma
    )
    curve = seen_unseen_curve(
        seen_out.logits, seen_out.labels, unseen_out.logits, unseen_out.labels, seen, unseen
    )
    scalars, curves = uncertainty_metrics(seen_out, unseen_out, seen, unseen, gamma)
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
            Key.U_SEEN: _mean(seen_out.uncertainty),
            Key.U_UNSEEN: _mean(unseen_out.uncertainty),
            "branches": branch_metrics(seen_out, unseen_out, seen, unseen, gamma),
        }
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    gamma: float | None = None,
    data: str | Path | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Test metrics of a saved model: CZSL, GZSL at γ (given, else the run's), AUSUC, uncertainty."""
    r = load_model(checkpoint, data=data, device=device)
    state, cfg, bench, model, dev, path = r.state, r.cfg, r.bench, r.model, r.device, r.data_path
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
    metrics: dict[str, Any] = zsl_metrics(
        seen_out, unseen_out, bench.seen_classes, bench.unseen_classes, gamma
    )
    metrics.update(
        selection=f"checkpoint ({state.get('phase', 'final')} phase)",
        epoch=int(state["epoch"]),
        selection_detail=f"epoch {state['epoch']} as saved in {Path(checkpoint).name}; {how} ({gamma:g})",
    )
    return metrics
