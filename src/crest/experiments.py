"""Groups of runs: Table 2 ablations over seeds, and parameter sweeps. Resumable: a run whose
``metrics.json`` exists is not repeated."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crest.config import ABLATIONS, Config, apply_overrides, config_from_dict
from crest.metrics import Key
from crest.run_folder import RunFolder

log = logging.getLogger(__name__)
METRIC_KEYS = (Key.CZSL, Key.U, Key.S, Key.H)


@dataclass
class RunResult:
    label: str
    seed: int
    folder: Path
    metrics: dict[str, Any]


def run_once(
    cfg: Config,
    folder: Path,
    trainer: Callable[[Config, Path], dict[str, Any]] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` into ``folder`` unless it already finished there; resume a cut-off run.
    ``on_epoch`` sees each new epoch's history entry (crest.engine.train.EpochHook)."""
    run = RunFolder(folder)
    if run.is_finished():
        metrics = run.read_metrics()
        if bool(metrics.get("validation_only", False)) != cfg.train.validation_only:
            raise ValueError(
                f"{folder}: holds a finished run of the other kind (train.validation_only="
                f"{str(not cfg.train.validation_only).lower()}); use another folder"
            )
        return metrics
    if trainer is None:
        from crest.engine.train import train

        resume = run.last_checkpoint.exists()
        return train(cfg, folder, resume=resume, on_epoch=on_epoch)
    return trainer(cfg, folder)


def ablate(
    base: Config,
    out: Path,
    rows: list[str] | None = None,
    seeds: list[int] | None = None,
    trainer: Callable[[Config, Path], dict[str, Any]] | None = None,
) -> list[RunResult]:
    """Every Table 2 row (default: all) for every seed, each in ``out/<row>/seed<N>``."""
    results = []
    for row in rows or list(ABLATIONS):
        if row not in ABLATIONS:
            raise ValueError(
                f"unknown ablation row '{row}'; expected one of {', '.join(ABLATIONS)}"
            )
        for seed in seeds or [0, 1, 2]:
            cfg = apply_overrides(
                config_from_dict(base.to_dict()), [*ABLATIONS[row], f"train.seed={seed}"]
            )
            folder = out / row.replace("=", "_") / f"seed{seed}"
            log.info("ablation %s seed %d → %s", row, seed, folder)
            results.append(RunResult(row, seed, folder, run_once(cfg, folder, trainer)))
    return results


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def scored(metrics: dict[str, Any], key: str) -> float | None:
    """``key`` of a run's metrics; for a validation-only run its validation H and CZSL (no U, S)."""
    if metrics.get("validation_only"):
        value = {Key.H: metrics.get("val_h"), Key.CZSL: metrics.get("val_czsl")}.get(key)
        return None if value is None else float(value)
    return float(metrics[key])


def summary_table(results: list[RunResult], label_header: str = "row") -> str:
    """Markdown: one line per label, mean ± std (in %) of CZSL, U, S, H over its seeds."""
    labels = list(dict.fromkeys(r.label for r in results))
    header = f"| {label_header} | seeds | CZSL | U | S | H | selection |\n|---|---|---|---|---|---|---|\n"
    lines = []
    for label in labels:
        group = [r for r in results if r.label == label]
        cells = []
        for key in METRIC_KEYS:
            values = [100 * v for r in group if (v := scored(r.metrics, key)) is not None]
            m, s = mean_std(values) if values else (float("nan"), 0.0)
            cells.append(f"{m:.1f} ± {s:.1f}" if values else "–")
        selection = sorted(
            {
                "val, validation only: validation scores"
                if r.metrics.get("validation_only")
                else str(r.metrics.get("selection", "?"))
                for r in group
            }
        )
        lines.append(
            f"| {label} | {len(group)} | " + " | ".join(cells) + f" | {', '.join(selection)} |"
        )
    return header + "\n".join(lines) + "\n"


#: Fig. 8 of the paper: the values each loss weight is swept over by default.
DEFAULT_SWEEPS: dict[str, list[float]] = {
    "loss.lambda_cal": [0.0, 0.05, 0.1, 0.2, 0.4, 0.8],
    "loss.lambda_edl": [0.0, 0.0001, 0.001, 0.01, 0.1],
}


def sweep(
    base: Config,
    out: Path,
    key: str,
    values: list[Any],
    seeds: list[int] | None = None,
    trainer: Callable[[Config, Path], dict[str, Any]] | None = None,
) -> list[RunResult]:
    """Train ``base`` with ``key`` set to each value (and each seed), in ``out/<key>=<value>/seed<N>``.

    It runs on `crest tune`'s machinery: a grid study over (value, seed) in ``out/study.db``
    (Optuna's GridSampler), each grid point one run. The study records every run with the H it
    reports (a record, not a selection: a sweep chooses nothing); the runs themselves are
    resumable as ever, and the results come back in the order of ``values`` and ``seeds``."""
    import optuna

    from crest.run_lock import RunLock
    from crest.tune.folder import StudyFolder
    from crest.tune.study import FOLDER, mark_interrupted, open_study

    seeds = seeds or [0]

    def point(value: Any, seed: int) -> tuple[Config, Path]:
        cfg = apply_overrides(
            config_from_dict(base.to_dict()), [f"{key}={value}", f"train.seed={seed}"]
        )
        return cfg, out / f"{key}={value}" / f"seed{seed}"

    done: dict[tuple[str, int], dict[str, Any]] = {}

    def objective(trial: optuna.Trial) -> float:
        value = trial.suggest_categorical(key, values)
        seed = int(trial.suggest_categorical("train.seed", seeds))
        cfg, folder = point(value, seed)
        trial.set_user_attr(FOLDER, str(folder.relative_to(out)))
        log.info("sweep %s=%s seed %d → %s", key, value, seed, folder)
        done[str(value), seed] = metrics = run_once(cfg, folder, trainer)
        h = scored(metrics, Key.H) if Key.H in metrics or "val_h" in metrics else None
        return float("nan") if h is None else h

    grid = optuna.samplers.GridSampler({key: list(values), "train.seed": list(seeds)}, seed=0)
    with RunLock(out):  # one sweep per folder: then a running trial is a dead one
        study = open_study(StudyFolder(out), grid)
        mark_interrupted(study)  # its run resumes below, from its own checkpoint
        if not grid.is_exhausted(study):
            study.optimize(objective, n_trials=len(values) * len(seeds))
    results = []
    for value in values:
        for seed in seeds:
            cfg, folder = point(value, seed)
            metrics = done.get((str(value), seed))
            if metrics is None:  # run by an earlier call, or interrupted there
                metrics = run_once(cfg, folder, trainer)
            results.append(RunResult(f"{value}", seed, folder, metrics))
    return results
