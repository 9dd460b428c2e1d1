"""One trial of a study: sample the model's search space, train a validation-only run in the
trial's own folder, report each epoch's validation H to the pruner, return the chosen one."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from crest.config import Config, apply_overrides, config_from_dict, validate_config
from crest.engine.selection import val_score
from crest.errors import TrainingDiverged
from crest.experiments import run_once
from crest.metrics import Key
from crest.models.search_space import SearchSpace
from crest.run_folder import RunFolder
from crest.tune.folder import StudyFolder
from crest.tune.study import DIVERGED, EPOCHS, FOLDER, INTERRUPTED

#: what a finished trial keeps of its run's metrics.json (validation's choice)
KEPT = ("val_epoch", "val_gamma", "val_mu", "val_czsl")


def overrides_of(params: dict[str, Any]) -> list[str]:
    """``--set`` strings of sampled values (``repr`` keeps every digit of a float)."""
    return [f"{key}={value!r}" for key, value in params.items()]


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, float]:
    return {p.key: trial.suggest_float(p.key, p.low, p.high, log=p.log) for p in space.params}


@dataclass
class EpochReporter:
    """The trainer's epoch hook: each validation epoch's H (best over γ, and μ, as selection
    scores it) goes to the pruner, which may stop the trial there."""

    trial: optuna.Trial
    epochs: int = 0
    reported: set[int] = field(default_factory=set)

    def __call__(self, entry: dict[str, Any]) -> None:
        if entry.get("phase") != "val":
            return
        epoch = int(entry["epoch"])
        self.epochs = max(self.epochs, epoch)
        if Key.BEST_H not in entry or epoch in self.reported:  # not evaluated (train.eval_every)
            return
        self.trial.report(val_score(entry), epoch)
        self.reported.add(epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"validation H below the median of earlier trials at epoch {epoch}"
            )

    def replay(self, history: list[dict[str, Any]]) -> None:
        """The epochs an interrupted run of this trial had already trained."""
        for entry in history:
            self(entry)


def make_objective(
    base: Config, space: SearchSpace, folder: StudyFolder, keep_checkpoints: bool = False
) -> Callable[[optuna.Trial], float]:
    """The study's objective: ``base`` (a validation-only config) with the trial's values."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)
        cfg = apply_overrides(
            config_from_dict(base.to_dict()), overrides_of(params), f"trial {trial.number}"
        )
        validate_config(cfg, f"trial {trial.number}")
        name = str(trial.user_attrs.get(FOLDER) or StudyFolder.trial_name(trial.number))
        trial.set_user_attr(FOLDER, name)
        run = RunFolder(folder.root / name)
        reporter = EpochReporter(trial)
        try:
            reporter.replay(run.read_history())
            metrics = run_once(cfg, run.root, on_epoch=reporter)
        except optuna.TrialPruned:
            trial.set_user_attr(EPOCHS, reporter.epochs)
            _drop_checkpoints(run, keep_checkpoints)
            raise
        except TrainingDiverged as exc:
            # a setting that makes the loss non-finite is a bad setting: pruned, so that the
            # sampler learns to avoid it and the trial counts toward the budget
            trial.set_user_attr(EPOCHS, reporter.epochs)
            trial.set_user_attr(DIVERGED, str(exc))
            _drop_checkpoints(run, keep_checkpoints)
            raise optuna.TrialPruned(f"diverged: {exc}") from exc
        except BaseException:
            # not the settings' fault: asked again, resuming from the checkpoints kept here
            trial.set_user_attr(INTERRUPTED, True)
            raise
        _drop_checkpoints(run, keep_checkpoints)
        history = run.read_history()
        trial.set_user_attr(
            EPOCHS, max((int(e["epoch"]) for e in history if e.get("phase") == "val"), default=0)
        )
        for key in KEPT:
            if metrics.get(key) is not None:
                trial.set_user_attr(key, metrics[key])
        return float(metrics["val_h"])

    return objective


def _drop_checkpoints(run: RunFolder, keep: bool) -> None:
    """A trial that ended (completed, pruned) is never resumed, and its validation-phase model
    is not the one to report (``best.yaml`` retrains it): its checkpoints only take disk space
    (hundreds of MB per trial at CUB's scale). Its config and history stay."""
    if not keep and run.checkpoints.exists():
        shutil.rmtree(run.checkpoints, ignore_errors=True)
