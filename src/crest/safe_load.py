"""Reading untrusted array and tensor files without ever running code from them: ``.npy`` with
``allow_pickle=False`` and torch files with ``weights_only=True``, each failure told as one line
that names the file and what was expected (and never torch's advice to load unsafely)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crest.errors import DataError

#: the first bytes of every file ``numpy.save`` writes
NPY_MAGIC = b"\x93NUMPY"


def plain_file(path: Path) -> None:
    """``path`` is an existing regular file (not a folder), or a DataError says what it is."""
    if not path.exists():
        raise DataError(path, None, "file not found")
    if path.is_dir():
        raise DataError(path, None, "is a folder; expected a file")


def load_npy(path: str | Path, field: str = "array") -> np.ndarray:
    """A plain numeric ``.npy`` array (no pickled objects, no strings)."""
    path = Path(path)
    plain_file(path)
    with open(path, "rb") as fh:
        head = fh.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        raise DataError(path, None, "not a .npy file (no NumPy header); expected numpy.save output")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                path, field, "holds Python objects (pickled); expected a numeric array"
            ) from exc
        raise DataError(path, field, f"not a readable .npy array: {exc}") from exc
    except OSError as exc:
        raise DataError(path, field, f"cannot be read (truncated?): {exc}") from exc
    if arr.dtype.kind not in "fiu":
        raise DataError(path, field, f"dtype {arr.dtype}; expected real numbers")
    return arr


def refused(exc: BaseException) -> bool:
    """Whether ``torch.load(weights_only=True)`` refused the file (rather than failed to read it)."""
    text = str(exc)
    return "Weights only load failed" in text or "WeightsUnpickler" in text


def refusal(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line, without torch's advice
    (which suggests loading it unsafely)."""
    text = str(exc)
    if refused(exc):
        reasons = [
            line.split("WeightsUnpickler error:", 1)[-1].strip()
            for line in text.splitlines()
            if any(w in line for w in ("WeightsUnpickler error", "GLOBAL", "Unsupported"))
        ]
        why = f" ({reasons[0].rstrip('.')})" if reasons else ""
        return (
            "refused: it holds Python objects that only an unrestricted unpickler would build"
            f"{why}; crest reads model files with weights_only=True and never runs code from a file"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"not a readable torch file (truncated or corrupt?): {first}"


def load_torch(path: str | Path, field: str | None = None, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a refusal or a damaged file is a DataError."""
    import torch

    path = Path(path)
    plain_file(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, zip errors ...
        # a refusal's own text advises loading the file unsafely: it is not chained into the
        # traceback a library user sees (a damaged file keeps its cause)
        raise DataError(path, field, refusal(exc)) from (None if refused(exc) else exc)
