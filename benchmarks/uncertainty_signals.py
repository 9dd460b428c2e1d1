"""Which per-image signal of a trained CREST model flags wrong GZSL decisions and unseen-class
images? The fused Dirichlet u = K/S (the paper's) against other evidence functions and against
the decision's own softmax, on the final models of `branches_uncertainty.py` (test split, the
run's validation-chosen γ and μ).

    python benchmarks/uncertainty_signals.py                 # every world with finished runs
    python benchmarks/uncertainty_signals.py --worlds default CUB

Diagnosis only: it reads test outputs of finished runs and chooses nothing.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from crest.atomic import write_text_atomic
from crest.calibration import auroc
from crest.engine.checkpoint import load_model, selected_gamma
from crest.engine.evaluate import collect_outputs, decision_probability
from crest.evidential import conflict_degree, evidence_from_logits

Signal = Callable[[dict[str, np.ndarray]], np.ndarray]


def _lse(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _conflict(o: dict[str, np.ndarray]) -> np.ndarray:
    a_v = evidence_from_logits(torch.as_tensor(o["vgt"])) + 1.0
    a_a = evidence_from_logits(torch.as_tensor(o["agt"])) + 1.0
    return conflict_degree(a_v, a_a).numpy()


#: name: (what it is, signal: higher = less trustworthy)
SIGNALS: dict[str, tuple[str, Signal]] = {
    "fused u (paper)": (
        "u = K/S of the fused Dirichlet, evidence softplus(s) per branch",
        lambda o: o["u"],
    ),
    "u, exp evidence": (
        "u = K/S with evidence exp(s) (monotone in −logsumexp s)",
        lambda o: -_lse(o["s"]),
    ),
    "u, centred evidence": (
        "u = K/S with evidence softplus(s − mean_c s)",
        lambda o: 1.0 / (1.0 + _softplus(o["s"] - o["s"].mean(1, keepdims=True)).mean(1)),
    ),
    "conflict c": (
        "Eq. 8–10 conflict between the VGT and AGT opinions",
        _conflict,
    ),
    "1 − confidence": (
        "1 − max softmax(s + γ·1[unseen]), the reported decision's probability",
        lambda o: 1.0 - o["p"].max(1),
    ),
    "−margin": (
        "−(top-1 − top-2) of s + γ·1[unseen]",
        lambda o: -np.diff(np.sort(o["sg"], axis=1)[:, -2:], axis=1)[:, 0],
    ),
}


def signals_of_run(run: Path) -> dict[str, tuple[float, float]]:
    """AUROC (wrong vs right, unseen vs seen) of every signal for one finished run."""
    r = load_model(run / "checkpoints" / "last.pt", device="cpu", images=True)
    b, dev = r.bench, torch.device("cpu")
    gamma = selected_gamma(r.state, r.cfg)
    seen, unseen = b.seen_classes, b.unseen_classes
    outs = [
        collect_outputs(r.model, r.data_path, b.splits[s], b.labels, dev)
        for s in ("test_seen", "test_unseen")
    ]
    play = np.concatenate([seen, unseen])
    s = np.concatenate([o.logits for o in outs])[:, play]
    p = decision_probability(s, gamma, len(seen))
    sg = s.copy()
    sg[:, len(seen) :] += gamma
    labels = np.concatenate([o.labels for o in outs])
    wrong = play[p.argmax(1)] != labels
    is_unseen = np.r_[np.zeros(len(outs[0].labels), bool), np.ones(len(outs[1].labels), bool)]
    o = {
        "s": s,
        "sg": sg,
        "p": p,
        "u": np.concatenate([x.vacuity for x in outs]),
        "vgt": np.concatenate([x.branch_logits["vgt"] for x in outs])[:, play],
        "agt": np.concatenate([x.branch_logits["agt"] for x in outs])[:, play],
    }
    result = {}
    for name, (_, fn) in SIGNALS.items():
        value = fn(o)
        result[name] = (auroc(value, wrong), auroc(value, is_unseen))
    return result


def _ms(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=Path, default=Path("runs/branches"))
    p.add_argument("--worlds", nargs="*", default=["default", "CUB", "SUN", "AWA2"])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/uncertainty_signals.md"))
    args = p.parse_args()
    torch.set_num_threads(2)
    lines = [
        "# Which signal flags wrong decisions and unseen-class images?",
        "",
        "Final full-CREST models of `benchmarks/branches_uncertainty.py` (selection `val`), test "
        "split, the run's γ and μ. AUROC, mean ± std over seeds; 0.5 = no better than chance; "
        "targets of issue 11: ≥ 0.75 wrong vs right, ≥ 0.70 unseen vs seen.",
        "",
        "| signal | what it is |",
        "|---|---|",
        *[f"| {k} | {v[0]} |" for k, v in SIGNALS.items()],
    ]
    for world in args.worlds:
        runs = sorted((args.runs / world.lower() / "full").glob("seed*"))
        runs = [r for r in runs if (r / "metrics.json").exists()]
        if not runs:
            continue
        per_run = [signals_of_run(r) for r in runs]
        lines += [
            "",
            f"## {world} ({len(runs)} seeds)",
            "",
            "| signal | AUROC wrong vs right | AUROC unseen vs seen |",
            "|---|---|---|",
        ]
        for name in SIGNALS:
            err = [r[name][0] for r in per_run]
            uns = [r[name][1] for r in per_run]
            lines.append(f"| {name} | {_ms(err)} | {_ms(uns)} |")
        print("\n".join(lines[-len(SIGNALS) - 4 :]), flush=True)
    write_text_atomic(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
