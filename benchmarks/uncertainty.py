"""Issue 18's evidence: does the reported opinion answer "is this decision wrong?" (confidence)
and "is this class new?" (p_unseen)? Full CREST under `val` (epoch, γ, μ chosen on validation
classes, retrained on trainval), over seeds, on the default world and on --like CUB / AWA2 / SUN
worlds at 2048-d features (the worlds and epochs of `branches_uncertainty.py`).

For every run it scores, on the test split with the run's γ:
* the reported opinion fitted on validation (`eval.opinion=validation`; the error model off, as
  by default), the same with the error model (`eval.error_model=true`), and the fixed opinion
  (T = 1, no level) for reference;
* the paper's vacuity and the plain softmax confidence (references);
* `--max-risk 0.1`: the threshold chosen on validation, and the error rate and coverage it gives
  on test (item 4);
* the uncertainty-driven decision (item 5): a gate on p_unseen, its threshold chosen on
  validation, against calibrated stacking at the validated γ, on validation and on test;
* the open world (item 6): half of the unseen classes left out of the class list; does vacuity,
  p_unseen or 1 − confidence flag the images of the classes in no list?

    python benchmarks/uncertainty.py --worlds default CUB AWA2 SUN   # trains what is missing
    python benchmarks/uncertainty.py --report-only                   # tables from finished runs

Runs are those of `branches_uncertainty.py --rows full` (resumable); the opinion is fitted here
with the same function the trainer uses (`crest.engine.opinion_fit`), so runs trained before the
opinion existed are scored exactly as a new run reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from branches_uncertainty import CAPS, EPOCHS, SEEDS, world_file, write_keeping_findings
from crest.atomic import write_text_atomic
from crest.calibration import auroc
from crest.config import load_config
from crest.data.schema.benchmark import validation_protocol
from crest.engine.checkpoint import load_checkpoint, load_model
from crest.engine.evaluate import Outputs, collect_outputs, play_outputs, uncertainty_metrics
from crest.engine.opinion_fit import fit_from_outputs
from crest.experiments import ablate
from crest.metrics import Key, gzsl, harmonic_mean, per_class_accuracy
from crest.models import create_model
from crest.opinion import ADOPT_MARGIN, OpinionSettings, abstention_threshold, report

WORLDS = ("default", "CUB", "AWA2", "SUN")


def outputs(model: Any, path: Path, rows: np.ndarray, labels: np.ndarray, classes: Any) -> Outputs:
    return collect_outputs(model, path, rows, labels, torch.device("cpu"), classes=classes)


def gated_h(
    joined: Any,
    gamma: float,
    settings: OpinionSettings,
    seen: np.ndarray,
    unseen: np.ndarray,
    threshold: float,
) -> float:
    """H of the decision 'unseen when p_unseen > threshold, then the best class of that part'."""
    rep = report(joined.scores, joined.unseen_column, gamma, settings)
    play = np.concatenate([seen, unseen])
    s = joined.scores.copy()
    go_unseen = rep.p_unseen > threshold
    s[np.ix_(go_unseen, ~joined.unseen_column)] = -np.inf
    s[np.ix_(~go_unseen, joined.unseen_column)] = -np.inf
    pred = play[s.argmax(axis=1)]
    labels = play[joined.target]
    img_u = joined.is_unseen_image
    acc_s = per_class_accuracy(labels[~img_u], pred[~img_u], seen)
    acc_u = per_class_accuracy(labels[img_u], pred[img_u], unseen)
    return harmonic_mean(acc_s, acc_u)


def best_gate(
    joined: Any, gamma: float, settings: OpinionSettings, seen: Any, unseen: Any
) -> tuple[float, float]:
    """(threshold, H) of the best gate over a grid of p_unseen thresholds."""
    grid = np.linspace(0.02, 0.98, 49)
    hs = [gated_h(joined, gamma, settings, seen, unseen, t) for t in grid]
    k = int(np.argmax(hs))
    return float(grid[k]), float(hs[k])


def stacking_h(joined: Any, gamma: float, seen: np.ndarray, unseen: np.ndarray) -> float:
    play = np.concatenate([seen, unseen])
    full = np.full((len(joined.scores), int(play.max()) + 1), -np.inf)
    full[:, play] = joined.scores
    labels = play[joined.target]
    img_u = joined.is_unseen_image
    return gzsl(
        full[~img_u], labels[~img_u], full[img_u], labels[img_u], seen, unseen, gamma
    ).harmonic


def open_world(joined: Any, gamma: float, settings: OpinionSettings, seed: int) -> dict[str, float]:
    """Half of the unseen classes (drawn) left out of the class list: AUROC of each signal for
    telling the images of the left-out classes from the images of the listed ones."""
    rng = np.random.default_rng(seed)
    unseen_cols = np.flatnonzero(joined.unseen_column)
    out_cols = rng.choice(unseen_cols, size=len(unseen_cols) // 2, replace=False)
    listed = np.setdiff1d(np.arange(joined.scores.shape[1]), out_cols)
    novel = np.isin(joined.target, out_cols)
    scores = joined.scores[:, listed]
    mask = joined.unseen_column[listed]
    rep = report(scores, mask, gamma, settings)
    alpha = joined.alpha[:, listed]
    vacuity = len(listed) / alpha.sum(axis=1)
    return {
        "open_vacuity": auroc(vacuity, novel),
        "open_p_unseen": auroc(rep.p_unseen, novel),
        "open_1-confidence": auroc(-rep.projected, novel),
    }


def max_risk_on_test(
    fitted: OpinionSettings, confidence: np.ndarray, correct: np.ndarray, max_risk: float
) -> dict[str, float]:
    """What `crest predict --max-risk` does on the test images (threshold, coverage, error),
    and what the validation threshold alone would have done (``*_val_only``)."""
    out = {}
    for suffix, guard in (("", True), ("_val_only", False)):
        t, _ = abstention_threshold(fitted, confidence, max_risk, guard=guard)
        accepted = confidence >= t
        out |= {
            f"threshold{suffix}": t,
            f"coverage{suffix}": float(accepted.mean()),
            f"error{suffix}": float((~correct[accepted]).mean())
            if accepted.any()
            else float("nan"),
        }
    return out


def score_run(folder: Path) -> dict[str, Any]:
    """Every number of the tables for one finished run folder (cached in `uncertainty.json`)."""
    cache = folder / "uncertainty.json"
    if cache.exists():
        result = json.loads(cache.read_text())
        # the abstention rule is cheap to re-apply to the saved confidences: always the current one
        arrays = np.load(folder / "uncertainty_arrays.npz")
        saved = OpinionSettings(
            val_confidence=tuple(arrays["val_confidence"]),
            val_correct=tuple(bool(c) for c in arrays["val_correct"]),
        )
        result["max_risk_0.1"] = max_risk_on_test(
            saved, arrays["test_confidence"], arrays["test_correct"], 0.1
        )
        return result
    last = folder / "checkpoints" / "last.pt"
    restored = load_model(last, device="cpu", images=True)
    bench, path, cfg = restored.bench, restored.data_path, restored.cfg
    sel = restored.state["selection_state"]
    gamma, mu = float(sel["val_gamma"]), sel.get("val_mu")
    # the validation phase's chosen model, on the validation protocol
    val_model = create_model(cfg, bench)
    val_model.load_state_dict(load_checkpoint(folder / "checkpoints" / "best_val.pt")["model"])
    val_model.eval()
    p = validation_protocol(bench, seed=cfg.train.seed)
    vplay = np.concatenate([p.seen_classes, p.unseen_classes])
    v_seen = outputs(val_model, path, p.val_seen, bench.labels, vplay)
    v_unseen = outputs(val_model, path, p.val_unseen, bench.labels, vplay)
    # what a run reports (eval.error_model=false, the default), and with the error model
    fitted = fit_from_outputs(
        v_seen, v_unseen, p.seen_classes, p.unseen_classes, gamma, mu, error_model=False
    )
    with_model = fit_from_outputs(v_seen, v_unseen, p.seen_classes, p.unseen_classes, gamma, mu)
    fixed = OpinionSettings()
    # the final model on test
    t_seen = outputs(restored.model, path, bench.splits["test_seen"], bench.labels, None)
    t_unseen = outputs(restored.model, path, bench.splits["test_unseen"], bench.labels, None)
    seen, unseen = bench.seen_classes, bench.unseen_classes
    result: dict[str, Any] = {"gamma": gamma, "mu": mu}
    result["temperature"], result["level"] = fitted.temperature, fitted.level
    result["fit"] = with_model.fit  # holds the error model's cross-validated AUROC too
    for name, settings in (("fitted", fitted), ("error_model", with_model), ("fixed", fixed)):
        scalars, _ = uncertainty_metrics(t_seen, t_unseen, seen, unseen, gamma, settings)
        result[name] = scalars
    g = gzsl(t_seen.logits, t_seen.labels, t_unseen.logits, t_unseen.labels, seen, unseen, gamma)
    result["czsl"] = restored.state["history"][-1][Key.CZSL]
    result["h"] = g.harmonic
    # --max-risk 0.1: threshold from the validation decisions, applied on test
    test_joined = play_outputs(t_seen, t_unseen, seen, unseen)
    rep = report(
        test_joined.scores,
        test_joined.unseen_column,
        gamma,
        fitted,
        test_joined.branch_scores,
        test_joined.vacuity,
    )
    correct = rep.decision == test_joined.target
    np.savez_compressed(
        folder / "uncertainty_arrays.npz",
        test_confidence=rep.confidence,
        test_correct=correct,
        test_p_unseen=rep.p_unseen,
        test_is_unseen=test_joined.is_unseen_image,
        val_confidence=np.asarray(fitted.val_confidence),
        val_correct=np.asarray(fitted.val_correct),
    )
    result["max_risk_0.1"] = max_risk_on_test(fitted, rep.confidence, correct, 0.1)
    # item 5: the gate against calibrated stacking, chosen on validation
    val_joined = play_outputs(v_seen, v_unseen, p.seen_classes, p.unseen_classes, mu)
    threshold, val_gate = best_gate(val_joined, gamma, fitted, p.seen_classes, p.unseen_classes)
    result["decision"] = {
        "val_stacking_h": stacking_h(val_joined, gamma, p.seen_classes, p.unseen_classes),
        "val_gate_h": val_gate,
        "gate_threshold": threshold,
        "test_stacking_h": g.harmonic,
        "test_gate_h": gated_h(test_joined, gamma, fitted, seen, unseen, threshold),
    }
    result["open_world"] = open_world(test_joined, gamma, fitted, cfg.train.seed)
    write_text_atomic(cache, json.dumps(result, indent=2))
    return result


def _pct_or_none(v: float) -> str:
    return "none answered" if v != v else f"{100 * v:.1f} %"


def _ms(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    values = [v * scale for v in values if v == v]
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def _adopted(fit: dict[str, float]) -> bool:
    """Whether validation adopted the error model (crest.opinion.fit_error_model's rule)."""
    if "auroc_error_model" not in fit:
        return False
    return fit["auroc_error_model"] >= fit["auroc_confidence"] + ADOPT_MARGIN


def world_section(name: str, results: list[dict[str, Any]]) -> str:
    shape = (
        "embedded default world (128-d features)"
        if name == "default"
        else f"real {name} class side, synthetic 2048-d features on a 7×7 grid, cap {CAPS[name]} images per class"
    )
    lines = [
        f"## {name} ({len(results)} seeds)",
        "",
        f"{shape}; config `synthetic`, {EPOCHS[name]} epochs; selection `val`; test split. Mean ± std over seeds.",
        "",
        "| signal | AUROC wrong vs right | ECE | AUROC unseen vs seen | ECE of p_unseen |",
        "|---|---|---|---|---|",
    ]
    rows = [
        (
            "confidence, p_unseen (reported: T, b fitted on validation)",
            "fitted",
            Key.AUROC_ERROR,
            Key.AUROC_UNSEEN,
        ),
        (
            "with the error model where validation adopts it (`eval.error_model=true`)",
            "error_model",
            Key.AUROC_ERROR,
            Key.AUROC_UNSEEN,
        ),
        (
            "fixed opinion (T = 1, no level; runs without validation)",
            "fixed",
            Key.AUROC_ERROR,
            Key.AUROC_UNSEEN,
        ),
    ]
    for label, key, err, uns in rows:
        r = [x[key] for x in results]
        lines.append(
            f"| {label} | {_ms([m[err] for m in r])} | {_ms([m[Key.ECE] for m in r], 100, 1)} % "
            f"| {_ms([m[uns] for m in r])} | {_ms([m[Key.ECE_P_UNSEEN] for m in r], 100, 1)} % |"
        )
    r = [x["fitted"] for x in results]
    lines.append(
        f"| softmax decision probability (reference) | {_ms([m[Key.AUROC_ERROR_SOFTMAX] for m in r])} "
        f"| {_ms([m[Key.ECE_SOFTMAX] for m in r], 100, 1)} % | – | – |"
    )
    lines.append(
        f"| paper's vacuity u = K/S (reference) | {_ms([m[Key.AUROC_ERROR_VACUITY] for m in r])} | – "
        f"| {_ms([m[Key.AUROC_UNSEEN_VACUITY] for m in r])} | – |"
    )
    fits = "; ".join(
        f"T {x['temperature']:.2f}, "
        + ("no level" if x["level"] is None else f"b {x['level']:.2f}")
        + (", error model adopted" if _adopted(x["fit"]) else ", error model not adopted")
        + (
            f" (val CV AUROC {x['fit'].get('auroc_error_model', float('nan')):.3f} vs "
            f"{x['fit'].get('auroc_confidence', float('nan')):.3f})"
        )
        for x in results
    )
    risk = [x["max_risk_0.1"] for x in results]
    dec = [x["decision"] for x in results]
    ow = [x["open_world"] for x in results]
    lines += [
        "",
        f"Fitted per seed: {fits}.",
        "",
        f"H {_ms([x['h'] for x in results], 100, 1)}, CZSL {_ms([x['czsl'] for x in results], 100, 1)} "
        "(unchanged by the opinion: it reads the scores, it does not move them).",
        "",
        "`--max-risk 0.1` (crest predict's rule: the validation bound, never below the inputs' own "
        f"threshold): error rate of the accepted test decisions {_ms([x['error'] for x in risk], 100, 1)} % "
        f"(per seed: {', '.join(_pct_or_none(x['error']) for x in risk)}), coverage "
        f"{_ms([x['coverage'] for x in risk], 100, 1)} %. The validation bound alone: error "
        f"{_ms([x['error_val_only'] for x in risk], 100, 1)} % (per seed: "
        f"{', '.join(_pct_or_none(x['error_val_only']) for x in risk)}), coverage "
        f"{_ms([x['coverage_val_only'] for x in risk], 100, 1)} %.",
        "",
        "| decision (item 5) | validation H | test H |",
        "|---|---|---|",
        f"| calibrated stacking at the validated γ | {_ms([d['val_stacking_h'] for d in dec], 100, 1)} "
        f"| {_ms([d['test_stacking_h'] for d in dec], 100, 1)} |",
        f"| gate on p_unseen (threshold chosen on validation) | {_ms([d['val_gate_h'] for d in dec], 100, 1)} "
        f"| {_ms([d['test_gate_h'] for d in dec], 100, 1)} |",
        "",
        "Open world (item 6), half of the unseen classes in no list, AUROC for their images against "
        f"the listed classes' images: vacuity {_ms([o['open_vacuity'] for o in ow])}, "
        f"p_unseen {_ms([o['open_p_unseen'] for o in ow])}, "
        f"1 − projected confidence {_ms([o['open_1-confidence'] for o in ow])}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--worlds", nargs="*", default=list(WORLDS))
    p.add_argument("--out", type=Path, default=Path("runs/unc"))
    p.add_argument("--table", type=Path, default=Path("benchmarks/results/uncertainty.md"))
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--threads", type=int)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    start = time.time()
    sections = []
    for name in WORLDS:
        if name not in args.worlds and not args.report_only:
            continue
        if not args.report_only:
            path = world_file(name)
            cfg = load_config(
                "synthetic",
                [f"data.path={path}", f"train.epochs={EPOCHS[name]}", "train.selection=val"],
            )
            ablate(cfg, args.out / name.lower(), rows=["full"], seeds=SEEDS[name])
        folders = [args.out / name.lower() / "full" / f"seed{s}" for s in SEEDS[name]]
        done = [f for f in folders if (f / "metrics.json").exists()]
        if not done:
            continue
        results = [score_run(f) for f in done]
        sections.append(world_section(name, results))
        logging.info("%s scored after %.1f min", name, (time.time() - start) / 60)
    text = "# The reported opinion: confidence and p_unseen against the paper's vacuity\n\n"
    write_keeping_findings(args.table, text + "\n".join(sections))


if __name__ == "__main__":
    main()
