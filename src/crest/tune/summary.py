"""What a finished study gives `crest compare --tuned`: its model, its best config and the budget
it was tuned with (trials × epochs), read from the study folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crest.config import load_config
from crest.errors import ConfigError
from crest.tune.folder import StudyFolder


@dataclass(frozen=True)
class StudySummary:
    model: str
    best: Path  # best.yaml
    trials: int  # trials that count toward the budget
    epochs: int  # each trial's epoch budget

    @property
    def budget(self) -> str:
        return f"{self.trials} trials × {self.epochs} epochs"


def read_study(root: str | Path) -> StudySummary:
    """The summary of the study in ``root``; a folder without a finished study is refused."""
    import optuna

    from crest.tune.study import budget_used

    folder = StudyFolder(root)
    if not folder.best.is_file() or not folder.database.is_file():
        raise ConfigError(
            f"{folder.root}: no {StudyFolder.BEST} and {StudyFolder.DATABASE}; expected the "
            "folder of a `crest tune` study with at least one completed trial"
        )
    cfg = load_config(str(folder.best))
    study = optuna.load_study(study_name=StudyFolder.STUDY_NAME, storage=folder.storage_url)
    return StudySummary(cfg.model.name, folder.best, budget_used(study), cfg.train.epochs)
