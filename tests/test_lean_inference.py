"""Lean inference: no tensor of size batch × attributes × regions × width is ever built."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from crest.config import ModelConfig
from crest.models import ArrayInputs, create_model


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operator produces, by the elements its storage holds: a
    broadcast view (``expand``) builds nothing, however many elements it shows."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self.shape: tuple[int, ...] = ()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if not isinstance(t, torch.Tensor):
                continue
            held = t.untyped_storage().nbytes() // t.element_size()
            if held > self.largest:
                self.largest, self.shape = held, tuple(t.shape)
        return out


B, A, SIDE, D = 8, 10, 3, 32
FULL = B * A * SIDE * SIDE * D  # batch × attributes × regions × width


def _model(dropout: float) -> torch.nn.Module:
    cfg = ModelConfig(d=D, d_ff=64, dropout=dropout, bank_size=6, bank_dim=4)
    rng = np.random.default_rng(0)
    return create_model(
        cfg, ArrayInputs(16, rng.normal(size=(A, 12)), np.abs(rng.normal(size=(7, A))))
    )


def test_no_batch_by_attribute_by_region_by_width_tensor():
    model = _model(dropout=0.0).eval()
    x = torch.rand(B, 16, SIDE, SIDE)
    with torch.no_grad(), LargestTensor() as probe:
        model(x)
    full = FULL
    assert probe.largest < full / 3, (
        f"a tensor of shape {probe.shape} ({probe.largest} ≥ B·A·R·d/3 = {full / 3:.0f})"
    )


def test_training_step_builds_no_such_tensor_either():
    model = _model(dropout=0.2).train()
    x = torch.rand(B, 16, SIDE, SIDE)
    with LargestTensor() as probe:
        out = model(x)
        (out.logits.sum() + out.alpha.sum()).backward()
    full = FULL
    assert probe.largest < full / 3, f"a tensor of shape {probe.shape} in forward or backward"
