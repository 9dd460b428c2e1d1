"""The xlsa17 class side (Xian et al.): `att_splits.mat`, class lists, `images.csv`.

Conventions handled here, once: MATLAB `*_loc` are 1-based; `att` is A x C (one column per
class); CUB's `att_splits.mat` lacks train/val locs, which then come from `sent_splits.mat`;
the original train/val locs overlap `test_seen_loc`, and the clean protocol removes it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io as sio

from crest.data.schema.benchmark import ClassMatrix
from crest.errors import DataError

LOC_KEYS = ("trainval_loc", "test_seen_loc", "test_unseen_loc", "train_loc", "val_loc")


@dataclass
class Xlsa17ClassSide(ClassMatrix):
    """One xlsa17 dataset's class side; every index here is 0-based."""

    name: str
    att: np.ndarray  # (C, A) L2-normalised rows
    original_att: np.ndarray  # (C, A) raw scale
    class_names: list[str]
    seen_classes: np.ndarray  # from trainvalclasses.txt
    unseen_classes: np.ndarray  # from testclasses.txt
    locs: dict[
        str, np.ndarray
    ]  # trainval, test_seen, test_unseen and, when known, train, val (original)
    labels: np.ndarray | None  # (N,) 0-based, from images.csv when present
    image_files: list[str] | None

    def clean_val_locs(self) -> dict[str, np.ndarray] | None:
        """Train/val rows with `test_seen_loc` removed (the clean validation protocol), or None."""
        if "train" not in self.locs or "val" not in self.locs:
            return None
        test_seen = self.locs["test_seen"]
        clean = {s: np.setdiff1d(self.locs[s], test_seen) for s in ("train", "val")}
        if any(len(rows) == 0 for rows in clean.values()):
            return None  # nothing left to validate on: the file gets no train/val splits
        return clean


def _class_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _cell_strings(path: Path, mat: dict, key: str) -> list[str]:
    try:
        cells = mat[key].ravel()
    except KeyError as exc:
        raise DataError(path, key, "missing") from exc
    return [str(np.asarray(c).ravel()[0]) for c in cells]


def _loadmat(path: Path) -> dict:
    if not path.exists():
        raise DataError(path, None, "file not found")
    try:
        return sio.loadmat(path)
    except Exception as exc:  # scipy raises several types for a damaged file
        raise DataError(path, None, f"not a readable MATLAB file: {exc}") from exc


def _locs(path: Path, mat: dict, key: str) -> np.ndarray:
    raw = np.asarray(mat[key]).ravel().astype(np.int64)
    if raw.size and raw.min() < 1:
        raise DataError(path, key, f"has index {raw.min()}; expected 1-based MATLAB indices")
    return raw - 1


def _class_ids(path: Path, names: list[str], index: dict[str, int]) -> np.ndarray:
    unknown = [n for n in names if n not in index]
    if unknown:
        raise DataError(path, None, f"class '{unknown[0]}' is not in allclasses_names")
    return np.array(sorted(index[n] for n in names), dtype=np.int64)


def read_images_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """`image_file,label` rows (label 1-based) → file list and 0-based labels."""
    files: list[str] = []
    labels: list[int] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"image_file", "label"} <= set(reader.fieldnames):
            raise DataError(
                path, "header", f"got {reader.fieldnames}; expected columns image_file,label"
            )
        for row in reader:
            files.append(row["image_file"])
            labels.append(int(row["label"]) - 1)
    return files, np.asarray(labels, dtype=np.int64)


def load_xlsa17(folder: str | Path, name: str | None = None) -> Xlsa17ClassSide:
    """Read one xlsa17 dataset folder (e.g. ``.../xlsa17/CUB``)."""
    folder = Path(folder)
    mat_path = folder / "att_splits.mat"
    mat = _loadmat(mat_path)
    for key in ("att", "original_att", "trainval_loc", "test_seen_loc", "test_unseen_loc"):
        if key not in mat:
            raise DataError(mat_path, key, "missing")
    att = np.asarray(mat["att"], dtype=np.float64).T
    original_att = np.asarray(mat["original_att"], dtype=np.float64).T
    class_names = _cell_strings(mat_path, mat, "allclasses_names")
    if len(class_names) != att.shape[0]:
        raise DataError(
            mat_path, "allclasses_names", f"{len(class_names)} names for {att.shape[0]} classes"
        )
    locs = {k[: -len("_loc")]: _locs(mat_path, mat, k) for k in LOC_KEYS if k in mat}
    sent_path = folder / "sent_splits.mat"
    if ("train" not in locs or "val" not in locs) and sent_path.exists():
        sent = _loadmat(sent_path)
        if "train_loc" in sent and "val_loc" in sent:
            locs["train"] = _locs(sent_path, sent, "train_loc")
            locs["val"] = _locs(sent_path, sent, "val_loc")
    index = {n: i for i, n in enumerate(class_names)}
    seen = _class_ids(
        folder / "trainvalclasses.txt", _class_list(folder / "trainvalclasses.txt"), index
    )
    unseen = _class_ids(folder / "testclasses.txt", _class_list(folder / "testclasses.txt"), index)
    labels = image_files = None
    if (folder / "images.csv").exists():
        image_files, labels = read_images_csv(folder / "images.csv")
        n = len(labels)
        for split, rows in locs.items():
            if rows.size and rows.max() >= n:
                raise DataError(
                    mat_path,
                    f"{split}_loc",
                    f"index {rows.max() + 1} beyond the {n} rows of images.csv",
                )
    return Xlsa17ClassSide(
        name=name or folder.name,
        att=att,
        original_att=original_att,
        class_names=class_names,
        seen_classes=seen,
        unseen_classes=unseen,
        locs=locs,
        labels=labels,
        image_files=image_files,
    )


def attribute_vectors_file(attributes_folder: str | Path, dataset: str) -> Path:
    """The `<DATASET>_attribute.pkl` (or `.npy`) inside an attributes folder."""
    folder = Path(attributes_folder)
    for suffix in (".npy", ".pkl"):
        path = folder / f"{dataset}_attribute{suffix}"
        if path.exists():
            return path
    raise DataError(folder, None, f"no {dataset}_attribute.pkl or .npy found")
