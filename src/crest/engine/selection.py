"""Model selection (docs/method.md §4): turn a run's history into the numbers it reports, labelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crest.metrics import Key

REPORTED = (
    Key.CZSL,
    Key.U,
    Key.S,
    Key.H,
    Key.GAMMA,
    Key.AUSUC,
    Key.BEST_GAMMA,  # of the evaluated split's seen–unseen curve: diagnosis, never used to select
    Key.BEST_H,
    Key.CONFIDENCE,
    Key.ECE,
    Key.AUROC_ERROR,
    Key.AUROC_UNSEEN,
    Key.ECE_P_UNSEEN,
    Key.P_UNSEEN_SEEN,
    Key.P_UNSEEN_UNSEEN,
    Key.AURC,
    Key.COVERAGE_AUC,
    Key.AUROC_ERROR_VACUITY,
    Key.AUROC_UNSEEN_VACUITY,
    Key.AUROC_ERROR_SOFTMAX,
    Key.ECE_SOFTMAX,
    Key.ECE_DIRICHLET,
    Key.VACUITY_SEEN,
    Key.VACUITY_UNSEEN,
    "branches",
)


Score = Callable[[dict[str, Any]], float]


def val_score(entry: dict[str, Any]) -> float:
    """Validation H of an epoch as selection scores it: the best over γ and, where the entry
    carries a ``mu_curve`` (``train.select_mu``), over μ too."""
    curve = entry.get("mu_curve")
    if curve:
        return float(max(point[Key.BEST_H] for point in curve))
    return float(entry[Key.BEST_H])


def oracle_score(metric: str) -> Score:
    """The test metric ``test-oracle`` picks an epoch by ("h" or "czsl")."""
    key = {"h": Key.H, "czsl": Key.CZSL}[metric]
    return lambda entry: float(entry[key])


def best_entry(entries: list[dict[str, Any]], score: Score) -> dict[str, Any]:
    """The one selection rule: the highest score, ties to the earliest epoch."""
    return max(entries, key=lambda e: (score(e), -int(e["epoch"])))


def improves(entry: dict[str, Any], earlier: list[dict[str, Any]], score: Score) -> bool:
    """Whether ``entry`` becomes the selected epoch over ``earlier`` ones (:func:`best_entry`:
    strictly higher; a tie keeps the earlier epoch). What the kept checkpoints follow."""
    return not earlier or score(entry) > max(score(e) for e in earlier)


def epochs_without_improvement(history: list[dict[str, Any]], phase: str, score: Score) -> int:
    """Epochs of ``phase`` trained since its best evaluated epoch by ``score`` (the selection
    rule of :func:`best_entry`: a tie keeps the earlier epoch); 0 before any evaluation."""
    evaluated = _evaluated(history, phase)
    if not evaluated:
        return 0
    return epochs_trained(history)[phase] - int(best_entry(evaluated, score)["epoch"])


def epochs_trained(history: list[dict[str, Any]]) -> dict[str, int]:
    """The last epoch each phase trained ("val", "final"): below the budget where
    ``train.patience`` stopped it."""
    out: dict[str, int] = {}
    for e in history:
        out[str(e["phase"])] = max(out.get(str(e["phase"]), 0), int(e["epoch"]))
    return out


def _evaluated(history: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    return [e for e in history if e.get("phase") == phase and Key.CZSL in e]


def choose_val_epoch(history: list[dict[str, Any]]) -> tuple[int, float, float]:
    """(epoch, γ, H) of the best validation H, γ being the best on that epoch's validation curve."""
    best = _best_val_entry(history)
    return int(best["epoch"]), float(best[Key.BEST_GAMMA]), float(best[Key.BEST_H])


def _best_val_entry(history: list[dict[str, Any]]) -> dict[str, Any]:
    entries = _evaluated(history, "val")
    if not entries:
        raise ValueError("no validation epochs in the history")
    return best_entry(entries, lambda e: float(e[Key.BEST_H]))


@dataclass(frozen=True)
class ValChoice:
    """What the validation protocol chose: epoch, γ and (with ``train.select_mu``) μ."""

    epoch: int
    gamma: float
    h: float  # validation H at that choice
    mu: float | None  # None: model.mu is kept
    czsl: float | None = None  # validation CZSL at that epoch (and μ)


def choose_val_setting(history: list[dict[str, Any]], mu: float) -> ValChoice:
    """The best validation H over epochs and, where the entries carry a ``mu_curve``, over μ.

    Ties go to the earlier epoch, then to the μ nearest the configured ``mu``.
    """
    entries = _evaluated(history, "val")
    if not entries:
        raise ValueError("no validation epochs in the history")
    if not all(e.get("mu_curve") for e in entries):
        e = _best_val_entry(history)
        return ValChoice(
            int(e["epoch"]),
            float(e[Key.BEST_GAMMA]),
            float(e[Key.BEST_H]),
            None,
            float(e[Key.CZSL]),
        )
    options = [(e["epoch"], point) for e in entries for point in e["mu_curve"]]
    epoch, best = max(options, key=lambda o: (o[1][Key.BEST_H], -o[0], -abs(o[1]["mu"] - mu)))
    czsl = best.get(Key.CZSL)  # absent from the μ curves of earlier releases
    return ValChoice(
        int(epoch),
        float(best[Key.BEST_GAMMA]),
        float(best[Key.BEST_H]),
        best["mu"],
        None if czsl is None else float(czsl),
    )


def validation_only_line(metrics: dict[str, Any]) -> str:
    """The scores of a ``train.validation_only`` run in one line (validation H, and CZSL where
    recorded), as the CLI and the run's report show them."""
    czsl = metrics.get("val_czsl")
    return f"validation H {100 * float(metrics['val_h']):.1f}" + (
        "" if czsl is None else f", validation CZSL {100 * float(czsl):.1f}"
    )


def final_metrics(
    history: list[dict[str, Any]], selection: str, gamma: float, mu: float | None = None
) -> dict[str, Any]:
    """The metrics.json of a finished run."""
    test = _evaluated(history, "final")
    if not test:
        raise ValueError("no evaluated epochs in the history")
    if selection == "test-oracle":
        by_h = best_entry(test, oracle_score("h"))
        by_czsl = best_entry(test, oracle_score("czsl"))
        out = {k: by_h[k] for k in REPORTED if k in by_h}
        out[Key.CZSL] = by_czsl[Key.CZSL]
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
        chosen = "epoch {}, γ={:.3f}{}".format(
            last["epoch"], last[Key.GAMMA], "" if mu is None else f" and μ={mu:g}"
        )
        out[Key.SELECTION_DETAIL] = (
            f"{chosen} chosen on the validation classes (xlsa17 protocol), then retrained on "
            "trainval"
        )
        if mu is not None:
            out["mu"] = mu
    else:
        out[Key.SELECTION_DETAIL] = (
            f"final epoch ({last['epoch']}), no selection; γ fixed at {last[Key.GAMMA]:g}"
        )
    return out
