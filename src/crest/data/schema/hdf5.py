"""Read the benchmark HDF5 schema: one file format for every source (extraction, xlsa17 import,
synthetic worlds).

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
from typing import Any

import h5py
import numpy as np

from crest.data.schema.benchmark import CORE_SPLITS, VAL_SPLITS, Benchmark
from crest.data.schema.checks import check_orientation, validate_class_side
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
    if path.is_dir():
        raise DataError(path, None, "is a folder; expected an HDF5 benchmark file")
    try:
        handle = h5py.File(path, mode)
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            path, None, f"not a readable HDF5 file (truncated or corrupt?): {first}"
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


def _check_locs(path: Path, key: str, locs: np.ndarray, n: int) -> np.ndarray:
    locs = np.asarray(locs, dtype=np.int64).ravel()
    if locs.size and (locs.min() < 0 or locs.max() >= n):
        raise DataError(
            path,
            key,
            f"index out of range [{locs.min()}, {locs.max()}]; expected 0-based rows in [0, {n - 1}]",
        )
    return locs


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
        check_orientation(path, att, w2v)
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
        _check_names(path, class_names, attr_names, (c, a), w2v, "class_names" in f)
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


def _check_names(
    path: Path,
    class_names: list[str],
    attr_names: list[str],
    att_shape: tuple[int, int],
    w2v: np.ndarray,
    stored_class_names: bool,
) -> None:
    """The name lists agree with ``att``; when they do not, the error names the field that is
    the odd one out (``att`` when the names and the word vectors agree with each other)."""
    c, a = att_shape
    if len(class_names) != c:
        if stored_class_names:
            raise DataError(
                path,
                "att",
                f"{c} rows (classes), but class_names lists {len(class_names)} classes; expected "
                "one att row per class",
            )
        raise DataError(path, "class_names", f"{len(class_names)} names; expected {c}")
    if len(attr_names) != a:
        if w2v.ndim == 2 and w2v.shape[0] == len(attr_names):
            raise DataError(
                path,
                "att",
                f"{a} columns (attributes), but attribute_names and w2v_att list "
                f"{len(attr_names)} attributes; expected one att column per attribute",
            )
        raise DataError(path, "attribute_names", f"{len(attr_names)} names; expected {a}")


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
