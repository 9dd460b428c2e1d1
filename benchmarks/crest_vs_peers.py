"""Issue 23's evidence: where CREST loses to DAZLE and MSDN, one difference at a time.

Stage `attribution`: CREST's recipe and variants of it, each moving one thing towards the peers
(or switching off one of CREST's parts), beside DAZLE, MSDN and TransZero, all under the
validation protocol only (`train.validation_only`: trained on the training classes, epoch, γ and μ
chosen by H on the validation classes; no test split is read). Stage `protocol`: the full `val`
protocol (retrained on trainval, scored once on test) and, labelled, `test-oracle`, for the
ranking of the four models per world.

    python benchmarks/crest_vs_peers.py attribution --worlds default &
    python benchmarks/crest_vs_peers.py attribution --worlds default &
    python benchmarks/crest_vs_peers.py protocol --worlds CUB --labels crest dazle msdn
    python benchmarks/crest_vs_peers.py report          # tables from finished runs

Resumable: a finished run is not repeated. Processes started with the same arguments share the
grid: each claims the next job no live process holds (run them with OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import peers
from crest.atomic import write_text_atomic
from crest.compare import compare_config
from crest.config import load_config
from crest.data.synthetic.generator import WorldSpec
from crest.data.synthetic.worlds import build_world
from crest.experiments import run_once
from crest.markdown import md_table
from crest.metrics import Key
from crest.run_folder import RunFolder
from peers import CAPS, EPOCHS

SEEDS = [0, 1, 2]
PEERS = ["dazle", "msdn", "transzero"]

#: label → (what the row changes, relative to CREST's recipe for the world, and its overrides)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "crest": ("CREST as recommended (config `synthetic`)", []),
    "optimizer": (
        "the peers' optimizer: RMSprop, momentum 0.9, batch 50 (their `synthetic` recipes; "
        "lr 1e-3 and weight decay 1e-4 as CREST's)",
        ["train.optimizer=rmsprop", "train.momentum=0.9", "train.batch_size=50"],
    ),
    "optimizer_lr1e-4": (
        "the peers' optimizer at the rate of their real-data recipes: RMSprop, momentum 0.9, "
        "batch 50, lr 1e-4",
        ["train.optimizer=rmsprop", "train.momentum=0.9", "train.batch_size=50", "train.lr=0.0001"],
    ),
    "lambda_cal": (
        "λ_CAL 0.1, the peers' self-calibration weight (CREST: 0.2)",
        ["loss.lambda_cal=0.1"],
    ),
    "dropout0": (
        "no dropout in the grounding transformers (the peers have none)",
        ["model.dropout=0"],
    ),
    "no_vicl": ("without VICL", ["loss.use_vicl=false"]),
    "no_digs": ("without DIGS", ["loss.use_digs=false"]),
    "no_vicl_edl": ("without VICL and without EDL", ["loss.use_vicl=false", "loss.use_edl=false"]),
    "no_edl": ("without EDL (λ_EDL = 0: the peers' plain cross-entropy)", ["loss.use_edl=false"]),
    "paper_loss": (
        "without branch supervision (the paper's loss; crest's departure off)",
        ["loss.branch_supervision=0"],
    ),
    "raw_vectors": (
        "attribute word vectors not centred (as the peers and the paper)",
        ["model.center_attribute_vectors=false"],
    ),
    "vgt_only": (
        "VGT alone: attribute queries attending to regions, DAZLE's and MSDN's direction, "
        "without AGT",
        ["model.use_agt=false"],
    ),
    "agt_only": ("AGT alone", ["model.use_vgt=false"]),
    "previous": (
        "CREST's recipe before issue 28: the front's default bias, VGT's and AGT's default "
        "initial gains, batch 64 (docs/method.md §8.8)",
        [
            "model.front_init=default",
            "model.vgt_value_gain=1",
            "model.agt_gain=1",
            "train.batch_size=64",
        ],
    ),
    "warmup15": (
        "a 15-step linear learning-rate warm-up on top of the recipe",
        ["train.warmup_steps=15"],
    ),
    "zero_residual": (
        "every block's feed-forward and self-attention output layers start at zero "
        "(`model.residual_init=zero`)",
        ["model.residual_init=zero"],
    ),
    "zero_residual_b16": (
        "zero residual branches and batch 16 (twice the steps of an epoch)",
        ["model.residual_init=zero", "train.batch_size=16"],
    ),
    "fast_start": (
        "zero residual branches and at least 40 steps an epoch (`model.residual_init=zero`, "
        "`train.min_steps_per_epoch=40`; the batch shrinks only on small phases)",
        ["model.residual_init=zero", "train.min_steps_per_epoch=40"],
    ),
    "lr3e-4": (
        "Adam at lr 3e-4 (the recipe's 1e-3 was chosen on capped worlds of 15–31 steps an "
        "epoch; a real-scale epoch has about 220)",
        ["train.lr=0.0003"],
    ),
    "lr1e-4": ("Adam at lr 1e-4, the paper's rate", ["train.lr=0.0001"]),
    "ema": (
        "weights averaged over steps (`train.ema_decay=0.999`; AGT alone swings by up to 20 H "
        "between epochs at real scale)",
        ["train.ema_decay=0.999"],
    ),
    "optimizer_lr3e-4": (
        "MSDN's optimizer: RMSprop, momentum 0.9, batch 50, lr 3e-4 (its `synthetic` recipe)",
        ["train.optimizer=rmsprop", "train.momentum=0.9", "train.batch_size=50", "train.lr=0.0003"],
    ),
    "dropout04": ("dropout 0.4 (the recipe's 0.2 doubled)", ["model.dropout=0.4"]),
    "wd1e-3": ("weight decay 1e-3 (×10)", ["train.weight_decay=0.001"]),
    "wd0": (
        "no weight decay (a diagnosis of the late vacuity rise, not a difference from the peers)",
        ["train.weight_decay=0"],
    ),
    "edl_x10": (
        "λ_EDL 0.01 (×10) with the KL term annealed over 1 epoch",
        ["loss.lambda_edl=0.01", "loss.anneal_epochs=1"],
    ),
}


#: label → (what the row is, the peer, its overrides on top of its recipe): what lifts a peer
PEER_VARIANTS: dict[str, tuple[str, str, list[str]]] = {
    "msdn_no_distill": (
        "MSDN without its semantic distillation between the two sub-nets (λ_d = 0)",
        "msdn",
        ["msdn.lambda_distill=0"],
    ),
    "dazle_lr3e-4": (
        "DAZLE at MSDN's learning rate (RMSprop 3e-4 instead of 1e-3): MSDN's recipe without "
        "MSDN's structure",
        "dazle",
        ["train.lr=0.0003"],
    ),
    "dazle_lr1e-4": (
        "DAZLE at its authors' real-data rate (RMSprop 1e-4 instead of the `synthetic` 1e-3)",
        "dazle",
        ["train.lr=0.0001"],
    ),
    "dazle_ema": (
        "DAZLE with its weights averaged over steps (`train.ema_decay=0.999`), as CREST's `ema`",
        "dazle",
        ["train.ema_decay=0.999"],
    ),
    "msdn_ema": (
        "MSDN with its weights averaged over steps (`train.ema_decay=0.999`), as CREST's `ema`",
        "msdn",
        ["train.ema_decay=0.999"],
    ),
    "msdn_a2v_only": (
        "MSDN scored by its attribute→visual sub-net alone (w_a2v = 1; both still trained)",
        "msdn",
        ["msdn.w_a2v=1.0"],
    ),
}

#: generator options that are whole numbers (the others are floats)
INTEGER_OPTIONS = ("image_cap", "grid", "feature_dim", "parts")


def split_world(world: str) -> tuple[str, dict[str, float | None]]:
    """``CUB`` or ``CUB,noise=1.5,image_cap=48``: a like world with generator options changed;
    ``image_cap=none`` keeps every image of the real splits (the real per-class counts)."""
    name, *options = world.split(",")
    return name, {
        k: None if v.lower() == "none" else float(v) for k, v in (o.split("=") for o in options)
    }


def world_file(world: str) -> Path:
    name, options = split_world(world)
    if not options:
        return peers.world_file(name)
    fields: dict[str, Any] = {"image_cap": CAPS[name], "parts": 8}
    fields.update(
        {k: int(v) if k in INTEGER_OPTIONS and v is not None else v for k, v in options.items()}
    )
    return build_world(WorldSpec(**fields), like=name)


def describe(world: str) -> str:
    name, options = split_world(world)
    text = peers.describe(name)
    if options.get("image_cap", 0) is None:
        return (
            f"real {name} class side with every image of its real splits (the real per-class "
            "counts), synthetic 128-d features on a 7×7 grid"
        )
    cap = options.get("image_cap")
    if cap is not None:  # the cap named in peers.describe is the world's default, not this one
        text = text.replace(f"at most {peers.CAPS[name]} ", f"at most {cap:g} ")
    if options:
        text += "; generator options changed: " + ", ".join(
            f"{k}={'none (every image of the real splits)' if v is None else f'{v:g}'}"
            for k, v in options.items()
        )
    return text


def budget(root: Path, world: str, stage: str = "protocol") -> str:
    """The epoch budget and patience the ``stage`` runs of ``world`` trained with (read from a
    finished run's config: ``--set`` may have changed the world's default budget)."""
    import yaml

    base = root / Job(stage, world, "", 0).folder.parts[0] / stage
    for path in sorted(base.glob("*/seed*/config.yaml")):
        if RunFolder(path.parent).is_finished():
            train = yaml.safe_load(path.read_text())["train"]
            if train.get("patience"):
                return (
                    f"at most {train['epochs']} epochs, stopped after {train['patience']} "
                    "epochs without a better score (`train.patience`: the validation phase on "
                    "validation H under `val`, trainval on test H under `test-oracle`)"
                )
            return f"{train['epochs']} epochs"
    return f"{epochs(world)} epochs"


def epochs(world: str) -> int:
    return EPOCHS[split_world(world)[0]]


@dataclass
class Job:
    stage: str
    world: str
    label: str
    seed: int

    @property
    def folder(self) -> Path:
        return (
            Path(self.world.lower().replace(",", "_").replace("=", ""))
            / self.stage
            / self.label
            / f"seed{self.seed}"
        )


def job_config(job: Job, extra: list[str]) -> Any:
    """A label is a CREST variant or a model name, optionally ``:e<N>`` for N epochs instead of
    the world's budget (``crest:e30``, ``dazle:e30``) and, in stage `protocol`, ``@selection``."""
    label, _, selection = job.label.partition("@")
    label, _, budget = label.partition(":e")
    world = [
        f"data.path={world_file(job.world)}",
        f"train.epochs={int(budget) if budget else epochs(job.world)}",
    ]
    if job.stage == "attribution":
        only = ["train.selection=val", "train.validation_only=true", f"train.seed={job.seed}"]
        if label in VARIANTS:
            return load_config("synthetic", [*world, *VARIANTS[label][1], *extra, *only])
        if label in PEER_VARIANTS:
            _, peer, changes = PEER_VARIANTS[label]
            return load_config("synthetic", [*_recipe(peer), *world, *changes, *extra, *only])
        return load_config(
            "synthetic", [*_recipe(label), f"model.name={label}", *world, *extra, *only]
        )
    overrides = [*world, *RECOMMENDED.get(label, []), *extra]
    return compare_config("synthetic", label.split("+")[0], selection, job.seed, overrides)


#: the recipe rows of stage `protocol` other than the registry's (label "crest+…")
RECOMMENDED: dict[str, list[str]] = {}


def _recipe(model: str) -> list[str]:
    from crest.models.registry import recipe

    return list(recipe(model, "synthetic"))


def jobs(
    stage: str,
    worlds: list[str],
    labels: list[str],
    seeds: list[int],
    protocols: tuple[str, ...] = ("val", "test-oracle"),
) -> list[Job]:
    """World by world; in stage `protocol` every `val` run before any `test-oracle` run (of
    ``protocols``: `val` alone runs the fair rows first and leaves the oracle's for later)."""
    out = []
    for world in worlds:
        selections = protocols if stage == "protocol" else ("",)
        for selection in selections:
            for seed in seeds:
                for label in labels:
                    name = f"{label}@{selection}" if selection else label
                    out.append(Job(stage, world, name, seed))
    return out


# ---- the report ----------------------------------------------------------------------------
def finished(root: Path, job: Job) -> dict[str, Any] | None:
    run = RunFolder(root / job.folder)
    return run.read_metrics() if run.is_finished() else None


def history(root: Path, job: Job) -> list[dict[str, Any]]:
    path = root / job.folder / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pm(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {sd:.1f}"


def attribution_table(root: Path, world: str, seeds: list[int]) -> tuple[str, dict[str, Any]]:
    """Per label: validation H and CZSL (mean ± std over seeds) and the paired change from
    CREST's row (the same seeds only), with the late vacuity of the CREST rows."""
    base_runs = {"": {s: finished(root, Job("attribution", world, "crest", s)) for s in seeds}}
    rows, summary = [], {}
    on_disk = sorted(
        p.name
        for p in (root / Job("attribution", world, "", 0).folder.parts[0] / "attribution").glob(
            "*:e*"
        )
    )
    for label in [*VARIANTS, *PEERS, *PEER_VARIANTS, *on_disk]:
        got = {s: finished(root, Job("attribution", world, label, s)) for s in seeds}
        got = {s: m for s, m in got.items() if m}
        if not got:
            continue
        h = [100 * float(m["val_h"]) for m in got.values()]
        c = [100 * float(m["val_czsl"]) for m in got.values() if m.get("val_czsl") is not None]
        budget = label.partition(":e")[2]
        base = (
            base_runs[budget]
            if budget in base_runs
            else {
                s: finished(root, Job("attribution", world, f"crest:e{budget}", s)) for s in seeds
            }
        )
        base_runs[budget] = base
        paired = [s for s in got if base.get(s)]
        dh = [100 * (float(got[s]["val_h"]) - float(base[s]["val_h"])) for s in paired]  # type: ignore[index]
        dc = [
            100 * (float(got[s]["val_czsl"]) - float(base[s]["val_czsl"]))  # type: ignore[index]
            for s in paired
            if got[s].get("val_czsl") is not None and base[s].get("val_czsl") is not None  # type: ignore[union-attr]
        ]
        epochs = [int(m["val_epoch"]) for m in got.values()]
        vac = _late_vacuity(root, world, label, list(got))
        what = describe_label(label)
        rows.append(
            [
                label,
                what,
                str(len(got)),
                pm(h),
                "" if label.partition(":")[0] == "crest" else pm(dh),
                pm(c),
                "" if label.partition(":")[0] == "crest" else pm(dc),
                ", ".join(map(str, epochs)),
                vac,
            ]
        )
        summary[label] = {"h": h, "czsl": c, "dh": dh, "dczsl": dc, "epochs": epochs}
    header = [
        "row",
        "what it changes (from CREST's recipe)",
        "seeds",
        "val H",
        "ΔH (paired)",
        "val CZSL",
        "ΔCZSL (paired)",
        "chosen epochs",
        "vacuity, epoch 3 → last",
    ]
    return md_table(header, rows), summary


def describe_label(label: str) -> str:
    base, _, budget = label.partition(":e")
    if base in VARIANTS:
        what = VARIANTS[base][0]
    elif base in PEER_VARIANTS:
        what = PEER_VARIANTS[base][0]
    else:
        what = f"{base.upper()} (crest's implementation, its recipe)"
    return what + (f"; {budget} epochs (Δ against `crest:e{budget}`)" if budget else "")


def _late_vacuity(root: Path, world: str, label: str, seeds: list[int]) -> str:
    """Mean vacuity on the validation images at epoch 3 and at the last epoch (seen / unseen)."""
    early, late = [], []
    for s in seeds:
        entries = [
            e
            for e in history(root, Job("attribution", world, label, s))
            if e.get("phase") == "val" and Key.VACUITY_SEEN in e
        ]
        if len(entries) >= 3:
            early.append(0.5 * (entries[2][Key.VACUITY_SEEN] + entries[2][Key.VACUITY_UNSEEN]))
            late.append(0.5 * (entries[-1][Key.VACUITY_SEEN] + entries[-1][Key.VACUITY_UNSEEN]))
    if not early:
        return "–"
    return f"{statistics.fmean(early):.2f} → {statistics.fmean(late):.2f}"


#: published results with ResNet-101 features, (CZSL, H) in %: CREST and TransZero from CREST's
#: Table 1; DAZLE from its paper (CVPR 2020, Table 2), MSDN from its paper (CVPR 2022, Table 1)
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "CUB": {
        "crest": (78.6, 71.7),
        "transzero": (76.8, 68.8),
        "msdn": (76.1, 68.1),
        "dazle": (65.9, 58.1),
    },
    "SUN": {
        "crest": (66.3, 43.2),
        "transzero": (65.6, 40.8),
        "msdn": (65.8, 41.3),
        "dazle": (59.4, 33.2),
    },
    "AWA2": {
        "crest": (73.5, 74.1),
        "transzero": (70.1, 70.2),
        "msdn": (70.1, 67.7),
        "dazle": (67.9, 67.1),
    },
}


#: the published numbers on the same features (448-pixel inputs, 14 × 14 maps): DAZLE's come from
#: 224-pixel inputs (7 × 7, its extraction script), so the order on like features leaves it out
PUBLISHED_SAME_FEATURES = {
    world: {m: v for m, v in table.items() if m != "dazle"} for world, table in PUBLISHED.items()
}


def taus(world: str, scores: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Kendall τ (H, CZSL) of ``scores`` ((CZSL, H) per model) against the published order of
    ``world``'s dataset, all four models, and against the same-features order (no DAZLE)."""
    out = {}
    for name, table in (("all four", PUBLISHED), ("same features", PUBLISHED_SAME_FEATURES)):
        published = table.get(world, {})
        common = set(scores) & set(published)
        if len(common) < 2:
            continue
        out[name] = (
            kendall_tau({m: scores[m][1] for m in common}, {m: published[m][1] for m in common}),
            kendall_tau({m: scores[m][0] for m in common}, {m: published[m][0] for m in common}),
        )
    return out


def kendall_tau(a: dict[str, float], b: dict[str, float]) -> float:
    """Kendall's τ-b between two scorings of the same models (ties count as neither)."""
    from scipy.stats import kendalltau

    names = sorted(set(a) & set(b))
    return float(kendalltau([a[n] for n in names], [b[n] for n in names]).statistic)


def protocol_table(root: Path, world: str, seeds: list[int]) -> tuple[str, dict[str, Any]]:
    """Per model: test CZSL and H under `val` and under `test-oracle` (mean ± std over seeds)."""
    rows, means = [], {}
    labels = sorted(
        {
            p.name.split("@")[0]
            for p in (root / Job("protocol", world, "", 0).folder.parts[0] / "protocol").glob("*@*")
        },
        key=lambda m: (m.split("+")[0] not in ("crest",), m),
    )
    for label in labels:
        cells, done = [], {}
        for selection in ("val", "test-oracle"):
            got = [finished(root, Job("protocol", world, f"{label}@{selection}", s)) for s in seeds]
            ok = [m for m in got if m]
            done[selection] = len(ok)
            for key in (Key.CZSL, Key.H):
                cells.append(pm([100 * float(m[key]) for m in ok]))
            if selection == "val" and ok:
                means[label] = {
                    "czsl": statistics.fmean(100 * float(m[Key.CZSL]) for m in ok),
                    "h": statistics.fmean(100 * float(m[Key.H]) for m in ok),
                    "seeds": len(ok),
                }
        rows.append(
            [
                label,
                f"{done['val']} / {done['test-oracle']}",
                *cells,
                stops(root, world, label, seeds),
            ]
        )
    header = [
        "model",
        "seeds (val / test-oracle)",
        "CZSL, val",
        "H, val",
        "CZSL, test-oracle (not fair)",
        "H, test-oracle (not fair)",
        "val: chosen epoch / stopped at; test-oracle: stopped at (per seed)",
    ]
    return md_table(header, rows), means


def stops(root: Path, world: str, label: str, seeds: list[int]) -> str:
    """Per seed, where each protocol run chose and stopped: `val` gives the epoch validation chose
    and the epoch its validation phase stopped at (``train.patience``, or the budget),
    `test-oracle` the epoch its training on trainval stopped at."""
    val, oracle = [], []
    for s in seeds:
        m = finished(root, Job("protocol", world, f"{label}@val", s))
        if m:
            trained = m.get("epochs_trained") or {}
            val.append(f"{m['epoch']}/{trained.get('val', '?')}")
        m = finished(root, Job("protocol", world, f"{label}@test-oracle", s))
        if m:
            oracle.append(str((m.get("epochs_trained") or {}).get("final", "?")))
    return f"val {', '.join(val) or '–'}; test-oracle {', '.join(oracle) or '–'}"


def seed_rows(root: Path, world: str, seeds: list[int]) -> str:
    """Every finished protocol run of ``world``: model, selection, seed, test CZSL, U, S, H, and
    its epochs (chosen, trained per phase)."""
    rows = []
    base = root / Job("protocol", world, "", 0).folder.parts[0] / "protocol"
    for folder in sorted(base.glob("*@*")):
        label, _, selection = folder.name.partition("@")
        for s in seeds:
            m = finished(root, Job("protocol", world, folder.name, s))
            if not m:
                continue
            trained = m.get("epochs_trained") or {}
            rows.append(
                [
                    label,
                    selection,
                    str(s),
                    *(f"{100 * float(m[k]):.1f}" for k in (Key.CZSL, Key.U, Key.S, Key.H)),
                    str(m["epoch"]),
                    ", ".join(f"{p} {e}" for p, e in trained.items()) or "–",
                ]
            )
    if not rows:
        return ""
    header = ["model", "selection", "seed", "CZSL", "U", "S", "H", "reported epoch", "trained"]
    return md_table(header, rows)


def curve_rows(root: Path, world: str, seeds: list[int]) -> str:
    """Per model, the validation best-γ H (in %, mean over the seeds that reached the epoch) of
    its `val` runs' validation phase, every epoch: how each model converges under patience."""
    base = root / Job("protocol", world, "", 0).folder.parts[0] / "protocol"
    rows, width = [], 0
    for folder in sorted(base.glob("*@val")):
        curves = [val_curve(root, world, folder.name, s, "protocol") for s in seeds]
        curves = [c for c in curves if c]
        if not curves:
            continue
        n = max(len(c) for c in curves)
        width = max(width, n)
        means = [f"{statistics.fmean(c[i] for c in curves if len(c) > i):.0f}" for i in range(n)]
        rows.append([folder.name.partition("@")[0], str(len(curves)), " ".join(means)])
    if not rows:
        return ""
    return md_table(["model", "seeds", f"validation H, epochs 1 … (up to {width})"], rows)


def ranking_lines(world: str, means: dict[str, Any]) -> list[str]:
    """The models ranked by H under `val` beside the published ranking, with Kendall's τ."""
    dataset = split_world(world)[0]
    published = PUBLISHED.get(dataset)
    plain = {m: v for m, v in means.items() if "+" not in m}
    if not published or len(set(plain) & set(published)) < 2:
        return []
    ours = sorted(plain, key=lambda m: -plain[m]["h"])
    theirs = sorted(published, key=lambda m: -published[m][1])
    lines = [
        f"- ranking by H here (`val`): {' > '.join(ours)}",
        f"- published ranking by H on real {dataset}: {' > '.join(theirs)} (DAZLE's from "
        "224-pixel inputs, the others' from 448)",
    ]
    scores = {m: (v["czsl"], v["h"]) for m, v in plain.items()}
    for name, (tau_h, tau_c) in taus(dataset, scores).items():
        lines.append(
            f"- Kendall τ against the published order ({name}): H {tau_h:+.2f}, CZSL {tau_c:+.2f}"
        )
    return lines


#: the rows of the first-epochs table: CREST now and before, beside the peers
START_ROWS = (
    "crest",
    "fast_start",
    "zero_residual_b16",
    "zero_residual",
    "previous",
    "dazle",
    "msdn",
    "transzero",
)


def val_curve(
    root: Path, world: str, label: str, seed: int, stage: str = "attribution"
) -> list[float]:
    """Validation best-γ H (in %, at the training μ) per epoch of a finished run's validation
    phase (an attribution run, or the first phase of a `val` protocol run)."""
    job = Job(stage, world, label, seed)
    if not finished(root, job):
        return []
    return [
        100 * float(e[Key.BEST_H])
        for e in history(root, job)
        if e.get("phase") == "val" and Key.BEST_H in e
    ]


def start_table(root: Path, world: str, seeds: list[int], budget: str = "e30") -> str:
    """Per row: validation best-γ H at epochs 1, 2, 3, 5 and 10, the best over the budget (with
    its epoch), mean ± std over seeds; for CREST's rows, epoch 1 and 2 as a share of DAZLE's on
    the same seed (the slow-start criterion of issue 28: at least 1/2 and 3/4)."""
    rows = []
    dazle = {s: val_curve(root, world, f"dazle:{budget}", s) for s in seeds}
    for label in START_ROWS:
        curves = {s: val_curve(root, world, f"{label}:{budget}", s) for s in seeds}
        curves = {s: c for s, c in curves.items() if c}
        if not curves:
            continue
        cells = [f"{label}:{budget}", str(len(curves))]
        for epoch in (1, 2, 3, 5, 10):
            cells.append(pm([c[epoch - 1] for c in curves.values() if len(c) >= epoch]))
        cells.append(pm([max(c) for c in curves.values()]))
        cells.append(", ".join(str(int(np.argmax(c)) + 1) for c in curves.values()))
        for epoch in (1, 2):
            shares = [
                c[epoch - 1] / dazle[s][epoch - 1]
                for s, c in curves.items()
                if len(dazle.get(s) or []) >= epoch and dazle[s][epoch - 1] > 0
            ]
            cells.append(
                "" if label == "dazle" or not shares else f"{statistics.fmean(shares):.2f}"
            )
        rows.append(cells)
    if not rows:
        return ""
    header = [
        "row",
        "seeds",
        "H ep 1",
        "H ep 2",
        "H ep 3",
        "H ep 5",
        "H ep 10",
        "best H",
        "best at epoch",
        "ep 1 / DAZLE's",
        "ep 2 / DAZLE's",
    ]
    return md_table(header, rows)


#: the rows whose vacuity is followed epoch by epoch (what the late rise comes from)
VACUITY_ROWS = ("crest", "no_edl", "edl_x10", "wd0", "lambda_cal", "crest:e30")


def vacuity_table(root: Path, world: str, seeds: list[int]) -> str:
    """Mean vacuity (the paper's u = K/S) on the validation images, every few epochs, mean over
    the seeds (seen and unseen images averaged), beside the validation best-γ H."""
    rows, width = [], 0
    for label in VACUITY_ROWS:
        curves = []
        for s in seeds:
            entries = [
                e
                for e in history(root, Job("attribution", world, label, s))
                if e.get("phase") == "val" and Key.VACUITY_SEEN in e
            ]
            if entries and finished(root, Job("attribution", world, label, s)):
                curves.append(entries)
        if not curves:
            continue
        n = min(len(c) for c in curves)
        width = max(width, n)
        cells = []
        for i in range(n):
            u = statistics.fmean(
                0.5 * (c[i][Key.VACUITY_SEEN] + c[i][Key.VACUITY_UNSEEN]) for c in curves
            )
            h = statistics.fmean(100 * float(c[i][Key.BEST_H]) for c in curves)
            cells.append(f"{u:.2f} ({h:.0f})")
        rows.append([label, str(len(curves)), *cells])
    if not rows:
        return ""
    header = ["row", "seeds", *(f"ep {i + 1}" for i in range(width))]
    return md_table(header, [r + [""] * (len(header) - len(r)) for r in rows])


def validation_ranking(root: Path, worlds: list[str], seeds: list[int]) -> str:
    """Per world, the four models' validation H (validation-only runs, the seeds all of them
    have) ranked, with Kendall's τ against the published ranking of the world's dataset."""
    rows = []
    for world in worlds:
        published = PUBLISHED.get(split_world(world)[0])
        if not published:
            continue
        runs = {
            m: {s: finished(root, Job("attribution", world, m, s)) for s in seeds}
            for m in published
        }
        common = [s for s in seeds if all(runs[m].get(s) for m in published)]
        if not common:
            continue
        h = {
            m: statistics.fmean(100 * float(runs[m][s]["val_h"]) for s in common) for m in published
        }  # type: ignore[index]
        both = taus(split_world(world)[0], {m: (0.0, v) for m, v in h.items()})
        order = " > ".join(f"{m} {h[m]:.1f}" for m in sorted(h, key=lambda m: -h[m]))
        rows.append(
            [
                world,
                ", ".join(map(str, common)),
                order,
                *(
                    f"{both[k][0]:+.2f}" if k in both else "–"
                    for k in ("all four", "same features")
                ),
            ]
        )
    if not rows:
        return ""
    header = [
        "world",
        "seeds",
        "validation H, ranked",
        "Kendall τ (H) vs published, all four",
        "τ vs published, same features (no DAZLE)",
    ]
    return md_table(header, rows)


def write_report(root: Path, table: Path, worlds: list[str], seeds: list[int]) -> dict[str, Any]:
    sections, summary = [], {}
    ranking = validation_ranking(root, worlds, seeds)
    if ranking:
        sections += ["## The four models ranked on validation, per world", "", ranking, ""]
    for world in worlds:
        text, means = protocol_table(root, world, seeds)
        if means:
            if "## The four models under the full protocol" not in sections:
                sections += ["## The four models under the full protocol", ""]
            sections += [
                f"### {world}",
                "",
                f"{describe(world)}; {budget(root, world)}; test scores, `val` = epoch and γ "
                "chosen on the validation classes and retrained on trainval.",
                "",
                text,
                "",
                *ranking_lines(world, means),
                "",
            ]
            per_seed, curves = seed_rows(root, world, seeds), curve_rows(root, world, seeds)
            if per_seed:
                sections += ["Every run:", "", per_seed, ""]
            if curves:
                sections += [
                    "Validation H per epoch of the `val` runs (mean over the seeds still "
                    "training at that epoch):",
                    "",
                    curves,
                    "",
                ]
            summary[f"{world}/protocol"] = means
    for world in worlds:
        start = start_table(root, world, seeds)
        if start:
            if "## The first epochs (validation, 30-epoch runs)" not in sections:
                sections += ["## The first epochs (validation, 30-epoch runs)", ""]
            sections += [f"### {world}", "", start, ""]
    for world in worlds:
        text, summary[world] = attribution_table(root, world, seeds)
        if not summary[world]:
            continue
        if not any(line.startswith("## Attribution") for line in sections):
            sections += ["## Attribution (validation protocol only)", ""]
        sections += [
            f"### {world}",
            "",
            f"{describe(world)}; {budget(root, world, 'attribution')}; validation protocol only "
            "(labels with `:eN` trained N epochs).",
            "",
            text,
            "",
        ]
        vacuity = vacuity_table(root, world, seeds)
        if vacuity:
            sections += [
                f"Vacuity on {world}, mean over seeds, per epoch (validation best-γ H in brackets):",
                "",
                vacuity,
                "",
            ]
    write_text_atomic(table.with_suffix(".json"), json.dumps(summary, indent=1))
    write_text_atomic(
        table,
        "# Attribution runs (generated; the findings are in crest_vs_peers.md)\n\n"
        "`benchmarks/crest_vs_peers.py attribution`. Every row: trained on the training classes, "
        "epoch, γ (and μ for CREST) chosen by H on the validation classes, validation H and CZSL "
        "at that choice, in %, mean ± std over training seeds. ΔH, ΔCZSL: the row minus CREST's "
        "row on the same seed, mean ± std over seeds. Vacuity: the paper's u = K/S, mean over the "
        "validation images (seen and unseen averaged).\n\n" + "\n".join(sections),
    )
    return summary


def known_worlds(root: Path) -> list[str]:
    """The like worlds first, then every world with changed generator options run into ``root``."""
    path = root / "worlds.json"
    extra = json.loads(path.read_text()) if path.exists() else []
    return [*EPOCHS, *(w for w in extra if w not in EPOCHS)]


def remember_worlds(root: Path, worlds: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    known = known_worlds(root)
    write_text_atomic(
        root / "worlds.json", json.dumps([*known, *(w for w in worlds if w not in known)])
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("stage", choices=["attribution", "protocol", "report"])
    p.add_argument("--worlds", nargs="*", default=["default"])
    p.add_argument("--labels", nargs="*", help="variant or model labels (default: all)")
    p.add_argument("--seeds", type=int, nargs="*", default=SEEDS)
    p.add_argument("--set", dest="extra", action="append", default=[], help="extra override")
    p.add_argument("--out", type=Path, default=Path("runs/crest_vs_peers"))
    p.add_argument(
        "--protocols",
        nargs="+",
        choices=["val", "test-oracle"],
        default=["val", "test-oracle"],
        help="stage protocol: which selections to run (val first)",
    )
    p.add_argument(
        "--table", type=Path, default=Path(__file__).parent / "results" / "crest_vs_peers_runs.md"
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if args.stage == "report":
        write_report(args.out, args.table, known_worlds(args.out), args.seeds)
        print(args.table.read_text())
        return
    default = [*VARIANTS, *PEERS] if args.stage == "attribution" else ["crest", *PEERS]
    protocols = tuple(p for p in ("val", "test-oracle") if p in args.protocols)
    todo = jobs(args.stage, args.worlds, args.labels or default, args.seeds, protocols)
    remember_worlds(args.out, args.worlds)
    start = time.time()
    for i, job in enumerate(todo):
        folder = args.out / job.folder
        if RunFolder(folder).is_finished():
            continue
        with claimed(folder) as mine:
            if not mine or RunFolder(folder).is_finished():
                continue  # another process of this grid runs it, or has just finished it
            logging.info("[%d/%d] %s", i + 1, len(todo), job.folder)
            run_once(job_config(job, args.extra), folder)
        logging.info("done after %.1f min", (time.time() - start) / 60)


@contextmanager
def claimed(folder: Path) -> Iterator[bool]:
    """Whether this process holds ``folder``'s job for the block: any number of processes
    started with the same arguments share the grid, each job run by one. The claim is an
    ``flock`` on a hidden file beside the folder, so a process that dies lets go of it, and no
    process ever reads or removes another's claim."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f".{folder.name}.claim").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # a live process holds it
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


if __name__ == "__main__":
    main()
