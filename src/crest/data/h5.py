"""Read and write the benchmark HDF5 schema of crest-spec.md §0.

Required datasets (the exact file the CREST/TransZero extraction script writes):
``feature_map`` (N, D_v, h, w), ``labels`` (N,) 0-based, ``trainval_loc``, ``test_seen_loc``,
``test_unseen_loc`` (0-based rows), ``att`` (C, A) L2-normalised, ``original_att`` (C, A),
``w2v_att`` (A, D_w). Optional extras this project writes and reads: ``class_names``,
``attribute_names``, ``image_files``, clean ``train_loc``/``val_loc``, and synthetic ground truth
(``part_masks`` (N, P, h, w), ``attribute_part`` (A,), ``image_attributes`` (N, A)).
Reading never touches ``feature_map`` beyond its shape and dtype.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from crest.atomic import atomic_path, ensure_space
from crest.data.benchmark import CORE_SPLITS, VAL_SPLITS, Benchmark
from crest.errors import DataError

SCHEMA_VERSION = 1
REQUIRED_KEYS = (
    "feature_map",
    "labels",
    *(f"{s}_loc" for s in CORE_SPLITS),
    "att",
    "original_att",
    "w2v_att",
)
GROUND_TRUTH_KEYS = ("part_masks", "attribute_part", "image_attributes")


@contextmanager
def open_h5(path: str | Path, mode: str = "r") -> Iterator[h5py.File]:
    """Open an HDF5 file, turning h5py's low-level failures into a :class:`DataError`."""
    path = Path(path)
    if mode == "r" and not path.exists():
        raise DataError(path, None, "file not found")
    try:
        handle = h5py.File(path, mode)
    except OSError as exc:
        raise DataError(
            path, None, f"not a readable HDF5 file (truncated or corrupt?): {exc}"
        ) from exc
    try:
        yield handle
    finally:
        handle.close()


def _strings(raw: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(raw).ravel()]


def _read(f: h5py.File, path: Path, key: str) -> np.ndarray:
    try:
        return np.asarray(f[key][()])
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as exc:
        # truncated data blocks, unreadable types and broken links all surface here
        raise DataError(path, key, f"cannot be read (truncated or corrupt file?): {exc}") from exc


def _read_numeric(f: h5py.File, path: Path, key: str) -> np.ndarray:
    """A dataset that must hold real numbers (not strings, not compound or object types)."""
    arr = _read(f, path, key)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.issubdtype(
        arr.dtype, np.complexfloating
    ):
        raise DataError(path, key, f"dtype {arr.dtype}; expected real numbers")
    return arr


def _read_integers(f: h5py.File, path: Path, key: str) -> np.ndarray:
    """Integer ids: an integer dtype, or floats that are all whole numbers (never truncated)."""
    arr = _read_numeric(f, path, key).ravel()
    whole = np.issubdtype(arr.dtype, np.integer) or (
        np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0)
    )
    if arr.size and not whole:
        raise DataError(
            path, key, f"expected integer values, got dtype {arr.dtype} with fractions or NaN"
        )
    return arr.astype(np.int64)


def _check_finite(path: Path | None, key: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise DataError(path, key, f"contains {bad} NaN/inf values; expected finite numbers")


def _check_locs(path: Path, key: str, locs: np.ndarray, n: int) -> np.ndarray:
    locs = np.asarray(locs, dtype=np.int64).ravel()
    if locs.size and (locs.min() < 0 or locs.max() >= n):
        raise DataError(
            path,
            key,
            f"index out of range [{locs.min()}, {locs.max()}]; expected 0-based rows in [0, {n - 1}]",
        )
    return locs


def _check_orientation(path: Path | None, att: np.ndarray, w2v: np.ndarray) -> None:
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
    _check_orientation(path, bench.att, bench.w2v_att)
    if bench.w2v_att.ndim != 2 or bench.w2v_att.shape[0] != a:
        raise DataError(
            path,
            "w2v_att",
            f"shape {bench.w2v_att.shape}; expected ({a}, D_w): one vector per attribute",
        )
    _check_finite(path, "att", bench.att)
    _check_finite(path, "original_att", bench.original_att)
    _check_finite(path, "w2v_att", bench.w2v_att)
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


def read_benchmark(path: str | Path) -> Benchmark:
    """Read and validate the class side of a benchmark file (features stay on disk)."""
    path = Path(path)
    with open_h5(path) as f:
        missing = [k for k in REQUIRED_KEYS if k not in f]
        if missing:
            raise DataError(
                path, missing[0], f"missing; a benchmark file needs {', '.join(REQUIRED_KEYS)}"
            )
        fmap = f["feature_map"]
        if not isinstance(fmap, h5py.Dataset):
            raise DataError(path, "feature_map", "is a group; expected a dataset")
        if fmap.ndim != 4:
            raise DataError(path, "feature_map", f"shape {fmap.shape}; expected (N, D_v, h, w)")
        if fmap.dtype.kind not in "fiu":
            raise DataError(path, "feature_map", f"dtype {fmap.dtype}; expected real numbers")
        if min(fmap.shape[1:]) < 1:
            raise DataError(
                path,
                "feature_map",
                f"shape {fmap.shape}; expected at least one channel and a grid of at least 1×1",
            )
        n = int(fmap.shape[0])
        labels = _read_integers(f, path, "labels")
        if labels.shape[0] != n:
            raise DataError(
                path,
                "labels",
                f"{labels.shape[0]} labels for {n} feature maps; expected one per row",
            )
        splits = {
            s: _check_locs(path, f"{s}_loc", _read_integers(f, path, f"{s}_loc"), n)
            for s in CORE_SPLITS
        }
        for s in VAL_SPLITS:
            if f"{s}_loc" in f:
                splits[s] = _check_locs(path, f"{s}_loc", _read_integers(f, path, f"{s}_loc"), n)
        att = _read_numeric(f, path, "att").astype(np.float32)
        w2v = _read_numeric(f, path, "w2v_att").astype(np.float32)
        _check_orientation(path, att, w2v)
        c, a = att.shape if att.ndim == 2 else (0, 0)
        class_names = (
            _strings(f["class_names"][()])
            if "class_names" in f
            else [f"class_{i}" for i in range(c)]
        )
        attr_names = (
            _strings(f["attribute_names"][()])
            if "attribute_names" in f
            else [f"attribute_{i}" for i in range(a)]
        )
        for key, names, want in (
            ("class_names", class_names, c),
            ("attribute_names", attr_names, a),
        ):
            if len(names) != want:
                raise DataError(path, key, f"{len(names)} names; expected {want}")
        image_files = _strings(f["image_files"][()]) if "image_files" in f else None
        meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        if "generator" in meta and isinstance(meta["generator"], str):
            meta["generator"] = json.loads(meta["generator"])
        bench = Benchmark(
            att=att,
            original_att=_read_numeric(f, path, "original_att").astype(np.float32),
            w2v_att=w2v,
            labels=np.asarray(labels, dtype=np.int64),
            splits=splits,
            class_names=class_names,
            attribute_names=attr_names,
            image_files=image_files,
            path=path,
            feature_shape=(int(fmap.shape[1]), int(fmap.shape[2]), int(fmap.shape[3])),
            feature_dtype=str(fmap.dtype),
            has_ground_truth=all(k in f for k in GROUND_TRUTH_KEYS),
            meta={k: _jsonable(v) for k, v in meta.items()},
        )
    validate_class_side(bench, path)
    return bench


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read_ground_truth(path: str | Path, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Ground-truth part masks (len(rows), P, h, w), attribute→part map and per-image attributes."""
    path = Path(path)
    order = np.argsort(rows)
    with open_h5(path) as f:
        missing = [k for k in GROUND_TRUTH_KEYS if k not in f]
        if missing:
            raise DataError(
                path, missing[0], "missing; this file has no ground-truth attribute masks"
            )
        sorted_rows = np.asarray(rows)[order]
        masks = f["part_masks"][sorted_rows]
        image_attributes = f["image_attributes"][sorted_rows]
        attribute_part = f["attribute_part"][()]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return {
        "part_masks": masks[inverse],
        "image_attributes": image_attributes[inverse],
        "attribute_part": np.asarray(attribute_part, dtype=np.int64),
    }


def write_class_side(f: h5py.File, b: Benchmark) -> None:
    """Every dataset of the schema but ``feature_map`` (and the ground truth): labels, locs, class
    matrices, attribute vectors and the name lists."""
    f.create_dataset("labels", data=b.labels.astype(np.int64))
    for name, locs in b.splits.items():
        f.create_dataset(f"{name}_loc", data=np.asarray(locs, dtype=np.int64))
    f.create_dataset("att", data=b.att.astype(np.float32))
    f.create_dataset("original_att", data=b.original_att.astype(np.float32))
    f.create_dataset("w2v_att", data=b.w2v_att.astype(np.float32))
    text = h5py.string_dtype("utf-8")
    f.create_dataset("class_names", data=np.array(b.class_names, dtype=object), dtype=text)
    f.create_dataset("attribute_names", data=np.array(b.attribute_names, dtype=object), dtype=text)
    if b.image_files is not None:
        f.create_dataset("image_files", data=np.array(b.image_files, dtype=object), dtype=text)


class BenchmarkWriter:
    """Write a benchmark file in batches, atomically: the final name appears only when complete.

    >>> with BenchmarkWriter(out, bench, dtype="float16") as w:   # doctest: +SKIP
    ...     for start, batch in batches:
    ...         w.write_features(start, batch)
    """

    def __init__(
        self,
        path: str | Path,
        bench: Benchmark,
        dtype: str = "float32",
        compression: str | None = None,
        ground_truth_parts: int | None = None,
    ) -> None:
        if bench.feature_shape is None:
            raise ValueError("bench.feature_shape must be set before writing features")
        validate_class_side(bench, Path(path))
        self.path = Path(path)
        self.bench = bench
        self.dtype = np.dtype(dtype)
        self.compression = compression
        self.ground_truth_parts = ground_truth_parts
        self._atomic = atomic_path(self.path, suffix=".h5")
        self._file: h5py.File | None = None
        self._written = 0

    def expected_bytes(self) -> int:
        """The file's size, give or take its small datasets (checked against free space first)."""
        b = self.bench
        assert b.feature_shape is not None
        size = b.num_images * int(np.prod(b.feature_shape)) * self.dtype.itemsize
        if self.ground_truth_parts is not None:
            _, h, w = b.feature_shape
            size += b.num_images * (self.ground_truth_parts * h * w + b.num_attributes)
        return size

    def __enter__(self) -> BenchmarkWriter:
        ensure_space(self.path, self.expected_bytes())
        tmp = self._atomic.__enter__()
        self._file = h5py.File(tmp, "w")
        self._create(self._file)
        return self

    def _create(self, f: h5py.File) -> None:
        b = self.bench
        assert b.feature_shape is not None
        n = b.num_images
        f.create_dataset(
            "feature_map",
            shape=(n, *b.feature_shape),
            dtype=self.dtype,
            chunks=(1, *b.feature_shape),
            compression=self.compression,
        )
        write_class_side(f, b)
        if self.ground_truth_parts is not None:
            _, h, w = b.feature_shape
            p = self.ground_truth_parts
            f.create_dataset(
                "part_masks", shape=(n, p, h, w), dtype=np.uint8, chunks=(min(n, 256), p, h, w)
            )
            f.create_dataset("image_attributes", shape=(n, b.num_attributes), dtype=np.uint8)
        f.attrs["crest_schema_version"] = SCHEMA_VERSION
        for key, value in b.meta.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value

    def write_features(self, start: int, batch: np.ndarray) -> None:
        assert self._file is not None, "use BenchmarkWriter as a context manager"
        self._file["feature_map"][start : start + len(batch)] = batch.astype(self.dtype, copy=False)
        self._written += len(batch)

    def write_ground_truth(
        self,
        start: int,
        part_masks: np.ndarray,
        image_attributes: np.ndarray,
        attribute_part: np.ndarray | None = None,
    ) -> None:
        assert self._file is not None
        self._file["part_masks"][start : start + len(part_masks)] = part_masks
        self._file["image_attributes"][start : start + len(image_attributes)] = image_attributes
        if attribute_part is not None and "attribute_part" not in self._file:
            self._file.create_dataset("attribute_part", data=attribute_part.astype(np.int64))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None
        self._file.close()
        if exc is None and self._written != self.bench.num_images:
            exc = RuntimeError(
                f"{self.path}: wrote {self._written} of {self.bench.num_images} feature rows"
            )
            self._atomic.__exit__(type(exc), exc, None)
            raise exc
        self._atomic.__exit__(exc_type, exc, tb)
