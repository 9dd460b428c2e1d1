"""Feature-map preprocessing shared by every model: (B, D_v, h, w) → (B, R, D_v), regions L2-normalised."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_regions(feature_map: torch.Tensor) -> torch.Tensor:
    """Flatten the grid to R = h·w regions and L2-normalise each region over channels (spec §0)."""
    b, d, h, w = feature_map.shape
    regions = feature_map.reshape(b, d, h * w).transpose(1, 2)
    return F.normalize(regions, dim=-1)


def embed_regions(feature_map: torch.Tensor, linear: torch.nn.Linear) -> torch.Tensor:
    """``linear(to_regions(feature_map))`` without building the normalised (B, R, D_v) copy.

    Normalising is a per-region scale, so it commutes with the linear map:
    (x / ‖x‖) W = (x W) / ‖x‖. Multiplying W into the (B, D_v, R) layout the data arrives in
    reads the input once and keeps peak memory at one input tensor (411 MB at batch 256, CUB).
    """
    b, d, h, w = feature_map.shape
    flat = feature_map.reshape(b, d, h * w)
    norms = torch.linalg.vector_norm(flat, dim=1).clamp_min(1e-12)  # (B, R), as F.normalize's eps
    projected = torch.matmul(linear.weight, flat)  # (B, d, R)
    out = (projected / norms.unsqueeze(1)).transpose(1, 2)
    return out + linear.bias if linear.bias is not None else out
