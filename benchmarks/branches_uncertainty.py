"""Issue 11's evidence: does fusing the two grounding directions beat either alone, and can its
uncertainty be trusted? Full CREST, w/o AGT and w/o VGT under honest selection (`val`: epoch, γ
and μ chosen on the validation classes, then retrained on trainval), over seeds, on the default
world and on --like CUB / SUN / AWA2 worlds at 2048-d features (7×7 grid, float16, an image cap).

    python benchmarks/branches_uncertainty.py --worlds default          # 5 seeds
    python benchmarks/branches_uncertainty.py --worlds CUB SUN AWA2     # 3 seeds each
    python benchmarks/branches_uncertainty.py --report-only             # tables from finished runs

Resumable (a finished run is not repeated); each world's table is written as soon as it is done.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from crest.atomic import write_text_atomic
from crest.config import load_config
from crest.data.synthetic.generator import WorldSpec
from crest.data.synthetic.worlds import build_world, default_world
from crest.experiments import RunResult, ablate, summary_table
from crest.metrics import Key

ROWS = ["full", "no_agt", "no_vgt"]
#: the heading of the hand-written part of the result file, kept when the tables are rewritten
FINDINGS = "## Findings"
#: images per class, per --like world (SUN has 717 classes)
CAPS = {"CUB": 16, "SUN": 4, "AWA2": 40}
SEEDS = {"default": [0, 1, 2, 3, 4], "CUB": [0, 1, 2], "SUN": [0, 1, 2], "AWA2": [0, 1, 2]}
EPOCHS = {"default": 15, "CUB": 12, "SUN": 12, "AWA2": 12}


def write_keeping_findings(table: Path, text: str) -> None:
    """Write a result file's tables; its hand-written findings (from FINDINGS on) survive."""
    old = table.read_text() if table.exists() else ""
    if FINDINGS in old:
        text = text.rstrip() + "\n\n" + old[old.index(FINDINGS) :]
    write_text_atomic(table, text)
    print(text)


def world_file(name: str) -> Path:
    if name == "default":
        return default_world()
    spec = WorldSpec(image_cap=CAPS[name], parts=8, feature_dim=2048, dtype="float16")
    return build_world(spec, like=name)


def load_results(out: Path, name: str) -> list[RunResult]:
    results = []
    for row in ROWS:
        for seed in SEEDS[name]:
            folder = out / name.lower() / row / f"seed{seed}"
            if (folder / "metrics.json").exists():
                metrics = json.loads((folder / "metrics.json").read_text())
                results.append(RunResult(row, seed, folder, metrics))
    return results


def history(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def _ms(values: list[float]) -> str:
    values = [float(v) for v in values if v == v]  # NaN: a key this run's release did not write
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def _vacuity_auroc(metrics: dict[str, Any], what: str) -> float:
    """AUROC of the fused vacuity; runs of earlier releases stored it as auroc_error/_unseen."""
    new = Key.AUROC_ERROR_VACUITY if what == "error" else Key.AUROC_UNSEEN_VACUITY
    return float(metrics[new] if new in metrics else metrics[f"auroc_{what}"])


def _softmax_auroc(metrics: dict[str, Any]) -> float:
    return float(metrics.get(Key.AUROC_ERROR_SOFTMAX, metrics.get("auroc_error_confidence")))


def uncertainty_table(results: list[RunResult]) -> str:
    """Per row: mean fused u (test, final phase) at epoch 3 and at the last epoch, the AUROCs,
    ECE of the decision probability and AURC, mean ± std over seeds."""
    lines = [
        "| row | u at epoch 3 | u at last epoch | AUROC wrong vs right | AUROC unseen vs seen "
        "| ECE (decision prob.) | AURC | ref: AUROC wrong vs right of 1 − confidence "
        "| ref: AUROC unseen vs seen of seen-only u |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        group = [r for r in results if r.label == row]
        if not group:
            continue
        u3, ul = [], []
        for r in group:
            final = [e for e in history(r.folder) if e["phase"] == "final" and "czsl_acc" in e]
            mean_u = [
                (Key.read(e, Key.VACUITY_SEEN) + Key.read(e, Key.VACUITY_UNSEEN)) / 2 for e in final
            ]
            if len(mean_u) >= 3:
                u3.append(mean_u[2])
            ul.append(mean_u[-1])
        cells = [
            _ms(u3),
            _ms(ul),
            _ms([_vacuity_auroc(r.metrics, "error") for r in group]),
            _ms([_vacuity_auroc(r.metrics, "unseen") for r in group]),
            _ms([100 * r.metrics.get(Key.ECE_SOFTMAX, r.metrics["ece"]) for r in group]),
            _ms([100 * r.metrics["aurc"] for r in group]),
            _ms([_softmax_auroc(r.metrics) for r in group]),
            _ms([r.metrics.get("auroc_unseen_seen_only_u", float("nan")) for r in group]),
        ]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def choices(results: list[RunResult]) -> str:
    """What validation chose for each full-model run (epoch, γ, μ)."""
    parts = []
    for r in results:
        if r.label != "full":
            continue
        sel = json.loads((r.folder / "val_selection.json").read_text())
        mu = "–" if sel.get("val_mu") is None else f"{sel['val_mu']:g}"
        parts.append(
            f"seed {r.seed}: epoch {sel['val_epoch']}, γ {sel['val_gamma']:.2f}, μ {mu} "
            f"(val H {100 * sel['val_h']:.1f})"
        )
    return "; ".join(parts)


def world_section(out: Path, name: str) -> str:
    results = load_results(out, name)
    if not results:
        return ""
    title = "default world" if name == "default" else f"--like {name} world"
    shape = (
        "embedded default world (128-d features)"
        if name == "default"
        else f"real {name} class side, synthetic 2048-d features on a 7×7 grid, cap {CAPS[name]} images per class"
    )
    return "\n".join(
        [
            f"## {title}",
            "",
            f"{shape}; config `synthetic`, up to {EPOCHS[name]} epochs; selection `val` (epoch, γ and, "
            "for the full model, μ chosen on the validation classes, then retrained on trainval). "
            "Accuracies in %, mean ± std over training seeds.",
            "",
            summary_table(results),
            "Uncertainty (fused u = K/S over the classes in play; test split):",
            "",
            uncertainty_table(results),
            f"Validation's choices for the full model: {choices(results)}.",
            "",
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--worlds", nargs="*", default=["default", "CUB", "SUN", "AWA2"])
    p.add_argument("--out", type=Path, default=Path("runs/branches"))
    p.add_argument("--table", type=Path, default=Path("benchmarks/results/branches_uncertainty.md"))
    p.add_argument("--rows", nargs="*", help=f"a subset of {ROWS} (to split a world over workers)")
    p.add_argument("--seeds", type=int, nargs="*", help="a subset of the world's seeds")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--threads", type=int, help="torch threads (two workers side by side: 1 each)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    start = time.time()
    if not args.report_only:
        for name in args.worlds:
            path = world_file(name)
            cfg = load_config(
                "synthetic",
                [
                    f"data.path={path}",
                    f"train.epochs={EPOCHS[name]}",
                    "train.selection=val",
                    "train.test_curve=true",  # u at epoch 3 of the final phase is a column
                ],
            )
            ablate(
                cfg,
                args.out / name.lower(),
                rows=args.rows or ROWS,
                seeds=args.seeds or SEEDS[name],
            )
            logging.info("%s done after %.1f min", name, (time.time() - start) / 60)
    sections = [world_section(args.out, n) for n in ("default", "CUB", "SUN", "AWA2")]
    text = "# Both grounding directions against each alone, and the uncertainty\n\n"
    write_keeping_findings(args.table, text + "\n".join(s for s in sections if s))


if __name__ == "__main__":
    main()
