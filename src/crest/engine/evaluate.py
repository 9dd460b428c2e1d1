"""Evaluation (spec §4): scores over all classes, CZSL, GZSL U/S/H at γ, the γ curve, uncertainty."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from crest.calibration import accuracy_coverage, auroc, expected_calibration_error, reliability
from crest.data.dataset import FeatureDataset, feature_loader
from crest.engine.checkpoint import restore, selected_gamma
from crest.engine.device import autocast
from crest.metrics import czsl_accuracy, gzsl, seen_unseen_curve
from crest.models.crest import CrestModel


@dataclass
class Outputs:
    """Per-sample outputs of a model on some rows (numpy, on CPU)."""

    logits: np.ndarray  # (N, C) uncalibrated f·Zᵀ
    labels: np.ndarray  # (N,)
    uncertainty: np.ndarray  # (N,) fused u over the classes in play
    rows: np.ndarray  # (N,) file rows
    alpha: np.ndarray  # (N, C) fused Dirichlet parameters over all classes


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
) -> Outputs:
    """Run ``model`` over file rows; uncertainty is computed over ``classes`` (default: all).

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
    local = _collect(model, path, mine, labels, device, batch_size, precision, classes, num_workers)
    if world == 1:
        return local
    shares: list[Any] = [None] * world
    dist.all_gather_object(shares, (local.logits, local.labels, local.uncertainty, local.alpha))
    return Outputs(
        logits=np.concatenate([s[0] for s in shares]),
        labels=np.concatenate([s[1] for s in shares]),
        uncertainty=np.concatenate([s[2] for s in shares]),
        rows=rows,
        alpha=np.concatenate([s[3] for s in shares]),
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
) -> Outputs:
    was_training = model.training
    model.eval()
    data = FeatureDataset(path, rows, labels=labels)
    loader = feature_loader(
        data,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    logits, unc, ys, alphas = [], [], [], []
    for x, y in loader:
        with autocast(device, precision):
            out = model(x.to(device, non_blocking=True))
        logits.append(out.logits.float().cpu())
        # uncertainty over the classes in play only (e.g. train ∪ validation classes in the val protocol)
        unc.append(
            (out.uncertainty if classes is None else _uncertainty(out, classes)).float().cpu()
        )
        ys.append(y)
        alphas.append(out.alpha.float().cpu())
    model.train(was_training)
    return Outputs(
        logits=torch.cat(logits).numpy() if logits else np.zeros((0, model.class_matrix.shape[0])),
        labels=torch.cat(ys).numpy() if ys else np.zeros(0, dtype=np.int64),
        uncertainty=torch.cat(unc).numpy() if unc else np.zeros(0),
        rows=np.asarray(rows),
        alpha=torch.cat(alphas).numpy() if alphas else np.zeros((0, model.class_matrix.shape[0])),
    )


def _uncertainty(out: Any, classes: np.ndarray) -> torch.Tensor:
    alpha = out.alpha.float()[:, torch.as_tensor(classes, device=out.alpha.device)]
    return alpha.shape[1] / alpha.sum(dim=1)


def uncertainty_metrics(
    seen_out: Outputs, unseen_out: Outputs, seen: np.ndarray, unseen: np.ndarray, gamma: float
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """ECE of the fused probabilities α/S, AUROC of the fused uncertainty for unseen-vs-seen test
    images, and the accuracy–coverage curve of the GZSL predictions at γ (most certain first)."""
    play = np.concatenate([seen, unseen])
    alpha = np.concatenate([seen_out.alpha, unseen_out.alpha])[:, play]
    labels = np.concatenate([seen_out.labels, unseen_out.labels])
    prob = alpha / alpha.sum(axis=1, keepdims=True)
    conf, pred = prob.max(axis=1), play[prob.argmax(axis=1)]
    u = np.concatenate([seen_out.uncertainty, unseen_out.uncertainty])
    is_unseen = np.concatenate(
        [np.zeros(len(seen_out.labels), bool), np.ones(len(unseen_out.labels), bool)]
    )
    logits = np.concatenate([seen_out.logits, unseen_out.logits])[:, play].astype(np.float64)
    logits[:, len(seen) :] += gamma
    gzsl_correct = play[logits.argmax(axis=1)] == labels
    curve = accuracy_coverage(u, gzsl_correct)
    conf_bins, acc_bins, counts = reliability(conf, pred == labels)
    scalars = {
        "ece": expected_calibration_error(conf, pred == labels),
        "auroc_unseen": auroc(u, is_unseen),
        "coverage_auc": curve.area,
    }
    curves = {
        "coverage": curve.coverage.tolist(),
        "coverage_accuracy": curve.accuracy.tolist(),
        "reliability_confidence": np.nan_to_num(conf_bins, nan=-1.0).tolist(),
        "reliability_accuracy": np.nan_to_num(acc_bins, nan=-1.0).tolist(),
        "reliability_count": counts.tolist(),
    }
    return scalars, curves


def zsl_metrics(
    seen_out: Outputs, unseen_out: Outputs, seen: np.ndarray, unseen: np.ndarray, gamma: float
) -> dict[str, Any]:
    """CZSL, GZSL U/S/H at γ, AUSUC and the γ of best H, mean uncertainty on seen/unseen samples,
    ECE, unseen-vs-seen AUROC of the uncertainty and the accuracy–coverage area (and, under
    ``curves``, the accuracy–coverage curve and the reliability diagram)."""
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
            "czsl_acc": czsl_accuracy(unseen_out.logits, unseen_out.labels, unseen),
            "gzsl_u": g.unseen,
            "gzsl_s": g.seen,
            "gzsl_h": g.harmonic,
            "gamma": float(gamma),
            "ausuc": curve.ausuc,
            "best_gamma": curve.best_gamma,
            "best_gamma_h": curve.best_harmonic,
            "uncertainty_seen": float(np.mean(seen_out.uncertainty))
            if len(seen_out.uncertainty)
            else float("nan"),
            "uncertainty_unseen": float(np.mean(unseen_out.uncertainty))
            if len(unseen_out.uncertainty)
            else float("nan"),
        }
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    gamma: float | None = None,
    data: str | Path | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Test metrics of a saved model: CZSL, GZSL at γ (given, else the run's), AUSUC, uncertainty."""
    r = restore(checkpoint, data=data, device=device)
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
