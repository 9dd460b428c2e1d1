"""ResNet-101 feature maps for every image of a dataset, written as a benchmark HDF5 file.

This is the open replacement for the CREST/TransZero extraction script: the output has the
schema of :mod:`crest.data.schema.hdf5` (``feature_map`` (N, 2048, h, w) from layer4, before
pooling, plus the xlsa17 class side and the attribute word vectors) and is accepted by
:func:`crest.data.schema.hdf5.read_benchmark`. Backbone and preprocessing:
:mod:`crest.data.backbone`; resumability: :mod:`crest.data.extraction.writer`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from crest.data.backbone import FEATURE_CHANNELS, build_backbone
from crest.data.extraction.images import (
    ImageList,
    check_list_against_splits,
    image_batches,
    locate_images,
    parse_remap,
    read_image_list,
)
from crest.data.extraction.settings import ExtractSettings, extraction_settings, weights_identity
from crest.data.extraction.writer import (
    commit_rows,
    differences,
    prepare_partial,
    read_progress,
    root_attrs,
    to_storage,
)
from crest.data.schema.benchmark import CORE_SPLITS, Benchmark
from crest.data.schema.checks import validate_class_side
from crest.data.sources.attribute_names import attribute_names_for
from crest.data.sources.attribute_vectors import load_attribute_vectors
from crest.data.sources.xlsa17 import (
    attribute_vectors_file,
    load_xlsa17,
)
from crest.device import autocast, choose_device
from crest.errors import DataError
from crest.paths import data_root

log = logging.getLogger(__name__)


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
            for images, rows, errors in image_batches(paths, start, settings, device):
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
                commit_rows(f, int(rows[0]), to_storage(out, settings.dtype, partial))
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
            out, None, f"exists (differs: {differences(old, extraction)}); pass --overwrite"
        )
    locate_images(image_list, root, remap_pairs)
    prepare_partial(partial, bench, attrs, extraction, restart)
    run_extraction(partial, image_list.paths, settings, progress=progress)
    os.replace(partial, out)
    log.info("wrote %s (%d images, grid %dx%d)", out, bench.num_images, *(settings.grid,) * 2)
    return out
