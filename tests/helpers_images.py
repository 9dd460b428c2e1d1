"""A tiny image dataset on disk in the xlsa17 layout, for feature-extraction tests.

Layout written under ``root``::

    images/<class>/<n>.jpg|png      the images (small, varied sizes and modes)
    xlsa17/TOY/att_splits.mat       att (A x C), original_att, allclasses_names, 1-based *_loc
    xlsa17/TOY/trainvalclasses.txt, testclasses.txt
    xlsa17/TOY/images.csv           image_file,label (1-based), paths under PREFIX
    attributes/TOY/TOY_attribute.npy, attributes.txt

The list paths start with ``PREFIX`` (a server that does not exist here), so every test has to
remap them, as a user of the real xlsa17 lists must.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io as sio
from PIL import Image

PREFIX = "/original/server/path/TOY"
NAME = "TOY"


@dataclass
class ToyDataset:
    root: Path
    images: Path  # folder that PREFIX maps to
    xlsa17: Path  # the dataset's xlsa17 folder
    attributes: Path  # the dataset's attributes folder
    images_csv: Path
    entries: list[str]
    labels: np.ndarray  # 1-based, as in the list
    num_classes: int
    num_attributes: int

    @property
    def remap(self) -> str:
        return f"{PREFIX}={self.images}"


def _write_image(path: Path, rng: np.random.Generator, index: int) -> None:
    """Images of different sizes, aspect ratios, formats and modes (RGB, L, RGBA, P)."""
    w, h = int(rng.integers(24, 72)), int(rng.integers(24, 72))
    pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    img = Image.fromarray(pixels, "RGB")
    mode = ("RGB", "L", "RGBA", "P")[index % 4]
    img = img.convert(mode)
    if path.suffix == ".jpg" and mode in ("RGBA", "P"):
        img = img.convert("RGB")
    img.save(path)


def _column(locs: list[int]) -> np.ndarray:
    return (np.asarray(locs, dtype=np.float64) + 1).reshape(-1, 1)  # MATLAB: 1-based doubles


def make_toy_dataset(
    root: Path,
    classes: int = 12,
    unseen: int = 3,
    per_class: int = 3,
    attributes: int = 10,
    word_dim: int = 8,
    seed: int = 0,
) -> ToyDataset:
    """Write the layout above; seen classes get per_class - 1 trainval images and 1 test_seen."""
    rng = np.random.default_rng(seed)
    names = [f"{c + 1:03d}.class_{c}" for c in range(classes)]
    unseen_ids = set(range(classes - unseen, classes))
    images_dir = root / "images"
    entries: list[str] = []
    labels: list[int] = []
    trainval: list[int] = []
    test_seen: list[int] = []
    test_unseen: list[int] = []
    for c, name in enumerate(names):
        (images_dir / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            row = len(entries)
            rel = f"{name}/{name}_{k}.{'png' if (row % 3 == 0) else 'jpg'}"
            _write_image(images_dir / rel, rng, row)
            entries.append(f"{PREFIX}/{rel}")
            labels.append(c + 1)
            if c in unseen_ids:
                test_unseen.append(row)
            elif k == per_class - 1:
                test_seen.append(row)
            else:
                trainval.append(row)
    original = rng.uniform(0, 100, size=(attributes, classes))
    att = original / np.linalg.norm(original, axis=0, keepdims=True)
    seen_names = [n for c, n in enumerate(names) if c not in unseen_ids]
    unseen_names = [n for c, n in enumerate(names) if c in unseen_ids]
    train_names = set(seen_names[: len(seen_names) - 2])
    train_loc = [r for r in trainval + test_seen if names[labels[r] - 1] in train_names]
    val_loc = [r for r in trainval + test_seen if names[labels[r] - 1] not in train_names]
    xlsa17 = root / "xlsa17" / NAME
    xlsa17.mkdir(parents=True)
    sio.savemat(
        xlsa17 / "att_splits.mat",
        {
            "att": att,
            "original_att": original,
            "allclasses_names": np.array(names, dtype=object).reshape(-1, 1),
            "trainval_loc": _column(trainval),
            "test_seen_loc": _column(test_seen),
            "test_unseen_loc": _column(test_unseen),
            "train_loc": _column(train_loc),
            "val_loc": _column(val_loc),
        },
    )
    (xlsa17 / "trainvalclasses.txt").write_text("\n".join(seen_names) + "\n")
    (xlsa17 / "testclasses.txt").write_text("\n".join(unseen_names) + "\n")
    csv_lines = [
        "image_file,label",
        *(f"{e},{lab}" for e, lab in zip(entries, labels, strict=True)),
    ]
    images_csv = xlsa17 / "images.csv"
    images_csv.write_text("\n".join(csv_lines) + "\n")
    attr_dir = root / "attributes" / NAME
    attr_dir.mkdir(parents=True)
    np.save(attr_dir / f"{NAME}_attribute.npy", rng.normal(size=(attributes, word_dim)))
    (attr_dir / "attributes.txt").write_text(
        "".join(f"{i + 1} has_part_{i % 3}::value_{i}\n" for i in range(attributes))
    )
    return ToyDataset(
        root=root,
        images=images_dir,
        xlsa17=xlsa17,
        attributes=attr_dir,
        images_csv=images_csv,
        entries=entries,
        labels=np.asarray(labels, dtype=np.int64),
        num_classes=classes,
        num_attributes=attributes,
    )


def write_res101_mat(path: Path, entries: list[str], labels: np.ndarray) -> Path:
    """An xlsa17-style ``res101.mat`` image list (cell array of paths, 1-based labels)."""
    cells = np.empty((len(entries), 1), dtype=object)
    for i, entry in enumerate(entries):
        cells[i, 0] = np.array([entry])
    sio.savemat(
        path,
        {
            "image_files": cells,
            "labels": np.asarray(labels, dtype=np.float64).reshape(-1, 1),
            "features": np.zeros((2, len(entries))),
        },
    )
    return path
