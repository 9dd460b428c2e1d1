"""Feature-map preprocessing shared by every model: (B, D_v, h, w) → (B, R, D_v), regions L2-normalised."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

#: samples per batched matmul in the CPU region projection; 16 keeps one chunk's input (25 MB at
#: the CUB shape) in cache and measured 110 GFLOP/s against 39 for one folded matmul (2 cores)
CPU_PROJECTION_CHUNK = 16


def to_regions(feature_map: torch.Tensor) -> torch.Tensor:
    """Flatten the grid to R = h·w regions and L2-normalise each region over channels (docs/method.md §1)."""
    b, d, h, w = feature_map.shape
    regions = feature_map.reshape(b, d, h * w).transpose(1, 2)
    return F.normalize(regions, dim=-1)


class _SharedWeightProduct(torch.autograd.Function):
    """Every sample's block times one shared matrix, with the shared matrix's gradient computed
    as one matrix product.

    ``weight_left``: out_b = W x_b, W (P, Q), x (B, Q, N) → (B, P, N); otherwise
    out_b = x_bᵀ W, W (Q, K) → (B, N, K). The forward pass is a batched product against the
    broadcast W (no copy of x). Autograd's own backward of that product would build one (Q, K)
    weight gradient per sample and then sum them: (B, 2048, 1248) floats, 650 MB and most of an
    MSDN step at the cub7 shape. Here the B blocks are laid side by side instead (one copy of x,
    the size of the input) and the gradient is a single (Q, B·N) × (B·N, K) product.
    Under autocast the backward pass computes in the dtype of the incoming gradient, as
    autocast's own batched product would, and returns each gradient in its input's dtype.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, weight_left: bool) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.weight_left = weight_left
        shared = weight.expand(x.shape[0], *weight.shape)
        return torch.bmm(shared, x) if weight_left else torch.bmm(x.mT, shared)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        b, q, n = x.shape
        dtype = grad.dtype
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            w = weight.to(dtype)
            # W x_b: dx_b = Wᵀ g_b; x_bᵀ W: dx_b = W g_bᵀ
            grad_x = torch.matmul(w.t(), grad) if ctx.weight_left else torch.matmul(w, grad.mT)
            grad_x = grad_x.to(x.dtype)
        if ctx.needs_input_grad[1]:
            side = x.to(dtype).transpose(0, 1).reshape(q, b * n)  # [x_1 … x_B] (Q, B·N)
            if ctx.weight_left:  # dW = Σ_b g_b x_bᵀ
                grad_w = grad.transpose(0, 1).reshape(-1, b * n) @ side.t()
            else:  # dW = Σ_b x_b g_b
                grad_w = side @ grad.reshape(b * n, -1)
            grad_w = grad_w.to(weight.dtype)
        return grad_x, grad_w, None


def shared_product(x: torch.Tensor, weight: torch.Tensor, weight_left: bool) -> torch.Tensor:
    """``weight @ x_b`` (``weight_left``) or ``x_bᵀ @ weight`` for every block x_b of ``x``
    (B, Q, N), with a weight gradient computed once for the batch (:class:`_SharedWeightProduct`)."""
    out: torch.Tensor = _SharedWeightProduct.apply(x, weight, weight_left)
    return out


def region_norms(x: torch.Tensor) -> torch.Tensor:
    """The L2 norm of every region (column) of ``x`` (B, D, R), (B, R). A sum of squares reads
    the strided channel axis 2x faster than vector_norm here; clamped like F.normalize's eps so
    an all-zero region stays finite."""
    return (x * x).sum(dim=1).sqrt().clamp_min(1e-12)


def normalized_product(
    x: torch.Tensor, weight: torch.Tensor, weight_left: bool, out_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """:func:`shared_product` of every L2-normalised region (column of ``x`` (B, D, R)) with
    ``weight``, without building a normalised copy of the larger side: the per-region scale
    commutes with the product, so it divides the input when the input is the smaller tensor (a
    like world's 128 channels against DAZLE's 936 or MSDN's 1,248 maps) and the product
    otherwise (CUB's 2,048 channels). ``out_dtype``: the product is cast to it before that
    division (DAZLE divides in float32 under bf16 autocast)."""
    norms = region_norms(x)
    scale_input = x.shape[1] < (weight.shape[0] if weight_left else weight.shape[1])
    out = shared_product(
        x / norms.unsqueeze(1).to(x.dtype) if scale_input else x, weight, weight_left
    )
    if out_dtype is not None:
        out = out.to(out_dtype)
    if scale_input:
        return out
    scale = norms.unsqueeze(1) if weight_left else norms.unsqueeze(-1)
    return out / scale.to(out.dtype)


def embed_regions(feature_map: torch.Tensor, linear: torch.nn.Linear) -> torch.Tensor:
    """``linear(to_regions(feature_map))`` without building the normalised (B, R, D_v) copy.

    Normalising is a per-region scale, so it commutes with the linear map:
    (x / ‖x‖) W = (x W) / ‖x‖. The product is a batched matmul that takes each sample's
    (D_v, R) block, in the layout the data arrives in, as a transposed operand: no copy of the
    input (``torch.matmul`` would fold the batch into one (B·R, D_v) matrix and first copy the
    whole input, 411 MB at batch 256 on CUB). On the CPU it runs in chunks of samples, each
    chunk's norms and product computed while it is in cache; the weight gradient is one product
    per chunk (:func:`shared_product`). On a GPU the whole batch is one chunk.
    """
    return embed_regions_together(feature_map, [linear])[0]


def embed_regions_together(
    feature_map: torch.Tensor, linears: list[torch.nn.Linear]
) -> list[torch.Tensor]:
    """``[embed_regions(feature_map, l) for l in linears]`` as one product against the linears'
    weights side by side: the input is read, and its region norms computed, once, and the
    product is as wide as all outputs together (CREST's two fronts: 600 columns, not 2 × 300)."""
    b, d, h, w = feature_map.shape
    flat = feature_map.reshape(b, d, h * w)
    weight = linears[0].weight if len(linears) == 1 else torch.cat([x.weight for x in linears])
    wt = weight.to(flat.dtype).t()  # (D_v, Σ d)
    chunk = CPU_PROJECTION_CHUNK if flat.device.type == "cpu" else b
    parts = []
    for i in range(0, b, chunk):
        piece = flat[i : i + chunk]
        norms = region_norms(piece)  # (b, R)
        projected = shared_product(piece, wt, weight_left=False)  # (b, R, Σ d)
        parts.append(projected / norms.unsqueeze(-1))
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    pieces = [out] if len(linears) == 1 else out.split([x.out_features for x in linears], dim=-1)
    return [p + x.bias if x.bias is not None else p for p, x in zip(pieces, linears, strict=True)]
