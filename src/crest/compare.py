"""`crest compare`: the chosen models trained over seeds on one benchmark file, each with its
authors' recipe for the dataset, under `val` and, labelled, under `test-oracle`; resumable (a run
whose ``metrics.json`` exists is not repeated), like ``crest ablate``."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crest.config import Config, dataset_of, load_config
from crest.engine.selection import epochs_trained
from crest.errors import ConfigError, CrestError
from crest.experiments import mean_std, run_once
from crest.metrics import Key
from crest.run_folder import RunFolder

log = logging.getLogger(__name__)

#: the selections a comparison reports side by side: the honest one first
SELECTIONS = ("val", "test-oracle")
#: the columns of the Table-1-shaped report (fractions; shown in %)
COLUMNS = (Key.CZSL, Key.U, Key.S, Key.H, Key.AUSUC)


@dataclass
class CompareRun:
    model: str
    selection: str
    seed: int
    folder: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    parameters: int
    seconds_per_epoch: float


def compare_config(
    config: str | None,
    model: str,
    selection: str,
    seed: int,
    overrides: list[str],
    tuned: Path | None = None,
) -> Config:
    """``config`` (a dataset config) turned into ``model``'s recipe for that dataset, or the
    model's ``tuned`` config (a study's best.yaml) instead; then the user's ``overrides``, the
    selection and the seed."""
    from crest.models.registry import recipe

    run = [*overrides, f"train.selection={selection}", f"train.seed={seed}"]
    if tuned is not None:
        cfg = load_config(str(tuned), run)
        if cfg.model.name != model:
            raise ConfigError(f"{tuned}: a tuned config of {cfg.model.name}, not of {model}")
        return cfg
    return load_config(config, [*recipe(model, dataset_of(config)), *run])


def tune_models(
    config: str | None,
    models: list[str],
    out: Path,
    trials: int,
    epochs: int | None,
    overrides: list[str],
) -> dict[str, Path]:
    """Every model tuned on its validation classes with the same budget: ``trials`` trials of
    ``epochs`` epochs each (default: the dataset config's train.epochs after ``overrides``),
    one study per model in ``out/<model>``; their best configs by model."""
    from crest.tune.run import TuneSettings, tune

    budget = epochs if epochs is not None else load_config(config, overrides).train.epochs
    best: dict[str, Path] = {}
    for model in models:
        log.info("tuning %s: %d trials × %d epochs → %s", model, trials, budget, out / model)
        settings = TuneSettings(model, trials, out / model, config, tuple(overrides), budget)
        result = tune(settings)
        if result.best is None:
            raise CrestError(f"{result.folder.root}: no trial of {model} completed; see its report")
        best[model] = result.folder.best
    return best


def compare(
    config: str | None,
    models: list[str],
    out: Path,
    seeds: list[int],
    overrides: list[str] | None = None,
    selections: tuple[str, ...] = SELECTIONS,
    trainer: Callable[[Config, Path], dict[str, Any]] | None = None,
    tuned: Mapping[str, Path] | None = None,
) -> list[CompareRun]:
    """Every model × selection × seed, each in ``out/<model>/<selection>/seed<N>``; a model in
    ``tuned`` trains from its tuned config (:func:`tune_models`, `crest compare --tuned`)."""
    if any(o.replace(" ", "").startswith("train.validation_only=") for o in overrides or []):
        raise ValueError(
            "crest compare reports test scores: train.validation_only does not apply (compare "
            "settings on validation with crest train --set train.validation_only=true)"
        )
    runs = []
    for model in models:
        for selection in selections:
            for seed in seeds:
                cfg = compare_config(
                    config, model, selection, seed, overrides or [], (tuned or {}).get(model)
                )
                folder = out / model / selection / f"seed{seed}"
                log.info("compare %s %s seed %d → %s", model, selection, seed, folder)
                metrics = run_once(cfg, folder, trainer)
                runs.append(_collected(model, selection, seed, folder, metrics))
    return runs


def _collected(
    model: str, selection: str, seed: int, folder: Path, metrics: dict[str, Any]
) -> CompareRun:
    run = RunFolder(folder)
    history = run.read_history()
    final = [e for e in history if e.get("phase") == "final"]
    seconds = [float(e["train_seconds"]) for e in final if "train_seconds" in e]
    return CompareRun(
        model,
        selection,
        seed,
        folder,
        metrics,
        history,
        _parameters(run),
        statistics.fmean(seconds) if seconds else float("nan"),
    )


def _parameters(run: RunFolder) -> int:
    """Trainable parameters of the run's model (its last checkpoint, rebuilt)."""
    from crest.engine.checkpoint import load_model

    if not run.last_checkpoint.exists():
        return 0
    model = load_model(run.last_checkpoint, device="cpu").model
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def h_over_epochs(runs: list[CompareRun], phase: str = "final") -> dict[str, np.ndarray]:
    """Per model, the mean test H of each epoch over the seeds of its test-oracle runs (those
    train the full epoch budget on trainval and evaluate the test split at every epoch)."""
    curves: dict[str, np.ndarray] = {}
    for model in dict.fromkeys(r.model for r in runs):
        per_seed = [
            [float(e[Key.H]) for e in r.history if e.get("phase") == phase and Key.H in e]
            for r in runs
            if r.model == model and r.selection == "test-oracle"
        ]
        per_seed = [c for c in per_seed if c]
        if per_seed:
            n = min(len(c) for c in per_seed)
            curves[model] = np.mean([c[:n] for c in per_seed], axis=0)
    return curves


def epochs_to_reach(curve: np.ndarray, share: float = 0.95) -> int:
    """The first epoch (1-based) whose H reaches ``share`` of the last epoch's H."""
    target = share * float(curve[-1])
    return int(np.argmax(curve >= target)) + 1


def stopped_epoch(run: CompareRun) -> int:
    """The epoch at which the run's watched phase stopped (``train.patience``) or ended: the
    validation phase under `val`, the final phase under `test-oracle`."""
    return epochs_trained(run.history).get("val" if run.selection == "val" else "final", 0)


def table_rows(runs: list[CompareRun]) -> list[list[str]]:
    """One row per (model, selection): mean ± std over seeds of each column (in %), the
    parameters, seconds per epoch and how the numbers were chosen."""
    rows = []
    for model in dict.fromkeys(r.model for r in runs):
        for selection in dict.fromkeys(r.selection for r in runs):
            group = [r for r in runs if r.model == model and r.selection == selection]
            if not group:
                continue
            cells = []
            for key in COLUMNS:
                values = [100 * float(r.metrics[key]) for r in group if key in r.metrics]
                m, s = mean_std(values) if values else (float("nan"), 0.0)
                cells.append(f"{m:.1f} ± {s:.1f}")
            label = selection if selection == "val" else "test-oracle (best on test: not fair)"
            stopped = ", ".join(str(stopped_epoch(r)) for r in group)
            rows.append(
                [
                    model,
                    label,
                    str(len(group)),
                    *cells,
                    f"{group[0].parameters / 1e6:.2f} M",
                    f"{statistics.fmean(r.seconds_per_epoch for r in group):.1f}",
                    stopped,
                ]
            )
    return rows
