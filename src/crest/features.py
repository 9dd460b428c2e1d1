"""Feature-map preprocessing shared by every model: (B, D_v, h, w) → (B, R, D_v), regions L2-normalised."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_regions(feature_map: torch.Tensor) -> torch.Tensor:
    """Flatten the grid to R = h·w regions and L2-normalise each region over channels (spec §0)."""
    b, d, h, w = feature_map.shape
    regions = feature_map.reshape(b, d, h * w).transpose(1, 2)
    return F.normalize(regions, dim=-1)
