"""The CPU speed paths of issue 29: row-blocked linear layers, region fronts in one product and
the allocator setting.

Their arithmetic is pinned by ``test_golden_outputs.py`` (which also runs every model through
the blocked paths); these tests check when each path is taken and what it leaves alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import crest.models.linear as blocked
from crest.models.linear import Linear
from crest.regions import embed_regions_together, normalized_product, to_regions


def test_a_large_input_runs_in_row_blocks_with_the_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    layer = Linear(24, 40)
    x = torch.randn(3, blocked.MIN_ROWS // 3 + 100, 24, requires_grad=True)
    out = layer(x)
    assert out.grad_fn is not None and "RowBlocked" in type(out.grad_fn).__name__
    ref_x = x.detach().clone().requires_grad_()
    ref = F.linear(ref_x, layer.weight, layer.bias)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    probe = torch.randn_like(out)
    grads = torch.autograd.grad((out * probe).sum(), (x, layer.weight, layer.bias))
    expected = torch.autograd.grad((ref * probe).sum(), (ref_x, layer.weight, layer.bias))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_the_blocked_output_takes_in_place_operations_like_f_linear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(blocked, "MIN_ROWS", 1)
    monkeypatch.setattr(blocked, "ROW_BLOCK", 3)
    torch.manual_seed(0)
    layer = Linear(4, 6)
    x = torch.randn(2, 5, 4, requires_grad=True)
    out = layer(x)
    assert "RowBlocked" in type(out.grad_fn).__name__ and out.shape == (2, 5, 6)
    out.relu_()  # nn.ReLU(inplace=True) after a linear layer: no view error
    out.sum().backward()
    ref_x = x.detach().clone().requires_grad_()
    F.linear(ref_x, layer.weight, layer.bias).relu().sum().backward()
    assert x.grad is not None and ref_x.grad is not None
    torch.testing.assert_close(x.grad, ref_x.grad)


def test_small_inputs_autocast_and_other_dtypes_take_torchs_own_linear() -> None:
    layer = Linear(8, 4)
    small = layer(torch.randn(10, 8))
    assert "RowBlocked" not in type(small.grad_fn).__name__
    large = torch.randn(blocked.MIN_ROWS, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(large).dtype == torch.bfloat16  # autocast's cast, not the blocked path
    assert "RowBlocked" not in type(layer.double()(large.double()).grad_fn).__name__


def test_the_layer_keeps_nn_linears_parameters_and_state_dict() -> None:
    layer = Linear(6, 3)
    assert isinstance(layer, torch.nn.Linear)
    assert set(layer.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("channels", [5, 40])  # fewer / more channels than maps: both sides
@pytest.mark.parametrize("weight_left", [True, False])
def test_normalized_product_scales_either_side_with_the_same_result(
    channels: int, weight_left: bool
) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, channels, 7) * 4
    weight = torch.randn(12, channels) if weight_left else torch.randn(channels, 12)
    weight.requires_grad_()
    got = normalized_product(x, weight, weight_left)
    regions = F.normalize(x, dim=1)  # (B, D, R), each region (column) of unit length
    ref_w = weight.detach().clone().requires_grad_()
    want = ref_w @ regions if weight_left else regions.mT @ ref_w
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    probe = torch.randn_like(got)
    (g,) = torch.autograd.grad((got * probe).sum(), weight)
    (r,) = torch.autograd.grad((want * probe).sum(), ref_w)
    torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [3, 37])  # one chunk of samples, and several with a remainder
def test_fronts_embedded_together_match_each_linear_on_its_own(batch: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(batch, 24, 3, 3) * 3
    linears = [torch.nn.Linear(24, 10), torch.nn.Linear(24, 6, bias=False)]
    got = embed_regions_together(x, linears)
    want = [lin(to_regions(x)) for lin in linears]
    probes = [torch.randn_like(w) for w in want]
    params = [p for lin in linears for p in lin.parameters()]
    grads = torch.autograd.grad(
        sum((g * p).sum() for g, p in zip(got, probes, strict=True)), params
    )
    refs = torch.autograd.grad(
        sum((w * p).sum() for w, p in zip(want, probes, strict=True)), params
    )
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, refs, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


def _applied(env: dict[str, str]) -> str:
    code = (
        "from crest.device import choose_device; import crest.cpu_allocator as a; "
        "choose_device('cpu'); print(a._state.get('applied'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_choosing_the_cpu_keeps_freed_memory_unless_told_not_to() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CREST_CPU_ALLOCATOR"}
    assert _applied(env) == "True"
    assert _applied({**env, "CREST_CPU_ALLOCATOR": "system"}) == "False"
