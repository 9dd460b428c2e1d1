"""The class side of a ZSL benchmark: class matrix, names, splits, seen and unseen classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crest.errors import DataError

#: The three splits every benchmark has (0-based row indices into the feature file).
CORE_SPLITS = ("trainval", "test_seen", "test_unseen")
#: The clean validation split (xlsa17 train/val minus test_seen), present when the source has it.
VAL_SPLITS = ("train", "val")


class ClassMatrix:
    """Sizes of a class side with a (classes, attributes) matrix ``att``."""

    att: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.att.shape[0])

    @property
    def num_attributes(self) -> int:
        return int(self.att.shape[1])


@dataclass
class Benchmark(ClassMatrix):
    """Everything about a benchmark except the per-image features, which stay on disk.

    ``att`` is the class attribute matrix as stored (C x A, rows L2-normalised);
    :meth:`class_matrix` gives Z as the model uses it. ``splits`` maps a split name to
    0-based row indices into ``labels`` (and into the file's ``feature_map``).
    """

    att: np.ndarray
    original_att: np.ndarray
    w2v_att: np.ndarray
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    class_names: list[str]
    attribute_names: list[str]
    image_files: list[str] | None = None
    path: Path | None = None
    feature_shape: tuple[int, int, int] | None = None  # (D_v, h, w)
    feature_dtype: str | None = None
    has_ground_truth: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    # (seen, unseen) class ids of a class side read from a model file, which has no labels
    stored_split: tuple[np.ndarray, np.ndarray] | None = None

    # ---- sizes -------------------------------------------------------------------------
    @property
    def num_images(self) -> int:
        return int(self.labels.shape[0])

    @property
    def grid(self) -> tuple[int, int] | None:
        return (
            None if self.feature_shape is None else (self.feature_shape[1], self.feature_shape[2])
        )

    @property
    def num_regions(self) -> int | None:
        grid = self.grid
        return None if grid is None else grid[0] * grid[1]

    # ---- classes -----------------------------------------------------------------------
    def classes_of(self, split: str) -> np.ndarray:
        """Sorted class ids that have at least one image in ``split``."""
        return np.unique(self.labels[self.splits[split]])

    @property
    def seen_classes(self) -> np.ndarray:
        if self.stored_split is not None:
            return self.stored_split[0]
        return self.classes_of("trainval")

    @property
    def unseen_classes(self) -> np.ndarray:
        if self.stored_split is not None:
            return self.stored_split[1]
        return self.classes_of("test_unseen")

    @property
    def has_val_split(self) -> bool:
        return all(name in self.splits for name in VAL_SPLITS)

    def class_matrix(self) -> np.ndarray:
        """Z as the model uses it: negative entries (AWA2) clamped to 0, rows L2-normalised."""
        z = np.clip(self.att.astype(np.float32), 0.0, None)
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        return z / np.maximum(norms, 1e-12)

    def summary(self) -> dict[str, Any]:
        """A plain dict for `crest data info` and for logs."""
        out: dict[str, Any] = {
            "file": str(self.path) if self.path else None,
            "classes": {
                "all": self.num_classes,
                "seen": len(self.seen_classes),
                "unseen": len(self.unseen_classes),
            },
            "attributes": self.num_attributes,
            "word_vector_dim": int(self.w2v_att.shape[1]),
            "images": self.num_images,
            "splits": {name: len(idx) for name, idx in self.splits.items()},
        }
        if self.feature_shape is not None:
            d, h, w = self.feature_shape
            out["features"] = {
                "channels": d,
                "grid": f"{h}x{w}",
                "regions": h * w,
                "dtype": self.feature_dtype,
            }
        out["ground_truth_masks"] = self.has_ground_truth
        if self.path is not None and self.path.exists():
            out["file_size_bytes"] = self.path.stat().st_size
        if self.meta:
            out["meta"] = dict(self.meta)
        return out


@dataclass(frozen=True)
class ValidationProtocol:
    """The xlsa17 validation protocol as runnable splits (all 0-based file rows).

    Train classes' clean ``train`` rows are split once more, per class, into ``fit`` and
    ``val_seen``; ``val_unseen`` is the clean ``val`` split (images of validation classes).
    A model fitted on ``fit`` is scored on (val_seen, val_unseen) with seen = train classes and
    unseen = validation classes: that is where epochs and γ are chosen, never on test.
    """

    fit: np.ndarray
    val_seen: np.ndarray
    val_unseen: np.ndarray
    seen_classes: np.ndarray
    unseen_classes: np.ndarray
    source: str = "xlsa17"  # "xlsa17": the file's train_loc/val_loc; "drawn": classes drawn here


def draw_validation_classes(bench: Benchmark, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, val rows) for a file without train_loc/val_loc (e.g. a TransZero file): a
    seeded draw of trainval classes, as many in proportion as the unseen classes are of all,
    held out as validation classes. Uses trainval only; test rows are never looked at."""
    seen = bench.seen_classes
    share = len(bench.unseen_classes) / max(1, bench.num_classes)
    k = min(len(seen) - 1, max(1, round(share * len(seen))))
    if k < 1:
        raise DataError(
            bench.path,
            "trainval_loc",
            f"{len(seen)} training class(es); drawing validation classes needs at least two",
        )
    rng = np.random.default_rng([seed, 17])
    val_classes = np.sort(rng.choice(seen, size=k, replace=False))
    trainval = bench.splits["trainval"]
    in_val = np.isin(bench.labels[trainval], val_classes)
    return trainval[~in_val], trainval[in_val]


def validation_protocol(
    bench: Benchmark, holdout: float = 0.2, seed: int = 0
) -> ValidationProtocol:
    """Build the :class:`ValidationProtocol`: from the file's clean train/val splits, or, when it
    has none, from validation classes drawn among the trainval classes (``source="drawn"``)."""
    if bench.has_val_split:
        train, val, source = bench.splits["train"], bench.splits["val"], "xlsa17"
    else:
        (train, val), source = draw_validation_classes(bench, seed), "drawn"
    rng = np.random.default_rng(seed)
    fit, val_seen = [], []
    for c in np.unique(bench.labels[train]):
        rows = train[bench.labels[train] == c]
        k = round(holdout * len(rows)) if len(rows) > 1 else 0
        chosen = rng.permutation(rows)
        val_seen.append(chosen[:k])
        fit.append(chosen[k:])
    return ValidationProtocol(
        fit=np.sort(np.concatenate(fit)),
        val_seen=np.sort(np.concatenate(val_seen)),
        val_unseen=np.asarray(val),
        seen_classes=np.unique(bench.labels[train]),
        unseen_classes=np.unique(bench.labels[val]),
        source=source,
    )
