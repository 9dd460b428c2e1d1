"""The batched product against one shared matrix (crest.regions.shared_product): the forward
and both gradients of the plain broadcast product, with the weight gradient computed once."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("weight_left", [True, False])
def test_shared_product_matches_autograd_of_the_broadcast_product(weight_left):
    from crest.regions import shared_product

    torch.manual_seed(0)
    x = torch.randn(5, 7, 3, dtype=torch.float64, requires_grad=True)  # (B, Q, N)
    w = (
        torch.randn(4, 7, dtype=torch.float64)
        if weight_left
        else torch.randn(7, 4, dtype=torch.float64)
    )
    w.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: shared_product(a, b, weight_left), (x, w))
    reference = (w @ x) if weight_left else (x.mT @ w)
    torch.testing.assert_close(shared_product(x, w, weight_left), reference)


def test_shared_product_under_bf16_autocast_returns_grads_in_the_inputs_dtypes():
    from crest.regions import shared_product

    torch.manual_seed(0)
    x = torch.randn(4, 16, 9, requires_grad=True)
    w = torch.randn(16, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = shared_product(x, w, weight_left=False)
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    assert x.grad is not None and w.grad is not None
    assert x.grad.dtype == torch.float32 and w.grad.dtype == torch.float32
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    (x2.mT @ w2).square().sum().backward()
    torch.testing.assert_close(w.grad, w2.grad, rtol=0.05, atol=0.5)  # bf16 arithmetic
