"""Errors a user can act on: each names the file, the field and what was expected."""

from __future__ import annotations

from pathlib import Path


class CrestError(Exception):
    """Base class of every error the project raises on purpose."""


class DataError(CrestError, ValueError):
    """A data file is missing something, or holds something other than what is expected.

    The message always reads ``FILE: field 'FIELD': PROBLEM`` so that the user knows
    where to look without a traceback.
    """

    def __init__(
        self, path: str | Path | None, field: str | None = None, problem: str | None = None
    ) -> None:
        if problem is None:
            # one formatted message: how DataLoader workers re-raise an error in the main process
            # (their text ends with the worker's traceback; keep only the error's own line)
            message = str(path)
            marker = "DataError: "
            if marker in message:
                message = message.rsplit(marker, 1)[1].strip()
            self.path, self.field, self.problem = None, None, message
            super().__init__(message)
            return
        self.path = None if path is None else Path(path)
        self.field = field
        self.problem = problem
        where = str(self.path) if self.path is not None else "<in memory>"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{problem}")


class ConfigError(CrestError, ValueError):
    """A configuration value is unknown or has the wrong type or range."""


class TrainingDiverged(CrestError):
    """The training loss became NaN or infinite (the settings, not the data: a tuner scores
    such a trial as a failed setting and goes on)."""
