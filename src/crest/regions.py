"""Feature-map preprocessing shared by every model: (B, D_v, h, w) → (B, R, D_v), regions L2-normalised."""

from __future__ import annotations

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


def embed_regions(feature_map: torch.Tensor, linear: torch.nn.Linear) -> torch.Tensor:
    """``linear(to_regions(feature_map))`` without building the normalised (B, R, D_v) copy.

    Normalising is a per-region scale, so it commutes with the linear map:
    (x / ‖x‖) W = (x W) / ‖x‖. The product is a batched matmul that takes each sample's
    (D_v, R) block, in the layout the data arrives in, as a transposed operand: no copy of the
    input (``torch.matmul`` would fold the batch into one (B·R, D_v) matrix and first copy the
    whole input, 411 MB at batch 256 on CUB). On the CPU it runs in chunks of samples, each
    chunk's norms and product computed while it is in cache; autograd sees ordinary ops, so the
    weight gradient is computed chunk by chunk too. On a GPU the whole batch is one chunk.
    """
    b, d, h, w = feature_map.shape
    flat = feature_map.reshape(b, d, h * w)
    wt = linear.weight.to(flat.dtype).t()  # (D_v, d)
    chunk = CPU_PROJECTION_CHUNK if flat.device.type == "cpu" else b
    parts = []
    for i in range(0, b, chunk):
        piece = flat[i : i + chunk]
        # a sum of squares reads the strided channel axis 2x faster than vector_norm here;
        # clamped like F.normalize's eps so an all-zero region stays finite
        norms = (piece * piece).sum(dim=1).sqrt().clamp_min(1e-12)  # (b, R)
        projected = torch.bmm(piece.mT, wt.expand(piece.shape[0], *wt.shape))  # (b, R, d)
        parts.append(projected / norms.unsqueeze(-1))
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    return out + linear.bias if linear.bias is not None else out
