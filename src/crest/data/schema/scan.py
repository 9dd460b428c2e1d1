"""`crest data info --check-features`: read every feature row once, in chunks, and find the first
one holding NaN or inf (training would otherwise stop at it, possibly hours in)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from crest.data.schema.hdf5 import open_h5

#: rows per read: a few MB at the CUB shape (2048 × 7 × 7 float16 is 200 KB a row)
SCAN_CHUNK = 64


def first_nonfinite_row(path: str | Path, chunk: int = SCAN_CHUNK) -> int | None:
    """The first row of ``feature_map`` with a NaN or inf value, or None when all are finite."""
    with open_h5(path) as f:
        fmap = f["feature_map"]
        n = int(fmap.shape[0])
        with tqdm(total=n, desc="checking features", unit="row", disable=None) as bar:
            for start in range(0, n, chunk):
                block = np.asarray(fmap[start : start + chunk])
                bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
                if bad.any():
                    return start + int(np.argmax(bad))
                bar.update(len(block))
    return None
