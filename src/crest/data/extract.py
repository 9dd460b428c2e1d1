"""ResNet-101 feature maps for every image of a dataset, written as a benchmark HDF5 file.

This is the open replacement for the CREST/TransZero extraction script: the output has the
schema of :mod:`crest.data.h5` (``feature_map`` (N, 2048, h, w) from layer4, before pooling,
plus the xlsa17 class side and the attribute word vectors) and is accepted by
:func:`crest.data.h5.read_benchmark`.

Preprocessing follows that script (``resize="crop"``): resize the short side to ``size``,
centre-crop ``size`` x ``size``, ImageNet mean/std; ``resize="stretch"`` squashes the whole
image to ``size`` x ``size`` instead. 448 px gives the 14 x 14 grid, 224 px the 7 x 7 grid.
``weights="imagenet"`` are torchvision's ``ResNet101_Weights.IMAGENET1K_V1`` (what the script's
``pretrained=True`` loads); ``imagenet-v2`` selects ``IMAGENET1K_V2``.

Extraction of a real dataset takes hours, so it is resumable and crash-safe:

* everything goes into ``OUT.partial``, created complete (class side, attributes, a
  preallocated ``feature_map``) under a temporary name and renamed, so a ``.partial`` always
  has valid metadata;
* ``feature_map`` is contiguous and allocated at creation, so writing rows changes raw data
  only, never HDF5 metadata; after each batch the rows are flushed and fsync'ed, then the root
  attribute ``rows_done`` is rewritten in place (one small metadata block). A kill at any point
  leaves a file h5py can open, whose first ``rows_done`` rows are final;
* a rerun checks the partial's fingerprint (image list, class side, backbone settings) and
  continues from ``rows_done``; when all rows are written, ``OUT.partial`` is renamed onto
  ``OUT``. ``OUT`` therefore only ever exists complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io as sio
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from crest.atomic import atomic_path
from crest.data.attribute_vectors import load_attribute_vectors
from crest.data.benchmark import CORE_SPLITS, Benchmark
from crest.data.h5 import SCHEMA_VERSION, validate_class_side, write_class_side
from crest.data.xlsa17 import (
    Xlsa17ClassSide,
    attribute_names_for,
    attribute_vectors_file,
    load_xlsa17,
    read_images_csv,
)
from crest.engine.device import autocast, choose_device
from crest.errors import ConfigError, DataError
from crest.paths import data_root

log = logging.getLogger(__name__)

BACKBONE = "resnet101"
BACKBONE_LAYER = "layer4"
FEATURE_CHANNELS = 2048
STRIDE = 32  # ResNet-101's layer4 downsamples by 32: 448 px → 14 x 14, 224 px → 7 x 7
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_WEIGHTS = {
    "imagenet": "IMAGENET1K_V1",
    "imagenet-v1": "IMAGENET1K_V1",
    "imagenet-v2": "IMAGENET1K_V2",
}
RESIZE_MODES = ("crop", "stretch")
DTYPES = ("float32", "float16")
FINGERPRINT_VERSION = 1


@dataclass(frozen=True)
class ExtractSettings:
    """How features are computed and stored; every field that changes the numbers is fingerprinted."""

    size: int = 448
    resize: str = "crop"
    weights: str = "imagenet"  # imagenet | imagenet-v2 | none | path to a state_dict file
    seed: int = 0  # seeds the random init of weights="none", so reruns get the same weights
    dtype: str = "float32"
    batch_size: int = 32
    workers: int = 4
    device: str = "auto"  # auto = CUDA when available
    bf16: bool = False  # bfloat16 autocast (CUDA only)

    def validate(self) -> None:
        """Refuse settings that cannot work, before any file is touched."""
        if self.size < STRIDE or self.size % STRIDE:
            raise ConfigError(f"--size {self.size}: expected a multiple of {STRIDE} (448 or 224)")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"--resize {self.resize!r}: expected one of {RESIZE_MODES}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype {self.dtype!r}: expected one of {DTYPES}")
        if self.batch_size < 1 or self.workers < 0:
            raise ConfigError("--batch-size must be >= 1 and --workers >= 0")

    @property
    def grid(self) -> int:
        return self.size // STRIDE


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


def find_attribute_folder(attributes: Path | None, dataset: str) -> Path:
    """The dataset's attributes folder: as given, its ``dataset`` subfolder, or the shared data."""
    if attributes is None:
        attributes = data_root() / "attributes" / dataset
        if not attributes.is_dir():
            raise DataError(
                attributes,
                None,
                "no attributes folder; pass --attributes DIR (with "
                f"{dataset}_attribute.pkl/.npy) or --w2v FILE",
            )
        return attributes
    sub = attributes / dataset
    has_vectors = any((attributes / f"{dataset}_attribute{s}").exists() for s in (".npy", ".pkl"))
    return sub if not has_vectors and sub.is_dir() else attributes


def build_benchmark(
    images: ImageList,
    xlsa17: Path,
    settings: ExtractSettings,
    attributes: Path | None = None,
    w2v: Path | None = None,
    dataset: str | None = None,
) -> Benchmark:
    """The class side of ``xlsa17`` and the word vectors, checked against the image list."""
    side = load_xlsa17(xlsa17, dataset)
    name = side.name
    check_list_against_splits(images, side, xlsa17 / "att_splits.mat")
    folder: Path | None = None
    if w2v is not None and attributes is None:  # names then default to attribute_0, ...
        vectors_path = w2v
    else:
        folder = find_attribute_folder(attributes, name)
        vectors_path = w2v if w2v is not None else attribute_vectors_file(folder, name)
    w2v_att = load_attribute_vectors(vectors_path, side.num_attributes)
    attr_names = (
        attribute_names_for(folder, name, side.num_attributes)
        if folder is not None
        else [f"attribute_{i}" for i in range(side.num_attributes)]
    )
    splits = {s: side.locs[s] for s in CORE_SPLITS}
    clean = side.clean_val_locs()
    if clean is not None:
        splits.update(clean)
    bench = Benchmark(
        att=side.att.astype(np.float32),
        original_att=side.original_att.astype(np.float32),
        w2v_att=w2v_att,
        labels=images.labels.astype(np.int64),
        splits={k: np.asarray(v, dtype=np.int64) for k, v in splits.items()},
        class_names=side.class_names,
        attribute_names=attr_names,
        image_files=images.entries,
        feature_shape=(FEATURE_CHANNELS, settings.grid, settings.grid),
        feature_dtype=settings.dtype,
        meta={"dataset": name, "w2v_source": str(vectors_path)},
    )
    validate_class_side(bench, xlsa17 / "att_splits.mat")
    return bench


# ---- fingerprint -----------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_arrays(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = (
            np.ascontiguousarray(part).tobytes()
            if isinstance(part, np.ndarray)
            else json.dumps(part).encode()
        )
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def weights_identity(weights: str, seed: int) -> tuple[str, dict[str, Any]]:
    """(the file's ``weights`` attr, what the fingerprint holds): a weights file by content."""
    key = weights.lower()
    if key in TORCHVISION_WEIGHTS:
        name = f"torchvision:ResNet101_Weights.{TORCHVISION_WEIGHTS[key]}"
        return name, {"weights": name}
    if key == "none":
        return "none", {"weights": "none", "seed": seed}
    path = Path(weights)
    if not path.is_file():
        raise DataError(
            path,
            "weights",
            "file not found; expected imagenet, imagenet-v2, none or a state_dict file",
        )
    return f"file:{path.resolve()}", {"weights": "file", "weights_sha256": _sha256_file(path)}


def extraction_settings(
    bench: Benchmark, images: ImageList, settings: ExtractSettings, weights: dict[str, Any]
) -> dict[str, Any]:
    """Everything that decides the numbers in the file; equal settings → a partial may resume."""
    classes = _sha256_arrays(
        bench.att,
        bench.original_att,
        bench.w2v_att,
        *(bench.splits[k] for k in sorted(bench.splits)),
        bench.class_names,
        bench.attribute_names,
    )
    return {
        "version": FINGERPRINT_VERSION,
        "image_list": _sha256_arrays(images.entries, images.labels.astype(np.int64)),
        "class_side": classes,
        "backbone": BACKBONE,
        "layer": BACKBONE_LAYER,
        **weights,
        "image_size": settings.size,
        "resize": settings.resize,
        "dtype": settings.dtype,
        "bf16": settings.bf16,
    }


def fingerprint(extraction: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(extraction, sort_keys=True).encode()).hexdigest()


# ---- the HDF5 file -------------------------------------------------------------------------


def root_attrs(
    bench: Benchmark, extraction: dict[str, Any], settings: ExtractSettings, weights: str
) -> dict[str, Any]:
    """Root attributes: provenance, and the backbone settings predict-time code needs."""
    return {
        "crest_schema_version": SCHEMA_VERSION,
        "source": "extract",
        "features_real": weights != "none",
        "backbone": BACKBONE,
        "backbone_layer": BACKBONE_LAYER,
        "weights": weights,
        "weights_seed": settings.seed if weights == "none" else -1,
        "image_size": settings.size,
        "resize": settings.resize,
        "grid": [settings.grid, settings.grid],
        "normalize_mean": list(IMAGENET_MEAN),
        "normalize_std": list(IMAGENET_STD),
        "bf16": settings.bf16,
        "extract_settings": json.dumps(extraction, sort_keys=True),
        "extract_fingerprint": fingerprint(extraction),
        **bench.meta,
    }


def _create_feature_map(f: h5py.File, shape: tuple[int, ...], dtype: str) -> None:
    """Contiguous, allocated now, never filled: later row writes touch raw data only."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    f.create_dataset("feature_map", shape=shape, dtype=np.dtype(dtype), dcpl=dcpl)


def create_partial(path: Path, bench: Benchmark, attrs: dict[str, Any]) -> None:
    """Write the whole file but the features, under a temporary name, then rename it to ``path``."""
    assert bench.feature_shape is not None and bench.feature_dtype is not None
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        _create_feature_map(f, (bench.num_images, *bench.feature_shape), bench.feature_dtype)
        write_class_side(f, bench)
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["rows_done"] = np.int64(0)


def _fd_of(f: h5py.File) -> int | None:
    with contextlib.suppress(Exception):
        return int(f.id.get_vfd_handle())
    return None


def _durable_flush(f: h5py.File) -> None:
    """Push HDF5's buffers to the OS (enough for a kill) and to the disk (for a power cut)."""
    f.flush()
    fd = _fd_of(f)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.fsync(fd)


def read_progress(path: Path) -> tuple[str | None, dict[str, Any], int]:
    """(fingerprint, settings, rows_done) of a partial or finished extraction file."""
    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            settings = json.loads(attrs["extract_settings"]) if "extract_settings" in attrs else {}
            return (
                attrs.get("extract_fingerprint"),
                settings,
                int(attrs.get("rows_done", 0)),
            )
    except OSError as exc:
        raise DataError(path, None, f"not a readable HDF5 file: {exc}; delete it") from exc


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in keys) or "unknown"


# ---- the backbone ----------------------------------------------------------------------------


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike
        raise DataError(path, "weights", f"not a loadable torch state_dict: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise DataError(path, "weights", f"holds a {type(obj).__name__}; expected a state_dict")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def build_backbone(weights: str, seed: int) -> nn.Module:
    """ResNet-101 up to layer4 (no pooling, no fc), in eval mode, on the CPU."""
    import torchvision

    key = weights.lower()
    if key in TORCHVISION_WEIGHTS:
        enum = torchvision.models.ResNet101_Weights[TORCHVISION_WEIGHTS[key]]
        try:
            model = torchvision.models.resnet101(weights=enum)
        except Exception as exc:  # URLError, SSL, hash mismatch...
            raise DataError(
                None,
                "weights",
                f"cannot load torchvision's {enum} ({enum.url}): {exc}; download it into "
                f"{torch.hub.get_dir()}/checkpoints or pass --weights FILE",
            ) from exc
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = torchvision.models.resnet101(weights=None)
        if key != "none":
            path = Path(weights)
            state = _load_state_dict(path)
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError as exc:  # shape mismatches
                raise DataError(
                    path, "weights", f"not a torchvision ResNet-101 state_dict: {exc}"
                ) from exc
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing or unexpected:
                raise DataError(
                    path,
                    "weights",
                    f"not a torchvision ResNet-101 state_dict (missing {missing[:3]}, "
                    f"unexpected {unexpected[:3]})",
                )
    trunk = nn.Sequential(*list(model.children())[:-2])
    return trunk.eval().requires_grad_(False)


def image_transform(size: int, resize: str) -> Any:
    """The torchvision preprocessing (``crop`` is the CREST/TransZero script's)."""
    from torchvision import transforms

    steps = (
        [transforms.Resize(size), transforms.CenterCrop(size)]
        if resize == "crop"
        else [transforms.Resize((size, size))]
    )
    return transforms.Compose(
        [*steps, transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
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


# ---- the run -------------------------------------------------------------------------------


def _batches(
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


def to_storage(out: torch.Tensor, dtype: str, path: Path) -> np.ndarray:
    """The batch as stored; a float16 overflow (random weights reach 1e5) is an error, not inf."""
    values = out.float().cpu().numpy()
    with np.errstate(over="ignore"):
        stored = values.astype(dtype, copy=False)
    if not np.all(np.isfinite(stored)):
        raise DataError(
            path,
            "feature_map",
            f"features up to {float(np.max(values)):.3g} do not fit {dtype}; use --dtype float32",
        )
    return stored


def _commit(f: h5py.File, first: int, stored: np.ndarray) -> int:
    """Write rows, make them durable, then (only then) count them done; returns rows_done."""
    last = first + len(stored)
    f["feature_map"][first:last] = stored
    _durable_flush(f)
    f.attrs.modify("rows_done", np.int64(last))  # in place: one small metadata write
    f.flush()
    return last


def _model_on(device: torch.device, settings: ExtractSettings) -> nn.Module:
    model = build_backbone(settings.weights, settings.seed).to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    return model


def run_extraction(
    partial: Path, paths: Sequence[Path], settings: ExtractSettings, progress: bool = True
) -> None:
    """Fill ``feature_map`` of ``partial`` from row ``rows_done`` on, committing after each batch."""
    from tqdm import tqdm

    device = choose_device(settings.device)
    if settings.bf16 and device.type != "cuda":
        log.warning("--bf16 applies on CUDA only; computing in float32 on %s", device)
    with h5py.File(partial, "r+") as f:
        start, n = int(f.attrs["rows_done"]), int(f["feature_map"].shape[0])
        if start >= n:
            return
        model = _model_on(device, settings)
        log.info("extracting rows %d..%d of %d on %s", start, n - 1, n, device)
        bar = tqdm(total=n, initial=start, unit="img", desc="extract", disable=not progress)
        with bar, torch.inference_mode():
            for images, rows, errors in _batches(paths, start, settings, device):
                bad = [i for i, e in enumerate(errors) if e]
                if bad:
                    row = int(rows[bad[0]])
                    raise DataError(paths[row], None, f"cannot read image: {errors[bad[0]]}")
                x = images.to(device, non_blocking=True)
                if device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(
                    device, "bf16" if settings.bf16 and device.type == "cuda" else "fp32"
                ):
                    out = model(x)
                _commit(f, int(rows[0]), to_storage(out, settings.dtype, partial))
                bar.update(len(rows))


def extract_benchmark(
    images: str | Path,
    xlsa17: str | Path,
    out: str | Path,
    *,
    settings: ExtractSettings | None = None,
    attributes: str | Path | None = None,
    w2v: str | Path | None = None,
    dataset: str | None = None,
    image_root: str | Path | None = None,
    remap: Sequence[str] = (),
    overwrite: bool = False,
    restart: bool = False,
    progress: bool = True,
) -> Path:
    """Extract the feature maps of every image in ``images`` into the benchmark file ``out``.

    Every input is checked (list vs split, attribute vectors, every image file present,
    weights file) before the model is built. If ``out`` already holds this extraction it is
    returned as is; an ``out.partial`` of the same extraction is continued.
    """
    settings = settings or ExtractSettings()
    settings.validate()
    out, xlsa17 = Path(out), Path(xlsa17)
    partial = out.with_name(out.name + ".partial")
    image_list = read_image_list(images)
    bench = build_benchmark(
        image_list,
        xlsa17,
        settings,
        attributes=None if attributes is None else Path(attributes),
        w2v=None if w2v is None else Path(w2v),
        dataset=dataset,
    )
    root = None if image_root is None else Path(image_root)
    remap_pairs = parse_remap(remap)
    weights_attr, weights_fp = weights_identity(settings.weights, settings.seed)
    extraction = extraction_settings(bench, image_list, settings, weights_fp)
    attrs = root_attrs(bench, extraction, settings, weights_attr) | {
        "image_list": str(image_list.source),
        "image_root": str(root or ""),
        "remap": json.dumps(list(remap)),
    }
    if out.exists() and not overwrite:
        done_fp, old, rows = read_progress(out)
        if done_fp == attrs["extract_fingerprint"] and rows == bench.num_images:
            log.info("%s already holds this extraction; nothing to do", out)
            return out
        raise DataError(
            out, None, f"exists (differs: {_differences(old, extraction)}); pass --overwrite"
        )
    locate_images(image_list, root, remap_pairs)
    _prepare_partial(partial, bench, attrs, extraction, restart)
    run_extraction(partial, image_list.paths, settings, progress=progress)
    os.replace(partial, out)
    log.info("wrote %s (%d images, grid %dx%d)", out, bench.num_images, *(settings.grid,) * 2)
    return out


def _prepare_partial(
    partial: Path,
    bench: Benchmark,
    attrs: dict[str, Any],
    extraction: dict[str, Any],
    restart: bool,
) -> None:
    """Reuse a partial of the same extraction, refuse a different one, or create a new one."""
    if partial.exists() and restart:
        log.info("--restart: discarding %s", partial)
        partial.unlink()
    if partial.exists():
        fp, old, rows = read_progress(partial)
        if fp != attrs["extract_fingerprint"]:
            raise DataError(
                partial,
                None,
                f"an unfinished extraction with other inputs ({_differences(old, extraction)}); "
                "delete it or pass --restart",
            )
        log.info("resuming %s at row %d of %d", partial, rows, bench.num_images)
        return
    create_partial(partial, bench, attrs)
