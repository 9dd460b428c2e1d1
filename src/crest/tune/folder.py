"""The layout of a study folder: every file name `crest tune` writes lives here."""

from __future__ import annotations

from pathlib import Path


class StudyFolder:
    """``DIR/study.db`` (the Optuna study), ``DIR/trials/NNNN/`` (one run folder per trial),
    ``DIR/best.yaml``, ``DIR/report.md`` and ``DIR/history.png``."""

    DATABASE = "study.db"
    TRIALS = "trials"
    BEST = "best.yaml"
    REPORT = "report.md"
    HISTORY = "history.png"
    #: the one study a folder holds (Optuna names studies inside its database)
    STUDY_NAME = "crest"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.database = self.root / self.DATABASE
        self.trials = self.root / self.TRIALS
        self.best = self.root / self.BEST
        self.report = self.root / self.REPORT
        self.history = self.root / self.HISTORY

    @property
    def storage_url(self) -> str:
        """SQLAlchemy's URL of the database (an absolute path: the URL must not depend on the
        working directory of whoever resumes the study)."""
        return f"sqlite:///{self.database.resolve()}"

    @classmethod
    def trial_name(cls, number: int) -> str:
        """The run folder of trial ``number``, relative to the study folder."""
        return f"{cls.TRIALS}/{number:04d}"
