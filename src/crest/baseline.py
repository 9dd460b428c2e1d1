"""A floor to beat: ridge regression from mean-pooled regions to class attributes.

pooled(x) = mean over regions of the L2-normalised region features; W = argmin ‖X W − Z_y‖² + λ‖W‖²
(closed form); score_c(x) = cos(pooled(x) W, z_c). γ is chosen on the validation protocol when the
benchmark has clean train/val splits (fit on train classes, pick γ of best H on validation
classes, refit on trainval), and reported as γ = 0 otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from crest.data.schema.benchmark import Benchmark, validation_protocol
from crest.data.schema.dataset import FeatureDataset, feature_loader
from crest.data.schema.hdf5 import read_benchmark
from crest.metrics import czsl_accuracy, gzsl, seen_unseen_curve
from crest.regions import to_regions


def pooled_features(bench: Benchmark, batch_size: int = 256, num_workers: int = 0) -> np.ndarray:
    """Mean-pooled, region-normalised features of every row, streamed in file order (N, D_v)."""
    assert bench.path is not None and bench.feature_shape is not None
    rows = np.arange(bench.num_images)
    data = FeatureDataset(bench.path, rows, labels=bench.labels)
    loader = feature_loader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    out = np.empty((bench.num_images, bench.feature_shape[0]), dtype=np.float32)
    start = 0
    with torch.no_grad():
        for x, _ in tqdm(loader, desc="pooling features", unit="batch", disable=None):
            pooled = to_regions(x).mean(dim=1)
            out[start : start + len(pooled)] = pooled.numpy()
            start += len(pooled)
    return out


def fit_ridge(x: np.ndarray, targets: np.ndarray, ridge: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    gram = x64.T @ x64 + ridge * np.eye(x.shape[1])
    return np.linalg.solve(gram, x64.T @ targets.astype(np.float64))


def cosine_scores(x: np.ndarray, w: np.ndarray, z: np.ndarray) -> np.ndarray:
    pred = x.astype(np.float64) @ w
    pred /= np.maximum(np.linalg.norm(pred, axis=1, keepdims=True), 1e-12)
    return pred @ z.T.astype(np.float64)


@dataclass
class BaselineResult:
    czsl_acc: float
    gzsl_u: float
    gzsl_s: float
    gzsl_h: float
    gamma: float
    gamma_selection: str
    gzsl_h_uncalibrated: float
    ausuc: float
    chance_czsl: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_baseline(path: str | Path, ridge: float = 1.0, batch_size: int = 256) -> BaselineResult:
    """Fit and evaluate the baseline on a benchmark file (CZSL, GZSL U/S/H, AUSUC)."""
    bench = read_benchmark(path)
    z = bench.class_matrix()
    x = pooled_features(bench, batch_size=batch_size)
    y = bench.labels
    seen, unseen = bench.seen_classes, bench.unseen_classes
    gamma, how = 0.0, "fixed at 0 (no validation split in this benchmark)"
    if bench.has_val_split:
        proto = validation_protocol(bench)
        w_val = fit_ridge(x[proto.fit], z[y[proto.fit]], ridge)
        curve = seen_unseen_curve(
            cosine_scores(x[proto.val_seen], w_val, z),
            y[proto.val_seen],
            cosine_scores(x[proto.val_unseen], w_val, z),
            y[proto.val_unseen],
            proto.seen_classes,
            proto.unseen_classes,
        )
        gamma, how = (
            curve.best_gamma,
            "best H on the validation classes (xlsa17 protocol), then refit on trainval",
        )
    w = fit_ridge(x[bench.splits["trainval"]], z[y[bench.splits["trainval"]]], ridge)
    ts, tu = bench.splits["test_seen"], bench.splits["test_unseen"]
    s_seen, s_unseen = cosine_scores(x[ts], w, z), cosine_scores(x[tu], w, z)
    result = gzsl(s_seen, y[ts], s_unseen, y[tu], seen, unseen, gamma)
    raw = gzsl(s_seen, y[ts], s_unseen, y[tu], seen, unseen, 0.0)
    curve = seen_unseen_curve(s_seen, y[ts], s_unseen, y[tu], seen, unseen)
    return BaselineResult(
        czsl_acc=czsl_accuracy(s_unseen, y[tu], unseen),
        gzsl_u=result.unseen,
        gzsl_s=result.seen,
        gzsl_h=result.harmonic,
        gamma=float(gamma),
        gamma_selection=how,
        gzsl_h_uncalibrated=raw.harmonic,
        ausuc=curve.ausuc,
        chance_czsl=1.0 / len(unseen),
    )
