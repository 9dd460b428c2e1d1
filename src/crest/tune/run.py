"""`crest tune`: an Optuna study of one model on its validation classes (docs/tune.md).

Every trial is a ``train.validation_only`` run of the model's recipe with the trial's values (the
test split is never read), scored by the validation H selection chooses (best epoch, γ and μ).
TPE (seeded) proposes the values, a median pruner stops trials that fall behind epoch by epoch,
and the study lives in ``DIR/study.db``: a killed or finished study resumes, and ``trials`` is
the total to reach. The first trial runs the recipe as it is, so the tuned config is never
worse on validation than the recipe.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from crest.config import Config, dataset_of, load_config
from crest.errors import ConfigError, CrestError
from crest.models.registry import recipe, search_space
from crest.models.search_space import SearchSpace
from crest.run_lock import RunLock
from crest.tune.best import write_best
from crest.tune.folder import StudyFolder
from crest.tune.objective import make_objective
from crest.tune.report import write_report
from crest.tune.study import (
    EPOCHS,
    RECIPE,
    budget_used,
    mark_interrupted,
    open_study,
    retry_interrupted,
    run_trials,
)

log = logging.getLogger(__name__)
PRUNERS = ("median", "none")


@dataclass(frozen=True)
class TuneSettings:
    """One study: the model, the budget, the data and how trials are proposed and pruned."""

    model: str
    trials: int  # the total to reach (a resumed study grows to it)
    out: Path
    config: str | None = None  # dataset config whose model recipe is tuned (default synthetic)
    overrides: tuple[str, ...] = ()  # --set: the keys set here are held fixed, not searched
    epochs: int | None = None  # every trial's epoch budget (default: the recipe's train.epochs)
    seed: int = 0  # the sampler's; the trainings keep train.seed (every trial the same)
    startup_trials: int = 5  # trials drawn at random before TPE models the results
    pruner: str = "median"  # or none
    prune_startup: int = 3  # completed trials before any trial is pruned
    prune_warmup: int | None = None  # epochs never pruned (default: a quarter of the budget)
    keep_checkpoints: bool = False  # a trial that ended keeps its checkpoints (disk: see objective)


@dataclass
class TuneResult:
    folder: StudyFolder
    model: str
    trials: list[FrozenTrial]
    best: FrozenTrial | None
    epochs: int


def base_config(s: TuneSettings) -> tuple[Config, SearchSpace]:
    """The model's recipe for the dataset with the user's overrides as a validation-only run,
    and its search space less the keys those overrides fix."""
    if s.trials < 1:
        raise ConfigError(f"--trials {s.trials}: expected at least 1")
    user = list(s.overrides)
    for item in user:
        if item.replace(" ", "").startswith(("train.selection=", "train.validation_only=")):
            raise ConfigError(
                f"--set {item}: every trial is a train.validation_only run under selection val "
                "(the test split is never read while tuning); leave these keys to crest tune"
            )
    epochs = [f"train.epochs={s.epochs}"] if s.epochs is not None else []
    cfg = load_config(
        s.config,
        [
            *recipe(s.model, dataset_of(s.config)),
            *user,
            *epochs,
            "train.selection=val",
            "train.validation_only=true",
        ],
    )
    fixed = {item.partition("=")[0].strip() for item in user}
    space = search_space(s.model)
    held = sorted(fixed & set(space.keys))
    if held:
        log.info("held fixed by --set, not searched: %s", ", ".join(held))
    space = space.without(fixed)
    if not space.params:
        raise ConfigError(f"--set fixes every key of {s.model}'s search space: nothing to tune")
    return cfg, space


def make_pruner(s: TuneSettings, epochs: int) -> optuna.pruners.BasePruner:
    if s.pruner not in PRUNERS:
        raise ConfigError(f"--pruner {s.pruner!r}; expected one of {', '.join(PRUNERS)}")
    if s.pruner == "none":
        return optuna.pruners.NopPruner()
    warmup = epochs // 4 if s.prune_warmup is None else s.prune_warmup
    # Optuna prunes from step n_warmup_steps on; epochs are steps 1, 2, …: epochs ≤ warmup are safe
    return optuna.pruners.MedianPruner(n_startup_trials=s.prune_startup, n_warmup_steps=warmup + 1)


def _identity(cfg: Config, space: SearchSpace, model: str) -> dict[str, Any]:
    """What makes a study one search: resuming it with anything else is refused."""
    return json.loads(
        json.dumps(
            {
                "model": model,
                "config": cfg.to_dict(),
                "space": [[p.key, p.low, p.high, p.log] for p in space.params],
            }
        )
    )


def _check_same_search(study: optuna.Study, identity: dict[str, Any], folder: StudyFolder) -> None:
    saved = study.user_attrs.get("search")
    if saved is None:
        study.set_user_attr("search", identity)
        return
    # a config key added to crest after the study began is not a change of search: it keeps
    # its default, which is what the study's trials ran with
    have = saved["config"]
    config = {
        section: {k: v for k, v in values.items() if k in have[section]}
        if isinstance(values, dict)
        else values
        for section, values in identity["config"].items()
        if section in have
    }
    identity = {**identity, "config": config}
    if saved == identity:
        return
    if saved["model"] != identity["model"]:
        why = f"model {identity['model']} (study: {saved['model']})"
    elif saved["space"] != identity["space"]:
        why = "the search space (a --set that fixes another key, or a changed space)"
    else:
        have, want = saved["config"], identity["config"]
        keys = [
            f"{section}.{key}={want[section][key]!r} (study: {have.get(section, {}).get(key)!r})"
            for section in want
            if isinstance(want[section], dict)
            for key in want[section]
            if want[section][key] != have.get(section, {}).get(key)
        ]
        why = ", ".join(keys[:4]) or "the config name"
    raise CrestError(
        f"{folder.root}: holds a study of another search; refusing to change {why}. Resume it "
        "with the same --model, --config, --set and --epochs (only --trials may grow), or "
        "choose another --out"
    )


def _enqueue_recipe(study: optuna.Study, cfg: Config, space: SearchSpace) -> None:
    """The study's first trial: the recipe's own values, so that the best trial is never worse
    on validation than the recipe it started from."""
    values = space.values_in(cfg)
    outside = [p.key for p in space.params if not p.contains(values[p.key])]
    if outside:
        log.warning("the recipe's %s lie outside the search space: not run as trial 0", outside)
        return
    study.enqueue_trial(values, user_attrs={RECIPE: True})


def _progress(total: int) -> Any:
    def report(study: optuna.Study, trial: FrozenTrial) -> None:
        epochs = trial.user_attrs.get(EPOCHS, "?")
        if trial.state == TrialState.COMPLETE:
            outcome = f"validation H {100 * float(trial.value or 0.0):.1f}% ({epochs} epochs)"
        elif trial.state == TrialState.PRUNED:
            outcome = f"pruned after {epochs} epoch(s)"
        else:
            outcome = trial.state.name.lower()
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        best = max(done, key=lambda t: float(t.value or 0.0), default=None)
        tail = (
            ""
            if best is None
            else f"; best {100 * float(best.value or 0.0):.1f}% (trial {best.number})"
        )
        log.info("trial %d [%d/%d]: %s%s", trial.number, budget_used(study), total, outcome, tail)

    return report


def tune(s: TuneSettings, pruner: optuna.pruners.BasePruner | None = None) -> TuneResult:
    """Run (or resume) the study of ``s`` until ``s.trials`` trials count toward its budget,
    then write ``best.yaml`` and ``report.md``. ``pruner`` replaces the one ``s`` names."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise CrestError(
            "crest tune runs its trials one after another in one process; start it without "
            "torchrun (each trial then uses the device train.device picks)"
        )
    cfg, space = base_config(s)
    epochs = cfg.train.epochs
    folder = StudyFolder(s.out)
    with RunLock(folder.root):  # one process per study: then a running trial is a dead one
        sampler = optuna.samplers.TPESampler(
            seed=s.seed, n_startup_trials=s.startup_trials, multivariate=True
        )
        study = open_study(folder, sampler, pruner or make_pruner(s, epochs))
        _check_same_search(study, _identity(cfg, space, s.model), folder)
        mark_interrupted(study)
        retry_interrupted(study)
        if not study.get_trials(deepcopy=False):
            _enqueue_recipe(study, cfg, space)
        log.info(
            "tuning %s: %d of %d trials done, %d epochs each, on %s",
            s.model,
            budget_used(study),
            s.trials,
            epochs,
            cfg.data.path or "the default synthetic world",
        )
        run_trials(
            study,
            make_objective(cfg, space, folder, s.keep_checkpoints),
            s.trials,
            lambda n: optuna.samplers.TPESampler(
                seed=s.seed + n, n_startup_trials=s.startup_trials, multivariate=True
            ),
            _progress(s.trials),
        )
        trials = study.get_trials()
        best = _best(trials)
        if best is not None:
            write_best(folder, cfg, best, s.model, budget_used(study))
        write_report(folder, s.model, cfg, space, trials, best, study)
    return TuneResult(folder, s.model, trials, best, epochs)


def _best(trials: list[FrozenTrial]) -> FrozenTrial | None:
    """The completed trial of the highest validation H (ties: the earlier trial)."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return max(done, key=lambda t: (float(t.value or 0.0), -t.number), default=None)
