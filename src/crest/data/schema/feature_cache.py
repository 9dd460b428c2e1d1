"""Where training and evaluation read feature maps from (``data.cache``; docs/performance.md,
"Where features live"):

* ``stream``: a DataLoader reads every batch from the HDF5 file (any file size, little memory);
* ``ram``: the needed rows are read once into one host tensor (pinned when the model is on CUDA);
* ``device``: the same on the model's device, so batches are gathered there by index, with no
  DataLoader and no host copy per step;
* ``auto``: device, then ram, then stream, by the free memory measured (the choice is logged).

The cache keeps the file's dtype (float16 stays float16) and widens each batch to float32 as the
stream path does, so every mode gives bit-identical batches, and the same seed the same run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from crest.data.schema.dataset import FeatureDataset, check_finite, contiguous_runs, feature_loader
from crest.data.schema.hdf5 import open_h5
from crest.errors import ConfigError, DataError

log = logging.getLogger(__name__)

CACHE_MODES = ("auto", "device", "ram", "stream")
#: auto keeps this share of the measured free memory for everything else (activations, the
#: optimizer, other processes)
DEVICE_HEADROOM = 0.6
HOST_HEADROOM = 0.5
#: rows read per HDF5 call while filling a cache (about 100 MB at the CUB 14×14 float16 shape)
FILL_CHUNK_ROWS = 128


@dataclass(frozen=True)
class FreeMemory:
    """Free bytes the cache may use: on the CUDA device (None on the CPU) and in host RAM."""

    device: int | None
    host: int


def measure_free_memory(device: torch.device) -> FreeMemory:
    """What ``auto`` decides from: ``cudaMemGetInfo`` and the kernel's MemAvailable, shared
    by the processes of this node under torchrun (each rank caches its own copy)."""
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    on_device = None
    if device.type == "cuda":
        on_device = int(torch.cuda.mem_get_info(device)[0])
    return FreeMemory(on_device, _host_available() // local)


def _host_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    return int(pages) * int(os.sysconf("SC_PAGE_SIZE")) if pages else 0


def choose_cache_mode(mode: str, needed: int, device: torch.device, free: FreeMemory) -> str:
    """The mode to use for ``needed`` bytes of features: ``mode`` itself unless it is ``auto``."""
    if mode not in CACHE_MODES:
        raise ConfigError(f"data.cache: {mode!r} is not one of {', '.join(CACHE_MODES)}")
    if mode != "auto":
        return mode
    if free.device is not None and needed <= DEVICE_HEADROOM * free.device:
        return "device"
    if needed <= HOST_HEADROOM * free.host:
        # on the CPU the device is host memory: "device" and "ram" are the same tensor there
        return "device" if device.type == "cpu" else "ram"
    return "stream"


def feature_bytes(path: str | Path, num_rows: int) -> int:
    """Bytes that ``num_rows`` feature maps of the file take in its own dtype."""
    with open_h5(path) as f:
        ds = f["feature_map"]
        return int(num_rows * int(np.prod(ds.shape[1:])) * ds.dtype.itemsize)


class FeatureCache:
    """The feature maps of some file rows in one tensor, read once; batches gathered by file row."""

    def __init__(
        self, path: str | Path, rows: np.ndarray, device: torch.device, pin: bool = False
    ) -> None:
        self.path = Path(path)
        self.rows = np.unique(np.asarray(rows, dtype=np.int64))  # sorted: file row → position
        self.device = device
        with open_h5(self.path) as f:
            ds = f["feature_map"]
            dtype = torch.from_numpy(np.zeros(0, dtype=ds.dtype)).dtype
            shape = (len(self.rows), *ds.shape[1:])
            self.features = torch.empty(shape, dtype=dtype, device=device, pin_memory=pin)
            self._fill(ds)

    def _fill(self, ds: object) -> None:
        bar = tqdm(
            total=len(self.rows), desc="caching features", unit="img", leave=False, disable=None
        )
        for a, b in contiguous_runs(self.rows):
            start = int(np.searchsorted(self.rows, a))
            for lo in range(a, b, FILL_CHUNK_ROWS):
                hi = min(b, lo + FILL_CHUNK_ROWS)
                block = np.asarray(ds[lo:hi])  # type: ignore[index]
                check_finite(self.path, block, np.arange(lo, hi))
                at = start + (lo - a)
                self.features[at : at + (hi - lo)].copy_(torch.from_numpy(block))
                bar.update(hi - lo)
        bar.close()

    @property
    def nbytes(self) -> int:
        return self.features.numel() * self.features.element_size()

    def positions(self, file_rows: np.ndarray) -> torch.Tensor:
        """Cache positions of ``file_rows``; every row must be cached."""
        file_rows = np.asarray(file_rows, dtype=np.int64)
        pos = np.searchsorted(self.rows, file_rows)
        if len(file_rows) and (
            pos.max(initial=0) >= len(self.rows) or np.any(self.rows[pos] != file_rows)
        ):
            raise DataError(self.path, "feature_map", "a requested row is not in the cache")
        return torch.from_numpy(pos).to(self.device)

    def gather(self, file_rows: np.ndarray) -> torch.Tensor:
        """Feature maps of ``file_rows`` in that order, float32, on the cache's device."""
        return self.features.index_select(0, self.positions(file_rows)).float()


class RowBatches:
    """``(features float32, labels)`` on ``device`` for each batch of positions into ``rows``
    that ``batches`` yields, read again on every iteration (``batches`` may be an epoch-aware
    batch sampler).

    The one reader behind training and evaluation: from the cache when there is one, else
    streamed through a DataLoader (built once, so persistent workers persist); the positions
    and their order are the same either way.
    """

    def __init__(
        self,
        path: str | Path,
        rows: np.ndarray,
        labels: np.ndarray,
        batches: Iterable[list[int]],
        device: torch.device,
        cache: FeatureCache | None = None,
        num_workers: int = 0,
        persistent: bool = False,
    ) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.batches = batches
        self.device = device
        self.cache = cache
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.loader = None
        if cache is None:
            data = FeatureDataset(path, self.rows, labels=labels)
            self.loader = feature_loader(
                data,
                batch_sampler=batches,
                num_workers=num_workers,
                pin_memory=device.type == "cuda",
                # workers kept between epochs by training; one evaluation pass needs no keeping
                persistent_workers=persistent and num_workers > 0,
            )

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.loader is not None:
            for x, y in self.loader:
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            return
        assert self.cache is not None
        for batch in self.batches:
            file_rows = self.rows[np.asarray(batch, dtype=np.int64)]
            x = self.cache.gather(file_rows).to(self.device, non_blocking=True)
            y = self.labels[torch.from_numpy(file_rows)].to(self.device, non_blocking=True)
            yield x, y


def in_order(n: int, batch_size: int) -> list[list[int]]:
    """Positions 0..n-1 in batches of ``batch_size``, in order (evaluation)."""
    return [list(range(i, min(n, i + batch_size))) for i in range(0, n, batch_size)]
