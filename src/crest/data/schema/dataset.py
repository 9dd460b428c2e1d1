"""A PyTorch Dataset that streams feature maps from a benchmark file, never loading the whole file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from crest.data.schema.hdf5 import open_h5
from crest.errors import DataError


def contiguous_runs(sorted_rows: np.ndarray) -> list[tuple[int, int]]:
    """Split sorted row indices into ``[start, stop)`` runs of consecutive rows."""
    if sorted_rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [sorted_rows.size]])
    return [
        (int(sorted_rows[a]), int(sorted_rows[b - 1]) + 1)
        for a, b in zip(starts, stops, strict=True)
    ]


def check_finite(path: Path, batch: np.ndarray, file_rows: np.ndarray) -> None:
    """Stop on NaN/inf features, naming the file row: they would turn into NaN metrics or a
    non-finite loss far from their cause."""
    finite = np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
    if not finite.all():
        bad = file_rows[~finite]
        raise DataError(
            path,
            "feature_map",
            f"row {int(bad[0])} holds NaN/inf values ({len(bad)} such rows in this batch); "
            "expected finite features",
        )


def collate(batch: Any) -> Any:
    """DataLoader collate: batches from ``FeatureDataset.__getitems__`` are already stacked."""
    if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[0], torch.Tensor):
        return batch
    return default_collate(batch)


class FeatureDataset(Dataset[tuple[torch.Tensor, int]]):
    """Rows ``rows`` of a benchmark file as ``(feature_map float32 (D_v, h, w), label)``.

    The file is opened lazily, once per process (DataLoader workers each get their own
    handle). A batch fetch (``__getitems__``, used by DataLoader) reads the sorted rows as
    contiguous slices, so sequential sampling costs one HDF5 read per run of rows. Float16
    storage is converted to float32 per batch. Give DataLoaders ``collate_fn=collate``.
    """

    def __init__(
        self, path: str | Path, rows: np.ndarray, labels: np.ndarray | None = None
    ) -> None:
        self.path = Path(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        if labels is None:
            with open_h5(self.path) as f:
                labels = np.asarray(f["labels"][()], dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)[self.rows]
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def _features(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():
            # A handle inherited through fork is not safe to use: open a fresh one per process.
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file["feature_map"]

    def read_rows(self, positions: np.ndarray) -> np.ndarray:
        """Feature maps (float32) for dataset positions ``positions`` (not file rows), in that order.

        Rows are read as contiguous runs of the sorted file rows, one run at a time, straight into
        the float32 output: memory is the output batch plus one run, whatever the file size.
        """
        file_rows = self.rows[np.asarray(positions, dtype=np.int64)]
        feats = self._features()
        out = np.empty((len(file_rows), *feats.shape[1:]), dtype=np.float32)
        order = np.argsort(file_rows, kind="stable")
        sorted_rows = file_rows[order]
        cursor = 0
        for a, b in contiguous_runs(np.unique(sorted_rows)):
            # every output slot whose row falls in [a, b): duplicates are allowed
            stop = int(np.searchsorted(sorted_rows, b, side="left"))
            slots = order[cursor:stop]
            if stop - cursor == b - a and np.all(np.diff(slots) == 1):
                # in-order run without duplicates: HDF5 converts float16 → float32 into `out` directly
                feats.read_direct(out, np.s_[a:b], np.s_[int(slots[0]) : int(slots[0]) + (b - a)])
            else:
                out[slots] = feats[a:b][sorted_rows[cursor:stop] - a]
            cursor = stop
        check_finite(self.path, out, file_rows)
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.read_rows(np.asarray([index]))[0]
        return torch.from_numpy(x), int(self.labels[index])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch in one go, already stacked: use with :func:`collate` (no second copy)."""
        positions = np.asarray(indices, dtype=np.int64)
        return torch.from_numpy(self.read_rows(positions)), torch.from_numpy(self.labels[positions])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles cannot be pickled into spawned workers
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def feature_loader(dataset: FeatureDataset, **kwargs: Any) -> DataLoader:
    """A DataLoader over a FeatureDataset with the batch-level collate it needs.

    It gets a generator of its own: a DataLoader draws a worker seed from its generator at
    every iteration, and drawing it from the global one would shift the dropout masks of the
    epoch, so that streamed and cached features (which need no DataLoader) trained differently.
    """
    kwargs.setdefault("generator", torch.Generator())
    return DataLoader(dataset, collate_fn=collate, **kwargs)
