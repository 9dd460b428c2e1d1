"""Where the project finds shared data and keeps its caches (both overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the folder with ``xlsa17/`` and ``attributes/`` (the real class sides).
DATA_ENV = "CREST_DATA"
#: Environment variable naming the folder where generated worlds and other caches go.
CACHE_ENV = "CREST_CACHE"


def data_root() -> Path:
    """The shared data folder: ``$CREST_DATA``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data"


def cache_dir() -> Path:
    """A writable cache folder: ``$CREST_CACHE``, else ``$XDG_CACHE_HOME/crest`` or ``~/.cache/crest``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "crest"
    path.mkdir(parents=True, exist_ok=True)
    return path
