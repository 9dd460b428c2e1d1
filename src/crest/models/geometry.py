"""TransZero's geometry-aware self-attention bias over grid cells (docs/method.md §2, encoder=geometry)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def relative_geometry_embedding(h: int, w: int, frequencies: int = 8) -> torch.Tensor:
    """(R, R, 4·2·frequencies) sin/cos embedding of the relative box geometry of grid cells.

    It depends on the grid only: the model caches it per grid size.
    """
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    cx, cy = ((xs + 0.5) / w).reshape(-1), ((ys + 0.5) / h).reshape(-1)
    bw = torch.full_like(cx, 1.0 / w)
    bh = torch.full_like(cy, 1.0 / h)
    dx = torch.log(((cx[:, None] - cx[None, :]).abs() / bw[:, None]).clamp_min(1e-3))
    dy = torch.log(((cy[:, None] - cy[None, :]).abs() / bh[:, None]).clamp_min(1e-3))
    dw = torch.log(bw[:, None] / bw[None, :])
    dh = torch.log(bh[:, None] / bh[None, :])
    rel = torch.stack([dx, dy, dw, dh], dim=-1) * 100.0  # (R, R, 4)
    freq = 1000.0 ** (-torch.arange(frequencies, dtype=torch.float64) / frequencies)
    angles = rel[..., None] * freq  # (R, R, 4, F)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).reshape(h * w, h * w, -1).float()


class GeometryBias(nn.Module):
    """g_ij = ReLU(Linear(64 → 1)(embedding_ij)) ≥ 0; the attention logits become QKᵀ/√d − g."""

    def __init__(self, frequencies: int = 8) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.proj = nn.Linear(4 * 2 * frequencies, 1)
        self._cache: dict[tuple[int, int, str], torch.Tensor] = {}

    def forward(self, h: int, w: int) -> torch.Tensor:
        key = (h, w, str(self.proj.weight.device))
        # under torch.compile the embedding is traced as constants; a cache lookup would be a
        # guard on a dict that the first call changes, and so a recompile
        emb = None if torch.compiler.is_compiling() else self._cache.get(key)
        if emb is None:
            emb = relative_geometry_embedding(h, w, self.frequencies).to(self.proj.weight.device)
            if not torch.compiler.is_compiling():
                self._cache[key] = emb
        return -F.relu(self.proj(emb).squeeze(-1))  # additive bias (R, R)
