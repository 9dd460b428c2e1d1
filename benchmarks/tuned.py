"""Issue 30's evidence: every model tuned with the same budget, against its authors' recipe.

For each world, every model (CREST, DAZLE, MSDN, TransZero) gets one `crest tune` study of
TRIALS trials × the world's epochs on its validation classes (the test split is never read), then
its recipe and its tuned config are each trained under the `val` protocol over 3 seeds (epoch and
γ chosen on validation classes, retrained on trainval, scored once on test).

    python benchmarks/tuned.py run --worlds default &      # two processes share the grid
    python benchmarks/tuned.py run --worlds default &
    python benchmarks/tuned.py run --worlds CUB
    python benchmarks/tuned.py report                       # tuned.md from what has finished

Resumable: studies resume (their SQLite file), finished runs are not repeated, and processes
started with the same arguments each claim the next job no live process holds (run them with
OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

import peers
from crest.atomic import write_text_atomic
from crest.compare import compare_config
from crest.experiments import run_once
from crest.markdown import md_table
from crest.metrics import Key
from crest.run_folder import RunFolder
from crest.tune.folder import StudyFolder
from crest.tune.run import TuneSettings, tune
from crest.tune.study import RECIPE, budget_used
from crest_vs_peers import claimed

MODELS = ["dazle", "msdn", "crest", "transzero"]
SEEDS = [0, 1, 2]
TRIALS = 12
RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Job:
    world: str
    model: str
    kind: str  # tune | recipe | tuned
    seed: int = 0

    @property
    def folder(self) -> str:
        if self.kind == "tune":
            return f"{self.world}/tune/{self.model}"
        return f"{self.world}/{self.kind}/{self.model}/val/seed{self.seed}"


def world_settings(world: str) -> tuple[str | None, list[str]]:
    """The config and overrides of a world: the embedded default or a capped like file."""
    if world == "default":
        return None, [f"train.epochs={peers.EPOCHS['default']}"]
    # like crest_vs_peers.py: every model's `synthetic` recipe on the like file
    return None, [f"data.path={peers.world_file(world)}", f"train.epochs={peers.EPOCHS[world]}"]


def jobs(worlds: list[str], models: list[str], seeds: list[int]) -> list[Job]:
    """Per world: every study first (the cheap models first), then the recipe and tuned runs."""
    out: list[Job] = []
    for world in worlds:
        out += [Job(world, m, "tune") for m in models]
        for seed in seeds:
            for m in models:
                out += [Job(world, m, "recipe", seed), Job(world, m, "tuned", seed)]
    return out


def run_job(job: Job, root: Path, trials: int) -> None:
    config, overrides = world_settings(job.world)
    if job.kind == "tune":
        tune(TuneSettings(job.model, trials, root / job.folder, config, tuple(overrides)))
        return
    tuned = None
    if job.kind == "tuned":
        best = StudyFolder(root / Job(job.world, job.model, "tune").folder).best
        if not best.exists():
            raise FileNotFoundError(f"{best}: tune {job.model} on {job.world} first")
        tuned = best
    cfg = compare_config(config, job.model, "val", job.seed, overrides, tuned)
    run_once(cfg, root / job.folder)


def run(args: argparse.Namespace) -> None:
    todo = jobs(args.worlds, args.models, args.seeds)
    for i, job in enumerate(todo):
        folder = args.out / job.folder
        done = (
            study_done(folder, args.trials)
            if job.kind == "tune"
            else RunFolder(folder).is_finished()
        )
        if done:
            continue
        study = args.out / Job(job.world, job.model, "tune").folder
        if job.kind == "tuned" and (not study_done(study, args.trials) or recipe_won(study)):
            continue  # its study still runs elsewhere, or chose the recipe (its runs are those)
        with claimed(folder) as mine:
            if not mine:
                continue  # another process of this grid runs it
            logging.info("[%d/%d] %s", i + 1, len(todo), job.folder)
            run_job(job, args.out, args.trials)


def study_done(folder: Path, trials: int) -> bool:
    study = study_summary(folder)
    return study is not None and study["ended"] >= trials and (folder / "best.yaml").exists()


def recipe_won(folder: Path) -> bool:
    """Whether the study's best trial is the recipe's own: its tuned config is the recipe, so
    its `val` runs would repeat the recipe's (deterministic) runs."""
    study = study_summary(folder)
    return study is not None and bool(study["recipe_won"])


def study_summary(folder: Path) -> dict[str, Any] | None:
    """The budget and outcome of a study from its SQLite file, or None before it exists."""
    db = folder / "study.db"
    if not db.exists():
        return None
    storage = f"sqlite:///{db}"
    names = optuna.get_all_study_names(storage)
    if not names:
        return None
    study = optuna.load_study(study_name=names[0], storage=storage)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    # the recipe's trial is marked (the first, or its retry after an interruption)
    recipe = next((t for t in complete if t.user_attrs.get(RECIPE)), None)
    best = max(complete, key=lambda t: t.value or 0.0, default=None)
    return {
        "ended": budget_used(study),  # what `crest tune` counts toward --trials
        "pruned": len(pruned),
        "recipe_val_h": None if recipe is None else recipe.value,
        "best_val_h": None if best is None else best.value,
        "recipe_won": best is not None and best is recipe,
        "best_trial": None if best is None else best.number,
        "best_params": {} if best is None else best.params,
    }


def test_h(root: Path, job: Job) -> float | None:
    run = RunFolder(root / job.folder)
    return float(run.read_metrics()[Key.H]) if run.is_finished() else None


def pm(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {sd:.1f}"


def report(root: Path, worlds: list[str], seeds: list[int], trials: int, table: Path) -> None:
    sections: list[str] = []
    summary: dict[str, Any] = {}
    for world in worlds:
        _, overrides = world_settings(world)
        epochs = overrides[-1].split("=")[1]
        rows = []
        for model in MODELS:
            study = study_summary(root / Job(world, model, "tune").folder)
            recipe = {s: test_h(root, Job(world, model, "recipe", s)) for s in seeds}
            same = study is not None and bool(study["recipe_won"])
            kind = "recipe" if same else "tuned"  # the recipe won: its runs are the tuned ones
            tuned = {s: test_h(root, Job(world, model, kind, s)) for s in seeds}
            r = [100 * v for v in recipe.values() if v is not None]
            t = [100 * v for v in tuned.values() if v is not None]
            paired = [
                100 * (tuned[s] - recipe[s])  # type: ignore[operator]
                for s in seeds
                if tuned[s] is not None and recipe[s] is not None
            ]
            summary[f"{world}/{model}"] = {"study": study, "recipe": recipe, "tuned": tuned}
            val = "–"
            if study and study["best_val_h"] is not None:
                first = study["recipe_val_h"]
                val = f"{'–' if first is None else f'{100 * first:.1f}'} → {100 * study['best_val_h']:.1f}"
            params = (
                "the recipe's own values"
                if same
                else ", ".join(
                    f"{k}={v:.3g}" for k, v in (study or {}).get("best_params", {}).items()
                )
                or "–"
            )
            rows.append(
                [
                    model,
                    "–" if study is None else f"{study['ended']} ({study['pruned']} pruned)",
                    val,
                    f"{pm(r)} ({len(r)})",
                    f"{pm(t)} ({len(t)})",
                    pm(paired),
                    params,
                ]
            )
        sections += [
            f"## {world} ({epochs} epochs per run and per trial)",
            "",
            md_table(
                [
                    "model",
                    "trials ended",
                    "validation H: recipe's trial → best trial",
                    "test H, authors' recipe (seeds)",
                    "test H, tuned (seeds)",
                    "paired Δ tuned − recipe",
                    "best trial's values",
                ],
                rows,
            ),
            "",
        ]
    write_text_atomic(table.with_suffix(".json"), json.dumps(summary, indent=1, default=str))
    write_text_atomic(
        table,
        "# Every model tuned with the same budget (generated by `benchmarks/tuned.py report`)\n\n"
        f"Each model: one `crest tune` study of {trials} trials (TPE, median pruning, the first "
        "trial its recipe) × the world's epochs, scored by validation H (best epoch and γ on the "
        "validation classes; the test split is never read). Then its recipe and its tuned "
        "config are each trained under `val` (epoch and γ chosen on validation classes, "
        "retrained on trainval, scored once on test) over seeds "
        f"{', '.join(map(str, seeds))}. H in %, mean ± std over seeds; the paired Δ is per "
        "seed. Where a study's best trial is its first (the recipe itself), the tuned config is the recipe "
        "and its runs are the recipe's.\n\n" + "\n".join(sections),
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("stage", choices=["run", "report"])
    p.add_argument("--worlds", nargs="*", default=["default", "CUB"])
    p.add_argument("--models", nargs="*", default=MODELS)
    p.add_argument("--seeds", type=int, nargs="*", default=SEEDS)
    p.add_argument("--trials", type=int, default=TRIALS)
    p.add_argument("--out", type=Path, default=Path("runs/tuned"))
    p.add_argument("--table", type=Path, default=RESULTS / "tuned.md")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if args.stage == "report":
        report(args.out, args.worlds, args.seeds, args.trials, args.table)
        print(args.table.read_text())
        return
    run(args)


if __name__ == "__main__":
    main()
