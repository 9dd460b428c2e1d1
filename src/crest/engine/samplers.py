"""Batch samplers: uniform shuffling per epoch, and the class-aware P×K sampler (docs/method.md §4; P×K gives VICL same-class partners, §3.2)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochShuffle(Sampler[int]):
    """A permutation of range(n) fixed by (seed, epoch); optionally this rank's share only.

    With ``world_size > 1`` each rank takes every ``world_size``-th index of the permutation
    (the last incomplete round is dropped so ranks step together).
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        g = torch.Generator().manual_seed(self.seed * 10_007 + self.epoch)
        order = torch.randperm(self.n, generator=g).numpy()
        usable = (self.n // self.world_size) * self.world_size
        return order[:usable][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return self.n // self.world_size


class PKBatchSampler(Sampler[list[int]]):
    """Batches of P classes × K images each, so that VICL anchors have same-class partners."""

    def __init__(
        self, labels: np.ndarray, batch_size: int, images_per_class: int, seed: int
    ) -> None:
        self.labels = np.asarray(labels)
        self.k = max(1, images_per_class)
        self.p = max(1, batch_size // self.k)
        self.seed = seed
        self.epoch = 0
        self.by_class = {int(c): np.flatnonzero(self.labels == c) for c in np.unique(self.labels)}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(1, len(self.labels) // (self.p * self.k))

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        classes = np.array(sorted(self.by_class))
        for _ in range(len(self)):
            chosen = rng.choice(classes, size=min(self.p, len(classes)), replace=False)
            batch = []
            for c in chosen:
                pool = self.by_class[int(c)]
                batch.extend(rng.choice(pool, size=self.k, replace=len(pool) < self.k).tolist())
            yield batch
