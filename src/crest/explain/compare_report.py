"""The report of `crest compare`: a Table-1-shaped table (val, and labelled test-oracle), the
epochs each model needs, one seen–unseen curve per model and H over epochs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crest.atomic import write_text_atomic
from crest.compare import CompareRun, epochs_to_reach, h_over_epochs, table_rows
from crest.engine.checkpoint import load_model
from crest.engine.evaluate import collect_outputs
from crest.explain import figures
from crest.markdown import md_table
from crest.metrics import Key, seen_unseen_curve
from crest.run_folder import RunFolder

HEADER = [
    "model",
    "selection",
    "seeds",
    "CZSL",
    "U",
    "S",
    "H",
    "AUSUC",
    "parameters",
    "s / epoch",
    "stopped at epoch",
]


def test_curve(folder: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(S, U, AUSUC) of a finished run's reported model on the test split."""
    run = RunFolder(folder)
    selection = str(run.read_metrics().get("selection", "final"))
    r = load_model(run.reported_checkpoint(selection), images=True)
    assert r.data_path is not None
    b = r.bench
    seen, unseen = (
        collect_outputs(
            r.model, r.data_path, b.splits[s], b.labels, r.device, r.cfg.eval.batch_size
        )
        for s in ("test_seen", "test_unseen")
    )
    curve = seen_unseen_curve(
        seen.logits, seen.labels, unseen.logits, unseen.labels, b.seen_classes, b.unseen_classes
    )
    return curve.seen, curve.unseen, curve.ausuc


#: how the models' configs were chosen, unless the caller says otherwise (tuned configs)
RECIPES = "Each model trained with its authors' recipe for this dataset (docs/peers.md)"


def write_compare_report(
    out: Path, runs: list[CompareRun], config: str, configs: str = RECIPES
) -> Path:
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    text = [
        f"# Region-based ZSL compared on one file (`{config}`)",
        "",
        f"{configs}, on the same "
        "benchmark file, over the same seeds. **val**: epoch and γ chosen on the validation "
        "classes, then retrained on trainval and scored once on test: the fair numbers. "
        "**test-oracle**: the best test epoch for H (and separately for CZSL) at a fixed γ, as the "
        "peers' released code reports; shown only to measure how much best-on-test selection "
        "inflates each method.",
        "",
        md_table(HEADER, table_rows(runs)),
        "",
        "Accuracies in %, mean ± std over seeds; parameters: trainable; s / epoch: mean wall time "
        "of a final-phase training epoch on the machine that ran it; stopped at epoch: per seed, "
        "the last epoch of the validation phase (`val`) or of the training on trainval "
        "(`test-oracle`), below the budget where `train.patience` stopped it.",
    ]
    inflation = []
    for model in dict.fromkeys(r.model for r in runs):
        by = {
            s: [r.metrics[Key.H] for r in runs if r.model == model and r.selection == s]
            for s in ("val", "test-oracle")
        }
        if by["val"] and by["test-oracle"]:
            gap = 100 * (float(np.mean(by["test-oracle"])) - float(np.mean(by["val"])))
            inflation.append([model, f"{gap:+.1f}"])
    if inflation:
        text += [
            "",
            "## What best-on-test selection adds to H",
            "",
            md_table(["model", "H points"], inflation),
        ]
    curves = h_over_epochs(runs)
    if curves:
        path = figures.h_over_epochs(
            fig_dir / "h_over_epochs.png",
            curves,
            "test-oracle runs: trainval, test evaluated every epoch (mean over seeds)",
        )
        reach = [
            [m, str(len(c)), f"{100 * c[-1]:.1f}", str(epochs_to_reach(c))]
            for m, c in curves.items()
        ]
        text += [
            "",
            "## Convergence",
            "",
            md_table(["model", "epochs", "final H", "epochs to 95 % of final H"], reach),
            "",
            f"![H over epochs]({path.relative_to(out)})",
        ]
    firsts = {}
    for r in runs:
        if r.selection == "val" and r.model not in firsts:
            firsts[r.model] = r.folder
    if firsts:
        path = figures.compare_curves(
            fig_dir / "seen_unseen.png", {m: test_curve(f) for m, f in firsts.items()}
        )
        text += [
            "",
            "## Seen–unseen curves",
            "",
            f"One `val` run per model (its first seed), on the test split: ![seen–unseen]({path.relative_to(out)})",
        ]
    text += ["", "## Runs", ""] + [
        f"- {r.model} {r.selection} seed {r.seed}: `{r.folder.relative_to(out)}`" for r in runs
    ]
    report = out / RunFolder.REPORT
    write_text_atomic(report, "\n".join(text) + "\n")
    write_text_atomic(out / "table.md", md_table(HEADER, table_rows(runs)) + "\n")
    return report
