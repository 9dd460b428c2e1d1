"""Attribute names, read from every file kind that holds them: a plain or numbered list (CUB's
``attributes.txt``, AWA2's ``predicates.txt``), SUN's ``attributes.mat``, DAZLE's ``new_des.csv``,
a benchmark file's ``attribute_names``, and the attributes folder of a dataset. One reader per
file kind, used by the importers, `crest data embed-attributes` and the synthetic worlds."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from crest.errors import DataError

_NUMBERED = re.compile(r"^\s*(\d+)\s+(\S.*?)\s*$")
_NAME_COLUMN = "new_des"
#: the names file of a dataset's attributes folder, in the order they are looked for
FOLDER_NAME_FILES = ("attributes.txt", "predicates.txt", "attributes.mat")


def read_attribute_names(path: str | Path) -> list[str]:
    """Attribute names from a names file, in file order.

    Accepted: a plain list (one name per line); a numbered list (CUB ``attributes.txt``
    ``1 has_bill_shape::...``, AWA2 ``predicates.txt`` ``1<TAB>black``), recognised when every
    line starts with the numbers 1, 2, 3, ... in order; SUN's ``attributes.mat`` (key
    ``attributes``); a ``new_des.csv`` (column ``new_des``, the cleaned phrases of DAZLE).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "file not found")
    if path.suffix == ".mat":
        names = _names_from_mat(path)
    elif path.suffix == ".csv":
        names = _names_from_csv(path)
    else:
        names = _names_from_lines(path)
    if not names:
        raise DataError(path, "attribute names", "no names found; expected one name per line")
    return names


def _names_from_lines(path: Path) -> list[str]:
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise DataError(path, None, f"not a UTF-8 text file of names: {exc}") from exc
    matches = [_NUMBERED.match(line) for line in lines]
    numbered = bool(lines) and all(
        m is not None and int(m.group(1)) == i for i, m in enumerate(matches, start=1)
    )
    if numbered:
        return [m.group(2) for m in matches if m is not None]
    return [line.strip() for line in lines]


def _names_from_csv(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or _NAME_COLUMN not in reader.fieldnames:
            raise DataError(
                path,
                "header",
                f"got columns {reader.fieldnames}; expected a '{_NAME_COLUMN}' column",
            )
        return [row[_NAME_COLUMN].strip() for row in reader]


def _names_from_mat(path: Path) -> list[str]:
    import scipy.io as sio

    try:
        mat = sio.loadmat(path)
    except Exception as exc:  # scipy raises several types for a damaged file
        raise DataError(path, None, f"not a readable MATLAB file: {exc}") from exc
    if "attributes" not in mat:
        raise DataError(path, "attributes", "missing; expected a cell array of attribute names")
    return [str(np.asarray(c).ravel()[0]).strip() for c in mat["attributes"].ravel()]


def names_from_benchmark(path: str | Path) -> list[str]:
    """The ``attribute_names`` of a benchmark HDF5 file (without reading anything else)."""
    from crest.data.schema.hdf5 import open_h5

    path = Path(path)
    with open_h5(path) as f:
        if "attribute_names" not in f:
            raise DataError(
                path, "attribute_names", "missing; this benchmark file stores no attribute names"
            )
        raw = np.asarray(f["attribute_names"][()]).ravel()
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in raw]


def attribute_names_for(
    attributes_folder: str | Path, dataset: str, num_attributes: int
) -> list[str]:
    """Attribute names from an attributes folder (CUB attributes.txt, AWA2 predicates.txt, SUN
    attributes.mat); ``attribute_<i>`` placeholders when the folder has none."""
    folder = Path(attributes_folder)
    found = [folder / n for n in FOLDER_NAME_FILES if (folder / n).exists()]
    if not found:
        return [f"attribute_{i}" for i in range(num_attributes)]
    names = read_attribute_names(found[0])
    if len(names) != num_attributes:
        raise DataError(
            found[0],
            "attribute names",
            f"{len(names)} names for {num_attributes} attributes of {dataset}",
        )
    return names
