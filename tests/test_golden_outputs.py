"""Every registered model's arithmetic, pinned: on fixed weights and fixed inputs, its logits,
embedding, branch scores, loss terms and the loss's gradients with respect to the input and to
every parameter match the
values recorded in ``tests/golden/outputs.json`` to 1e-5. A speed change (a fused kernel, a
batched operation, work done once instead of per sample) must leave them as they are.

The file is rewritten only on purpose, when the math itself changes:
``python tests/test_golden_outputs.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import crest.models.linear
import crest.regions
from crest.config import load_config
from crest.models import ArrayInputs, create_loss, create_model
from crest.models.registry import REGISTRY, recipe

GOLDEN = Path(__file__).parent / "golden" / "outputs.json"
SMALL = ["model.d=16", "model.d_ff=32", "model.bank_size=8", "model.bank_dim=4"]
TOLERANCE = 1e-5


def compute(name: str) -> dict[str, Any]:
    """The pinned quantities of model ``name``: seeded weights, 6 attributes, 5 classes, a 2×3
    grid of 8 channels, 4 images; the loss on classes 0–2 seen and 3–4 unseen, epoch 1."""
    cfg = load_config("synthetic", [*recipe(name, "synthetic"), f"model.name={name}", *SMALL])
    rng = np.random.default_rng(0)
    inputs = ArrayInputs(8, rng.normal(size=(6, 10)), np.abs(rng.normal(size=(5, 6))), grid=(2, 3))
    torch.manual_seed(0)
    model = create_model(cfg, inputs).eval()  # eval: no dropout, so nothing random remains
    x = torch.from_numpy(rng.normal(size=(4, 8, 2, 3)).astype(np.float32)).requires_grad_()
    out = model(x)
    loss_fn = create_loss(cfg, torch.tensor([0, 1, 2]), torch.tensor([3, 4]))
    total, terms = loss_fn(out, torch.tensor([0, 1, 2, 0]), 1)
    total.backward()
    assert x.grad is not None
    values: dict[str, Any] = {
        "logits": out.logits,
        "embedding": out.embedding,
        **{f"branch_{k}": v for k, v in sorted(out.branches.items())},
        "loss": total,
        **{f"term_{k}": v for k, v in sorted(terms.items())},
        "input_grad": x.grad,
        # every parameter's gradient, in the model's own order: a speed change to a backward
        # pass (a custom autograd function, a fused weight gradient) shows here
        **{
            f"grad_{n}": p.grad if p.grad is not None else torch.zeros(0)
            for n, p in model.named_parameters()
            if p.requires_grad
        },
    }
    return {k: pinned(v) for k, v in values.items()}


def pinned(tensor: torch.Tensor) -> list[float]:
    """Up to 256 values as they are; a larger tensor by its sum, its sum of squares and its
    product with a fixed random vector (any change to its values moves at least one)."""
    flat = tensor.detach().double().flatten()
    if flat.numel() <= 256:
        return flat.tolist()
    probe = torch.randn(flat.numel(), generator=torch.Generator().manual_seed(1), dtype=flat.dtype)
    return [float(flat.sum()), float(flat.square().sum()), float(flat @ probe)]


def test_every_registered_model_is_pinned() -> None:
    assert set(json.loads(GOLDEN.read_text())) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_outputs_loss_and_gradient_are_unchanged(name: str) -> None:
    expected = json.loads(GOLDEN.read_text())[name]
    got = compute(name)
    assert set(got) == set(expected), f"{name}: the pinned outputs changed their keys"
    for key, values in expected.items():
        a, b = np.asarray(got[key]), np.asarray(values)
        assert a.shape == b.shape, f"{name}.{key}: shape {a.shape}, pinned {b.shape}"
        scale = max(1.0, float(np.abs(b).max(initial=0.0)))
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE * scale, err_msg=f"{name}.{key}")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_cpu_blocked_paths_keep_the_pinned_values(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same values when every linear layer runs its CPU row blocks (blocks of 5 rows) and the
    region projection runs in chunks of 3 samples: paths the tiny golden inputs never reach."""
    monkeypatch.setattr(crest.models.linear, "MIN_ROWS", 1)
    monkeypatch.setattr(crest.models.linear, "ROW_BLOCK", 5)
    monkeypatch.setattr(crest.regions, "CPU_PROJECTION_CHUNK", 3)
    test_outputs_loss_and_gradient_are_unchanged(name)


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.parent.mkdir(exist_ok=True)
    table = {name: compute(name) for name in sorted(REGISTRY)}
    tmp = GOLDEN.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=0) + "\n")
    tmp.replace(GOLDEN)
    print(f"wrote {GOLDEN}")
