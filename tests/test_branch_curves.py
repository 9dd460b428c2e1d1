"""The branch-curve figure reads the split a run scored over its epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from crest.explain import figures


def _entry(phase: str, epoch: int, split: str) -> dict:
    branch = {"czsl_acc": 0.5, "best_gamma_h": 0.4}
    return {
        "phase": phase,
        "epoch": epoch,
        "eval_split": split,
        "czsl_acc": 0.6,
        "best_gamma_h": 0.5,
        "branches": {"vgt": dict(branch), "agt": dict(branch)},
    }


@pytest.mark.parametrize(
    ("final_epochs", "split"),
    [
        ([3], "validation"),  # `val`: the test split scored once, after the chosen epoch
        ([1, 2, 3], "test"),  # `final`, `test-oracle` or train.test_curve: a test curve
    ],
)
def test_branch_curves_follow_the_split_scored_every_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, final_epochs: list[int], split: str
) -> None:
    history = [_entry("val", e, "validation") for e in (1, 2, 3, 4)]
    history += [_entry("final", e, "test") for e in final_epochs]
    drawn = {}

    def keep(fig, path):
        drawn["title"] = fig._suptitle.get_text()
        drawn["points"] = len(fig.axes[0].lines[0].get_xdata())
        return path

    monkeypatch.setattr(figures, "save", keep)
    assert figures.branch_curves(tmp_path / "b.png", history) == tmp_path / "b.png"
    assert drawn["title"].endswith(f"{split} split")
    assert drawn["points"] == (4 if split == "validation" else 3)
