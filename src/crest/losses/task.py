"""What every model's training loss shares: the task's classes (seen: trained on; unseen: held
out, seen only through their attribute vectors) and the calibrated cross-entropy of ARISE."""

from __future__ import annotations

from typing import TypeVar

import torch

from crest.losses.arise import arise_loss

Loss = TypeVar("Loss", bound="TaskLoss")


class TaskLoss:
    """The base of a model's loss for one training task (seen, unseen class ids)."""

    def __init__(self, seen: torch.Tensor, unseen: torch.Tensor) -> None:
        self.seen = seen.long()
        self.unseen = unseen.long()

    def to(self: Loss, device: torch.device) -> Loss:
        self.seen, self.unseen = self.seen.to(device), self.unseen.to(device)
        return self

    def calibrated_ce(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        lambda_cal: float,
        ce_over: str = "all",
        sc_form: str = "code",
    ) -> dict[str, torch.Tensor]:
        """{"ce": L_CE, "sc": λ · L_SC} of ``logits`` (B, C) over all classes (docs/method.md §3.1)."""
        ce, sc = arise_loss(
            logits.float(), target, self.seen, self.unseen, lambda_cal, ce_over, sc_form
        )
        return {"ce": ce, "sc": lambda_cal * sc}


def total(terms: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The sum of the weighted ``terms`` and the terms detached (read once per epoch)."""
    return torch.stack(list(terms.values())).sum(), {k: v.detach() for k, v in terms.items()}
