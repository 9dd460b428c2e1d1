"""Attribute word vectors from `.pkl` (restricted unpickling: numpy arrays only) or `.npy`."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from crest.errors import DataError
from crest.safe_load import load_npy

# The only globals a pickled numpy array needs. Anything else (os.system, builtins.eval, ...)
# is refused, so a hostile .pkl cannot run code.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global '{module}.{name}' (only numpy arrays are allowed)"
        )


def load_pickled_array(path: str | Path) -> np.ndarray:
    """Unpickle a numpy array from ``path`` without allowing any other object to be built."""
    path = Path(path)
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except FileNotFoundError as exc:
        raise DataError(path, None, "file not found") from exc
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise DataError(
            path, None, f"not a pickled numpy array (refused to unpickle): {exc}"
        ) from exc
    if not isinstance(obj, np.ndarray):
        raise DataError(path, None, f"holds a {type(obj).__name__}; expected a numpy array")
    return obj


def load_attribute_vectors(path: str | Path, num_attributes: int | None = None) -> np.ndarray:
    """Attribute vectors (A, D_w) as float32 from a ``.pkl`` or ``.npy`` file.

    ``.npy`` is read with ``allow_pickle=False``. Rows are returned as stored (the model
    normalises them); an all-zero row (a word with no vector, as in SUN) is kept.
    """
    path = Path(path)
    if path.suffix == ".npy":
        arr = load_npy(path, "attribute vectors")
    elif path.suffix == ".pkl":
        arr = load_pickled_array(path)
    else:
        raise DataError(path, None, "unknown attribute-vector format; expected .pkl or .npy")
    if arr.dtype.kind not in "fiu":
        raise DataError(path, "attribute vectors", f"dtype {arr.dtype}; expected real numbers")
    if arr.ndim != 2:
        raise DataError(path, "attribute vectors", f"shape {arr.shape}; expected (attributes, dim)")
    if num_attributes is not None and arr.shape[0] != num_attributes:
        raise DataError(
            path,
            "attribute vectors",
            f"{arr.shape[0]} rows; expected {num_attributes} (one per attribute)",
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(path, "attribute vectors", "contains NaN/inf; expected finite numbers")
    return arr.astype(np.float32)
