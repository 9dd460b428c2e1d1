"""An Optuna study in a folder's SQLite file: opened or resumed, its interrupted trials found
and asked again, its budget counted. `crest tune` and `crest sweep` both run on this."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from crest.errors import CrestError
from crest.tune.folder import StudyFolder

log = logging.getLogger(__name__)

#: user attributes of a trial (the names the report and a resumed study read)
FOLDER = "folder"  # its run folder, relative to the study folder
INTERRUPTED = "interrupted"  # it ended for no fault of its settings (killed, an error): asked again
RETRY_OF = "retry_of"  # the interrupted trial whose settings (and run folder) it takes over
EPOCHS = "epochs"  # validation epochs it trained (below the budget when pruned)
DIVERGED = "diverged"  # why its loss became non-finite (scored as pruned)
RECIPE = "recipe"  # it runs the model's recipe as it is (the study's first trial)


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines off: crest logs one line per trial (or sweep run) itself."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_study(
    folder: StudyFolder,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """The folder's study, created on first use; a study that exists is loaded as it is (every
    finished trial kept), so a killed or finished study goes on where it stopped."""
    folder.root.mkdir(parents=True, exist_ok=True)
    try:
        storage = optuna.storages.RDBStorage(folder.storage_url)
    except Exception as exc:  # sqlalchemy's errors: not a database, a newer schema, ...
        raise CrestError(
            f"{folder.database}: cannot be opened as an Optuna study ({exc}); expected the "
            "study.db a `crest tune` or `crest sweep` wrote"
        ) from exc
    return optuna.create_study(
        storage=storage,
        study_name=StudyFolder.STUDY_NAME,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )


def mark_interrupted(study: optuna.Study) -> list[FrozenTrial]:
    """Fail the trials a killed process left running, flagged as interrupted.

    The caller holds the study folder's lock, so no live process runs any of them."""
    # Optuna offers no public way to end a trial another process started: its storage does it
    storage = study._storage
    study_id = storage.get_study_id_from_name(study.study_name)
    left = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in left:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, INTERRUPTED, True)  # before it is finished
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        log.warning("trial %d was interrupted (the study was stopped during it)", trial.number)
    return left


def retry_interrupted(study: optuna.Study) -> list[int]:
    """Ask every interrupted trial again, once: the same settings in the same run folder (the
    run resumes from its last checkpoint). Returns the numbers of the trials asked again."""
    retried = {t.user_attrs.get(RETRY_OF) for t in study.get_trials(deepcopy=False)}
    again = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if not trial.user_attrs.get(INTERRUPTED) or trial.number in retried:
            continue
        attrs: dict[str, Any] = {RETRY_OF: trial.number}
        if FOLDER in trial.user_attrs:
            attrs[FOLDER] = trial.user_attrs[FOLDER]
        if trial.user_attrs.get(RECIPE):
            attrs[RECIPE] = True
        study.enqueue_trial(trial.params, user_attrs=attrs)
        again.append(trial.number)
    if again:
        log.info("asking again the interrupted trial(s) %s", ", ".join(map(str, again)))
    return again


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """A trial that ended on its settings' merits: completed, pruned, or failed other than by
    an interruption (an interrupted one is asked again, and its retry counts)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and not trial.user_attrs.get(INTERRUPTED)


def budget_used(study: optuna.Study) -> int:
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    total: int,
    sampler_for: Callable[[int], optuna.samplers.BaseSampler],
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> None:
    """Run trials one at a time until ``total`` count toward the budget.

    Before each, the sampler is made afresh from the number of trials the study holds, so that
    the trials asked are a function of the study's content, not of how often it was resumed."""
    while budget_used(study) < total:
        study.sampler = sampler_for(len(study.get_trials(deepcopy=False)))
        callbacks = [on_trial] if on_trial is not None else None
        study.optimize(objective, n_trials=1, callbacks=callbacks)
