"""The images of an extraction: the list (``res101.mat`` or a text list) in the order of the
class side, where each file lies on this machine (``--remap``), and a Dataset that loads them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io as sio
import torch
from torch.utils.data import DataLoader, Dataset

from crest.data.backbone import image_transform
from crest.data.extraction.settings import ExtractSettings
from crest.data.sources.xlsa17 import (
    Xlsa17ClassSide,
    read_images_csv,
)
from crest.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class ImageList:
    """The images of a dataset in xlsa17 row order, as listed and as found on disk."""

    source: Path
    entries: list[str]  # paths exactly as the list has them
    labels: np.ndarray  # (N,) 0-based
    paths: list[Path] = field(default_factory=list)  # after --remap / --image-root


# ---- image lists -----------------------------------------------------------------------------


def read_res101_mat(path: Path) -> tuple[list[str], np.ndarray]:
    """``image_files`` (cell array) and 1-based ``labels`` of an xlsa17 ``res101.mat``."""
    if not path.exists():
        raise DataError(path, None, "file not found")
    try:
        mat = sio.loadmat(path, variable_names=["image_files", "labels"])
    except Exception as exc:  # scipy raises several types for damaged or v7.3 files
        raise DataError(path, None, f"not a readable MATLAB (v5) file: {exc}") from exc
    for key in ("image_files", "labels"):
        if key not in mat:
            raise DataError(path, key, "missing; a res101.mat lists image_files and labels")
    files = [str(np.asarray(cell).ravel()[0]) for cell in np.asarray(mat["image_files"]).ravel()]
    labels = np.asarray(mat["labels"]).ravel().astype(np.int64) - 1
    if len(files) != len(labels):
        raise DataError(path, "labels", f"{len(labels)} labels for {len(files)} image files")
    return files, labels


def read_image_list(path: str | Path) -> ImageList:
    """An ``images.csv`` (``image_file,label``) or a ``res101.mat``; labels become 0-based."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        entries, labels = read_res101_mat(path)
    elif path.suffix.lower() == ".csv":
        if not path.exists():
            raise DataError(path, None, "file not found")
        try:
            entries, labels = read_images_csv(path)
        except ValueError as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(path, "label", f"not an integer: {exc}") from exc
    else:
        raise DataError(path, None, "unknown image list; expected images.csv or res101.mat")
    if not entries:
        raise DataError(path, None, "lists no images")
    return ImageList(source=path, entries=entries, labels=labels)


def parse_remap(items: Sequence[str]) -> list[tuple[str, str]]:
    """``OLD=NEW`` strings → (old prefix, new prefix) pairs."""
    pairs = []
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise ConfigError(f"--remap {item!r}: expected OLD=NEW (a leading path prefix)")
        pairs.append((old, new))
    return pairs


def resolve_image_path(
    entry: str, image_root: Path | None, remap: Sequence[tuple[str, str]]
) -> Path:
    """Where one listed image is on this machine: first matching prefix remap, then the root."""
    for old, new in remap:
        if entry.startswith(old):
            entry = new + entry[len(old) :]
            break
    path = Path(entry)
    if image_root is not None and not path.is_absolute():
        path = image_root / path
    return path


def locate_images(
    images: ImageList, image_root: Path | None, remap: Sequence[tuple[str, str]]
) -> None:
    """Fill ``images.paths``; a missing file is an error now, not hours into the run."""
    images.paths = [resolve_image_path(e, image_root, remap) for e in images.entries]
    missing = [i for i, p in enumerate(images.paths) if not p.is_file()]
    if missing:
        first = missing[0]
        hint = "" if image_root or remap else "; use --image-root DIR and/or --remap OLD=NEW"
        raise DataError(
            images.paths[first],
            None,
            f"image file not found (row {first + 1} of {images.source}, listed as "
            f"'{images.entries[first]}'); {len(missing)} of {len(images.paths)} images "
            f"missing{hint}",
        )


# ---- class side ------------------------------------------------------------------------------


def check_list_against_splits(images: ImageList, side: Xlsa17ClassSide, mat: Path) -> None:
    """The image list must be the one the xlsa17 split indexes: same rows, labels in range."""
    n = len(images.labels)
    indexed = 1 + max(int(rows.max()) for rows in side.locs.values() if rows.size)
    if indexed != n:
        raise DataError(
            images.source,
            "label",
            f"{n} images listed, but {mat} indexes {indexed} images; expected the image list "
            "of this dataset, in res101.mat row order",
        )
    bad = np.flatnonzero((images.labels < 0) | (images.labels >= side.num_classes))
    if bad.size:
        raise DataError(
            images.source,
            "label",
            f"row {bad[0] + 1} has label {images.labels[bad[0]] + 1}; expected 1-based labels in "
            f"[1, {side.num_classes}] (the classes of {mat})",
        )
    if side.labels is not None and not np.array_equal(side.labels, images.labels):
        rows = np.flatnonzero(side.labels != images.labels)
        raise DataError(
            images.source,
            "label",
            f"row {rows[0] + 1} has label {images.labels[rows[0]] + 1} but the images.csv "
            f"beside {mat} says {side.labels[rows[0]] + 1}; expected the same image order",
        )


class ImageFiles(Dataset[tuple[torch.Tensor, int, str]]):
    """Images as normalised tensors; an unreadable image yields its error message, not an exception.

    (An exception raised in a DataLoader worker loses its type, so the main process turns the
    message into a :class:`DataError` naming the file instead.)
    """

    def __init__(self, paths: Sequence[Path], start: int, size: int, resize: str) -> None:
        self.paths = list(paths)
        self.start = start
        self.size = size
        self.transform = image_transform(size, resize)

    def __len__(self) -> int:
        return len(self.paths) - self.start

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        from PIL import Image

        row = self.start + i
        try:
            with Image.open(self.paths[row]) as img:
                tensor = self.transform(img.convert("RGB"))
            return tensor, row, ""
        except Exception as exc:  # PIL raises many types for broken files
            return torch.zeros(3, self.size, self.size), row, f"{type(exc).__name__}: {exc}"


def image_batches(
    paths: Sequence[Path], start: int, settings: ExtractSettings, device: torch.device
) -> DataLoader:
    return DataLoader(
        ImageFiles(paths, start, settings.size, settings.resize),
        batch_size=settings.batch_size,
        shuffle=False,
        num_workers=settings.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
