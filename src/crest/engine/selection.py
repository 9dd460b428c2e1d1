"""Model selection (spec §4): turn a run's history into the numbers it reports, labelled."""

from __future__ import annotations

from typing import Any

REPORTED = (
    "czsl_acc",
    "gzsl_u",
    "gzsl_s",
    "gzsl_h",
    "gamma",
    "ausuc",
    "ece",
    "auroc_unseen",
    "coverage_auc",
)


def _evaluated(history: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    return [e for e in history if e.get("phase") == phase and "czsl_acc" in e]


def choose_val_epoch(history: list[dict[str, Any]]) -> tuple[int, float, float]:
    """(epoch, γ, H) of the best validation H, γ being the best on that epoch's validation curve."""
    entries = _evaluated(history, "val")
    if not entries:
        raise ValueError("no validation epochs in the history")
    best = max(entries, key=lambda e: (e["best_gamma_h"], -e["epoch"]))
    return int(best["epoch"]), float(best["best_gamma"]), float(best["best_gamma_h"])


def final_metrics(history: list[dict[str, Any]], selection: str, gamma: float) -> dict[str, Any]:
    """The metrics.json of a finished run."""
    test = _evaluated(history, "final")
    if not test:
        raise ValueError("no evaluated epochs in the history")
    if selection == "test-oracle":
        by_h = max(test, key=lambda e: (e["gzsl_h"], -e["epoch"]))
        by_czsl = max(test, key=lambda e: (e["czsl_acc"], -e["epoch"]))
        out = {k: by_h[k] for k in REPORTED if k in by_h}
        out["czsl_acc"] = by_czsl["czsl_acc"]
        out.update(
            selection="test-oracle",
            epoch=int(by_h["epoch"]),
            epoch_czsl=int(by_czsl["epoch"]),
            selection_detail=(
                f"TEST-ORACLE: H, U, S from epoch {by_h['epoch']} and CZSL from epoch {by_czsl['epoch']}, "
                f"each the best on the test split; γ fixed at {gamma:g}. Not a fair result."
            ),
        )
        return out
    last = test[-1]
    out = {k: last[k] for k in REPORTED if k in last}
    out.update(selection=selection, epoch=int(last["epoch"]))
    if selection == "val":
        out["selection_detail"] = (
            f"epoch {last['epoch']} and γ={last['gamma']:.3f} chosen on the validation classes "
            "(xlsa17 protocol), then retrained on trainval"
        )
    else:
        out["selection_detail"] = (
            f"final epoch ({last['epoch']}), no selection; γ fixed at {last['gamma']:g}"
        )
    return out
