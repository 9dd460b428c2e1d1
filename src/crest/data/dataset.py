"""A PyTorch Dataset that streams feature maps from a benchmark file, never loading the whole file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from crest.data.h5 import open_h5


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


class FeatureDataset(Dataset[tuple[torch.Tensor, int]]):
    """Rows ``rows`` of a benchmark file as ``(feature_map float32 (D_v, h, w), label)``.

    The file is opened lazily, once per process (DataLoader workers each get their own
    handle). A batch fetch (``__getitems__``, used by DataLoader) reads the sorted rows as
    contiguous slices, so sequential sampling costs one HDF5 read per run of rows. Float16
    storage is converted to float32 per batch.
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
        """Feature maps for dataset positions ``positions`` (not file rows), in that order."""
        file_rows = self.rows[positions]
        order = np.argsort(file_rows, kind="stable")
        sorted_rows = file_rows[order]
        unique_rows, inverse = np.unique(sorted_rows, return_inverse=True)
        feats = self._features()
        parts = [feats[a:b] for a, b in contiguous_runs(unique_rows)]
        block = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        out = np.empty((len(file_rows), *block.shape[1:]), dtype=np.float32)
        out[order] = block[inverse]
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.read_rows(np.asarray([index]))[0]
        return torch.from_numpy(x), int(self.labels[index])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        block = torch.from_numpy(self.read_rows(np.asarray(indices, dtype=np.int64)))
        return [(block[i], int(self.labels[idx])) for i, idx in enumerate(indices)]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles cannot be pickled into spawned workers
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
