"""A reader that records every ``feature_map`` row a process reads, at h5py's level (below every
crest reader: the cache, streamed batches, an initialisation sample), for tests that prove a
split is never read.

In this process: ``install(rows.extend, monkeypatch.setattr)``. In a child process (the real
`crest` executable): ``child_env(log_file)`` gives it a ``sitecustomize`` that installs the
recorder at start-up and appends each read's rows to ``log_file``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

FEATURES = "/feature_map"


def rows_of(selection: Any, n: int) -> np.ndarray:
    """The rows an h5py selection of a dataset of ``n`` rows reads (its first axis)."""
    first = selection[0] if isinstance(selection, tuple) and selection else selection
    if (isinstance(selection, tuple) and not selection) or first is Ellipsis:
        return np.arange(n)
    if isinstance(first, slice):
        return np.arange(n)[first]
    return np.asarray(first, dtype=np.int64).reshape(-1)


def install(record: Callable[[list[int]], Any], patch: Callable[..., Any] = setattr) -> None:
    getitem, read_direct = h5py.Dataset.__getitem__, h5py.Dataset.read_direct

    def recording_getitem(self: h5py.Dataset, args: Any, new_dtype: Any = None) -> Any:
        if self.name == FEATURES:
            record(rows_of(args, self.shape[0]).tolist())
        return getitem(self, args, new_dtype)

    def recording_read_direct(
        self: h5py.Dataset, dest: Any, source_sel: Any = None, dest_sel: Any = None
    ) -> Any:
        if self.name == FEATURES:
            record(
                rows_of(slice(None) if source_sel is None else source_sel, self.shape[0]).tolist()
            )
        return read_direct(self, dest, source_sel, dest_sel)

    patch(h5py.Dataset, "__getitem__", recording_getitem)
    patch(h5py.Dataset, "read_direct", recording_read_direct)


def append_to(path: Path) -> Callable[[list[int]], None]:
    def record(rows: list[int]) -> None:
        with open(path, "a") as fh:
            fh.write(" ".join(map(str, rows)) + "\n")

    return record


def read_log(path: Path) -> set[int]:
    if not path.exists():
        return set()
    return {int(r) for line in path.read_text().splitlines() for r in line.split()}


SITECUSTOMIZE = """\
import os
if os.environ.get("CREST_TEST_ROW_LOG"):
    import row_recorder
    from pathlib import Path
    row_recorder.install(row_recorder.append_to(Path(os.environ["CREST_TEST_ROW_LOG"])))
"""


def child_env(site: Path, log_file: Path) -> dict[str, str]:
    """The environment of a child process that records its rows into ``log_file``: a
    ``sitecustomize`` in ``site`` (a fresh folder) and this folder on its PYTHONPATH."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    here = Path(__file__).parent
    path = os.pathsep.join([str(site), str(here), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "CREST_TEST_ROW_LOG": str(log_file)}
