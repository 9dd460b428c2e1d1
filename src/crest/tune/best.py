"""The best trial as a config file: ``crest train --config DIR/best.yaml`` trains it under the
full `val` protocol (epoch, γ and μ chosen on the validation classes, retrained on trainval,
scored once on test), and ``crest compare --tuned DIR`` reads it."""

from __future__ import annotations

from optuna.trial import FrozenTrial

from crest.atomic import write_text_atomic
from crest.config import Config, apply_overrides, config_from_dict, dump_config, load_config
from crest.tune.folder import StudyFolder
from crest.tune.objective import overrides_of


def best_config(base: Config, trial: FrozenTrial) -> Config:
    """``base`` (the study's validation-only config) with the trial's values, as a full run."""
    cfg = apply_overrides(config_from_dict(base.to_dict()), overrides_of(trial.params))
    cfg.train.validation_only = False
    cfg.name = f"{base.name}-tuned"
    return cfg


def write_best(
    folder: StudyFolder, base: Config, trial: FrozenTrial, model: str, trials: int
) -> Config:
    cfg = best_config(base, trial)
    value = 100 * float(trial.value or 0.0)
    header = (
        f"# crest tune: the best of {trials} trials of {model} (trial {trial.number}, validation "
        f"H {value:.1f}%, {cfg.train.epochs} epochs per trial)\n"
        f"# train it: crest train --config {folder.best}\n"
    )
    write_text_atomic(folder.best, header + dump_config(cfg))
    load_config(str(folder.best))  # what was written reads back as a valid config
    return cfg
