"""Where a training step's FLOPs go: the forward pass per top-level part of the model, the loss,
and the backward pass (``torch.utils.flop_counter``; matmul-class operators, as MFU counts them).

The backward pass is reported whole: the counter attributes a backward operator to every module
still open on its stack, so its per-module figures overlap and do not add up. Forward figures per
part are exact; a part's backward is about twice its forward (gradients of both the inputs and
the weights), the first layer's about once (no gradient is needed for the input features).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: the label of a model's own operators, outside any of its sub-modules (CREST's region
#: projection, the fusion, the class logits)
OWN = "(own operators)"


def flop_breakdown(
    model: nn.Module,
    loss_fn: Callable[..., tuple[torch.Tensor, Any]],
    x: torch.Tensor,
    y: torch.Tensor,
    epoch: int = 5,
) -> dict[str, float]:
    """FLOPs of one training step of ``model`` on (``x``, ``y``), by part, in the order
    ``forward: <child>`` for each direct child module with any, ``forward: (own operators)``,
    ``loss``, ``backward`` and ``total``. The step's gradients are left on the parameters."""
    root = type(model).__name__
    with FlopCounterMode(display=False, depth=2) as forward:
        out = model(x)
    with FlopCounterMode(display=False) as loss_count:
        loss, _ = loss_fn(out, y, epoch)
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    per_module = {k: float(sum(v.values())) for k, v in forward.get_flop_counts().items()}
    total_forward = float(forward.get_total_flops())
    parts: dict[str, float] = {}
    for name, _ in model.named_children():
        flops = per_module.get(f"{root}.{name}", 0.0)
        if flops > 0:
            parts[f"forward: {name}"] = flops
    parts[f"forward: {OWN}"] = total_forward - sum(parts.values())
    parts["loss"] = float(loss_count.get_total_flops())
    parts["backward"] = float(backward.get_total_flops())
    parts["total"] = total_forward + parts["loss"] + parts["backward"]
    return parts


def breakdown_table(parts: dict[str, float]) -> str:
    """Two columns: part, GFLOP, share of the step."""
    total = parts["total"] or 1.0
    width = max(len(k) for k in parts)
    lines = [f"{'part'.ljust(width)}  {'GFLOP':>9}  share"]
    for name, flops in parts.items():
        lines.append(f"{name.ljust(width)}  {flops / 1e9:9.3f}  {100 * flops / total:5.1f}%")
    return "\n".join(lines)
