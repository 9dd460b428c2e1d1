"""A linear layer whose CPU products run in blocks of rows (docs/performance.md, item 8).

The attribute side of a transformer decoder is B × A rows (19,968 at batch 64 with CUB's 312
attributes) of width d = 300. One (19968, 300) × (300, 300) product runs at about half of the
CPU's matmul peak; the same product in blocks of 1,024 rows at 80-90 % of it (2 cores, AVX-512,
fp32), because each block's rows stay in cache while every column of the weight uses them. The
arithmetic is the same: each output row is still its input row times the weight, and the
weight's gradient is still one product over all rows. Only float32 CPU tensors with many rows
take this path; everything else (a GPU, autocast, small inputs) is ``F.linear``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

#: rows per block of the CPU product, and the fewest rows that are split into blocks
ROW_BLOCK = 1024
MIN_ROWS = 8192


def _blocked_product(
    x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None, shape: tuple[int, ...]
) -> torch.Tensor:
    """``x @ weight_t (+ bias)`` for a 2-D ``x``, ROW_BLOCK rows at a time, into a new tensor of
    ``shape`` (the leading dimensions of the input and the output width): the tensor itself is
    returned, not a view of it, so that in-place operations on it work as on ``F.linear``'s."""
    result = x.new_empty(shape)
    out = result.view(x.shape[0], weight_t.shape[1])
    for i in range(0, x.shape[0], ROW_BLOCK):
        rows = slice(i, i + ROW_BLOCK)
        if bias is None:
            torch.mm(x[rows], weight_t, out=out[rows])
        else:
            torch.addmm(bias, x[rows], weight_t, out=out[rows])
    return result


class _RowBlockedLinear(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(flat, weight)
        ctx.shape = x.shape
        ctx.has_bias = bias is not None
        return _blocked_product(flat, weight.t(), bias, (*x.shape[:-1], weight.shape[0]))

    @staticmethod
    @once_differentiable  # no double backward through the blocked path (F.linear has one)
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        flat, weight = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _blocked_product(g, weight, None, tuple(ctx.shape))
        if ctx.needs_input_grad[1]:
            grad_w = g.t() @ flat  # one product over all rows
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(0)
        return grad_x, grad_w, grad_b


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, in row blocks for large float32 CPU inputs."""
    if (
        not torch.compiler.is_compiling()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.numel() >= MIN_ROWS * x.shape[-1]
        and not torch.is_autocast_enabled("cpu")
    ):
        out: torch.Tensor = _RowBlockedLinear.apply(x, weight, bias)
        return out
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) whose CPU product runs in row blocks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
