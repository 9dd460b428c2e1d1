"""The resumable, crash-safe writer of an extraction.

* everything goes into ``OUT.partial``, created complete (class side, attributes, a
  preallocated ``feature_map``) under a temporary name and renamed, so a ``.partial`` always
  has valid metadata;
* ``feature_map`` is contiguous and allocated at creation, so writing rows changes raw data
  only, never HDF5 metadata; after each batch the rows are flushed and fsync'ed, then the root
  attribute ``rows_done`` is rewritten in place (one small metadata block). A kill at any point
  leaves a file h5py can open, whose first ``rows_done`` rows are final;
* a rerun checks the partial's fingerprint (image list, class side, backbone settings) and
  continues from ``rows_done``; when all rows are written, ``OUT.partial`` is renamed onto
  ``OUT``. ``OUT`` therefore only ever exists complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from crest.atomic import atomic_path
from crest.data.backbone import BACKBONE, BACKBONE_LAYER, IMAGENET_MEAN, IMAGENET_STD
from crest.data.extraction.settings import ExtractSettings, fingerprint
from crest.data.schema.benchmark import Benchmark
from crest.data.schema.hdf5 import SCHEMA_VERSION
from crest.data.schema.writer import write_class_side
from crest.errors import DataError

log = logging.getLogger(__name__)


def root_attrs(
    bench: Benchmark, extraction: dict[str, Any], settings: ExtractSettings, weights: str
) -> dict[str, Any]:
    """Root attributes: provenance, and the backbone settings predict-time code needs."""
    return {
        "crest_schema_version": SCHEMA_VERSION,
        "source": "extract",
        "features_real": weights != "none",
        "backbone": BACKBONE,
        "backbone_layer": BACKBONE_LAYER,
        "weights": weights,
        "weights_seed": settings.seed if weights == "none" else -1,
        "image_size": settings.size,
        "resize": settings.resize,
        "grid": [settings.grid, settings.grid],
        "normalize_mean": list(IMAGENET_MEAN),
        "normalize_std": list(IMAGENET_STD),
        "bf16": settings.bf16,
        "extract_settings": json.dumps(extraction, sort_keys=True),
        "extract_fingerprint": fingerprint(extraction),
        **bench.meta,
    }


def _create_feature_map(f: h5py.File, shape: tuple[int, ...], dtype: str) -> None:
    """Contiguous, allocated now, never filled: later row writes touch raw data only."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    f.create_dataset("feature_map", shape=shape, dtype=np.dtype(dtype), dcpl=dcpl)


def create_partial(path: Path, bench: Benchmark, attrs: dict[str, Any]) -> None:
    """Write the whole file but the features, under a temporary name, then rename it to ``path``."""
    assert bench.feature_shape is not None and bench.feature_dtype is not None
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        _create_feature_map(f, (bench.num_images, *bench.feature_shape), bench.feature_dtype)
        write_class_side(f, bench)
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["rows_done"] = np.int64(0)


def _fd_of(f: h5py.File) -> int | None:
    with contextlib.suppress(Exception):
        return int(f.id.get_vfd_handle())
    return None


def _durable_flush(f: h5py.File) -> None:
    """Push HDF5's buffers to the OS (enough for a kill) and to the disk (for a power cut)."""
    f.flush()
    fd = _fd_of(f)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.fsync(fd)


def read_progress(path: Path) -> tuple[str | None, dict[str, Any], int]:
    """(fingerprint, settings, rows_done) of a partial or finished extraction file."""
    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            settings = json.loads(attrs["extract_settings"]) if "extract_settings" in attrs else {}
            return (
                attrs.get("extract_fingerprint"),
                settings,
                int(attrs.get("rows_done", 0)),
            )
    except OSError as exc:
        raise DataError(path, None, f"not a readable HDF5 file: {exc}; delete it") from exc


def differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in keys) or "unknown"


# ---- the backbone ----------------------------------------------------------------------------


def to_storage(out: torch.Tensor, dtype: str, path: Path) -> np.ndarray:
    """The batch as stored; a float16 overflow (random weights reach 1e5) is an error, not inf."""
    values = out.float().cpu().numpy()
    with np.errstate(over="ignore"):
        stored = values.astype(dtype, copy=False)
    if not np.all(np.isfinite(stored)):
        raise DataError(
            path,
            "feature_map",
            f"features up to {float(np.max(values)):.3g} do not fit {dtype}; use --dtype float32",
        )
    return stored


def commit_rows(f: h5py.File, first: int, stored: np.ndarray) -> int:
    """Write rows, make them durable, then (only then) count them done; returns rows_done."""
    last = first + len(stored)
    f["feature_map"][first:last] = stored
    _durable_flush(f)
    f.attrs.modify("rows_done", np.int64(last))  # in place: one small metadata write
    f.flush()
    return last


def prepare_partial(
    partial: Path,
    bench: Benchmark,
    attrs: dict[str, Any],
    extraction: dict[str, Any],
    restart: bool,
) -> None:
    """Reuse a partial of the same extraction, refuse a different one, or create a new one."""
    if partial.exists() and restart:
        log.info("--restart: discarding %s", partial)
        partial.unlink()
    if partial.exists():
        fp, old, rows = read_progress(partial)
        if fp != attrs["extract_fingerprint"]:
            raise DataError(
                partial,
                None,
                f"an unfinished extraction with other inputs ({differences(old, extraction)}); "
                "delete it or pass --restart",
            )
        log.info("resuming %s at row %d of %d", partial, rows, bench.num_images)
        return
    create_partial(partial, bench, attrs)
