"""The one loop that runs a model over inputs: rows of a benchmark file (from the feature cache
or streamed) or an in-memory batch of feature maps. Evaluation, `crest explain` and prediction
all go through :func:`run_model`; each says which outputs it wants with a ``pick`` function."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from crest.data.schema.feature_cache import FeatureCache, RowBatches, in_order
from crest.device import autocast
from crest.models.contract import ModelOutput, ZSLModel

Batch = tuple[torch.Tensor, torch.Tensor | None]
#: what to keep of one batch's forward pass: name → tensor with the batch as its first dimension
Pick = Callable[[ModelOutput, torch.Tensor | None], dict[str, torch.Tensor]]


def file_rows(
    path: str | Path,
    rows: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    batch_size: int,
    cache: FeatureCache | None = None,
    num_workers: int = 0,
) -> RowBatches:
    """Rows of a benchmark file in order, with their labels, in batches (cached or streamed)."""
    batches = in_order(len(rows), batch_size)
    return RowBatches(path, rows, labels, batches, device, cache, num_workers)


def in_memory(features: torch.Tensor, batch_size: int, device: torch.device) -> Iterator[Batch]:
    """Feature maps already in memory, in batches, without labels."""
    for start in range(0, len(features), batch_size):
        yield features[start : start + batch_size].to(device), None


@torch.no_grad()
def run_model(
    model: ZSLModel,
    batches: Iterable[Batch],
    pick: Pick,
    precision: str = "fp32",
    progress: str | None = None,
    **forward: Any,
) -> dict[str, np.ndarray]:
    """Run ``model`` (in eval mode, restored afterwards) over ``batches``; the picked outputs stay
    on the device until the last batch and come to the host in one copy per output.
    ``forward`` goes to the model (``class_matrix=``, ``return_attention=``)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {}
    total = len(batches) if isinstance(batches, Sized) else None
    # per-batch progress with rate and ETA on a terminal; quiet in logs and pipes
    for x, y in tqdm(
        batches,
        desc=progress,
        total=total,
        unit="batch",
        leave=False,
        disable=None if progress else True,
    ):
        with autocast(device, precision):
            out = model(x, **forward)
        for name, value in pick(out, y).items():
            parts.setdefault(name, []).append(value)
    model.train(was_training)
    return {name: torch.cat(values).cpu().numpy() for name, values in parts.items()}
