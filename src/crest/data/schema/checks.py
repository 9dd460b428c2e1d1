"""Checks of a benchmark's class side: shapes, finite values, the seen/unseen contract and
disjoint splits. Each failure is a :class:`DataError` naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crest.data.schema.benchmark import VAL_SPLITS, Benchmark
from crest.errors import DataError


def _check_finite(path: Path | None, key: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise DataError(path, key, f"contains {bad} NaN/inf values; expected finite numbers")


def check_orientation(path: Path | None, att: np.ndarray, w2v: np.ndarray) -> None:
    """Name a transposed class matrix as such (it would otherwise fail on a name count)."""
    if att.ndim == 2 and w2v.ndim == 2 and att.shape[0] == w2v.shape[0] != att.shape[1]:
        raise DataError(
            path,
            "att",
            f"shape {att.shape} looks like (attributes, classes): w2v_att has {w2v.shape[0]} "
            "rows, one per attribute; expected (classes, attributes) as the CREST/TransZero files "
            "store it (xlsa17's att_splits.mat holds the transpose)",
        )


def check_splits(bench: Benchmark, path: Path | None) -> None:
    """Every split present is non-empty and no row appears twice in a split."""
    for name in bench.splits:
        if len(bench.splits[name]) == 0:
            raise DataError(path, f"{name}_loc", "is empty; expected at least one row")
    for name, rows in bench.splits.items():
        values, counts = np.unique(rows, return_counts=True)
        if np.any(counts > 1):
            twice = values[counts > 1]
            raise DataError(
                path,
                f"{name}_loc",
                f"{len(twice)} rows appear more than once (e.g. row {int(twice[0])}); "
                "expected each image once",
            )


def check_split_leaks(bench: Benchmark, path: Path | None) -> None:
    """The row sets of trainval / test_seen / test_unseen (and train / val against the test splits
    and each other) are disjoint, and the validation classes are not training classes."""
    pairs = [("trainval", "test_seen"), ("trainval", "test_unseen"), ("test_seen", "test_unseen")]
    if bench.has_val_split:
        pairs += [(v, t) for v in VAL_SPLITS for t in ("test_seen", "test_unseen")]
        pairs += [("train", "val")]
    for a, b in pairs:
        shared = np.intersect1d(bench.splits[a], bench.splits[b])
        if shared.size:
            raise DataError(
                path,
                f"{b}_loc",
                f"{shared.size} rows are also in {a}_loc (e.g. row {int(shared[0])}): a test or "
                "validation image would be trained on; expected disjoint splits",
            )
    if bench.has_val_split:
        both = np.intersect1d(bench.classes_of("train"), bench.classes_of("val"))
        if both.size:
            raise DataError(
                path,
                "val_loc",
                f"{both.size} validation classes also have train_loc images (e.g. class "
                f"{int(both[0])}); expected validation classes unseen in training",
            )


def check_no_empty_vectors(bench: Benchmark, path: Path | None) -> None:
    """Every class has some attribute (its row of Z, negatives clamped, is not all zero: such a
    class scores 0 on every image and can never be told apart), and the attribute word vectors
    are not all zero (one zero row, an attribute without a word vector as in SUN, is allowed)."""
    z = np.clip(bench.att, 0.0, None)
    empty = np.flatnonzero(~np.any(z > 0, axis=1))
    if empty.size:
        c = int(empty[0])
        name = bench.class_names[c] if c < len(bench.class_names) else f"class_{c}"
        raise DataError(
            path,
            "att",
            f"class {c} ('{name}') has no positive attribute ({empty.size} such classes); "
            "expected every class to be described by at least one attribute",
        )
    if bench.w2v_att.size and not np.any(bench.w2v_att != 0):
        raise DataError(
            path,
            "w2v_att",
            "every attribute word vector is zero; expected vectors that describe the attributes "
            "(crest data embed-attributes writes them)",
        )


def validate_class_side(bench: Benchmark, path: Path | None) -> None:
    """Check shapes, ranges and the seen/unseen contract; raise :class:`DataError` naming the field."""
    c, a = bench.att.shape if bench.att.ndim == 2 else (None, None)
    if c is None:
        raise DataError(
            path, "att", f"expected a 2-D (classes, attributes) matrix, got shape {bench.att.shape}"
        )
    if bench.original_att.shape != bench.att.shape:
        raise DataError(
            path,
            "original_att",
            f"shape {bench.original_att.shape}; expected {bench.att.shape} like 'att'",
        )
    check_orientation(path, bench.att, bench.w2v_att)
    if bench.w2v_att.ndim != 2 or bench.w2v_att.shape[0] != a:
        raise DataError(
            path,
            "w2v_att",
            f"shape {bench.w2v_att.shape}; expected ({a}, D_w): one vector per attribute",
        )
    _check_finite(path, "att", bench.att)
    _check_finite(path, "original_att", bench.original_att)
    _check_finite(path, "w2v_att", bench.w2v_att)
    check_no_empty_vectors(bench, path)
    labels = bench.labels
    if labels.ndim != 1:
        raise DataError(path, "labels", f"expected shape (N,), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        raise DataError(
            path,
            "labels",
            f"values in [{labels.min()}, {labels.max()}]; expected 0-based class ids in [0, {c - 1}]",
        )
    check_splits(bench, path)
    seen, unseen = set(bench.seen_classes.tolist()), set(bench.unseen_classes.tolist())
    overlap = sorted(seen & unseen)
    if overlap:
        raise DataError(
            path,
            "test_unseen_loc",
            f"{len(overlap)} unseen classes also appear in trainval_loc (e.g. class {overlap[0]}); "
            "expected seen and unseen classes to be disjoint",
        )
    stray = sorted(set(bench.classes_of("test_seen").tolist()) - seen)
    if stray:
        raise DataError(
            path,
            "test_seen_loc",
            f"classes {stray[:5]} have no training images; expected seen classes only",
        )
    check_split_leaks(bench, path)
    if bench.feature_shape is not None and len(bench.feature_shape) != 3:
        raise DataError(
            path, "feature_map", f"expected (N, D_v, h, w), got (N, *{bench.feature_shape})"
        )
