"""data.cache: features read once into memory (device / ram) give exactly what streaming gives."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler

from conftest import SMALL_MODEL, TINY
from crest.config import load_config
from crest.data.schema.feature_cache import (
    FeatureCache,
    FreeMemory,
    RowBatches,
    choose_cache_mode,
    feature_bytes,
)
from crest.data.synthetic.generator import generate_default_world
from crest.engine import train as train_module
from crest.engine.samplers import EpochShuffle
from crest.engine.train import train
from crest.errors import ConfigError, DataError

CPU = torch.device("cpu")
GB = 1 << 30


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = replace(TINY, seed=5, images_min=14, images_max=18, grid=3, dtype="float16")
    return generate_default_world(tmp_path_factory.mktemp("cache") / "w.h5", spec)


def _rows_and_labels(world: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(world) as f:
        rows = np.asarray(f["trainval_loc"][()], dtype=np.int64)
        labels = np.asarray(f["labels"][()], dtype=np.int64)
    return rows, labels


def test_cached_and_streamed_batches_are_identical_over_two_epochs(world: Path) -> None:
    rows, labels = _rows_and_labels(world)
    cache = FeatureCache(world, rows, CPU)
    assert cache.features.dtype == torch.float16  # the file's dtype, widened per batch
    shuffle = EpochShuffle(len(rows), seed=3)
    batches = BatchSampler(shuffle, 16, drop_last=True)
    streamed = RowBatches(world, rows, labels, batches, CPU)
    cached = RowBatches(world, rows, labels, batches, CPU, cache=cache)
    for epoch in (1, 2):
        shuffle.set_epoch(epoch)
        a, b = list(streamed), list(cached)
        assert len(a) == len(b) == len(rows) // 16
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert xa.dtype == xb.dtype == torch.float32
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def _train(world: Path, out: Path, cache: str) -> list[dict]:
    cfg = load_config(
        "synthetic",
        [
            f"data.path={world}",
            *SMALL_MODEL,
            "model.dropout=0.1",
            "train.batch_size=16",
            "eval.batch_size=32",
            "train.epochs=2",
            "train.selection=final",
            f"data.cache={cache}",
        ],
    )
    train(cfg, out)
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_device_ram_and_stream_give_identical_losses_and_metrics(
    world: Path, tmp_path: Path
) -> None:
    runs = {mode: _train(world, tmp_path / mode, mode) for mode in ("device", "ram", "stream")}
    keys = ("loss", "czsl_acc", "gzsl_h", "best_gamma_h", "vacuity_seen", "branches")
    reference = [{k: e[k] for k in keys} for e in runs["stream"]]
    assert len(reference) == 2 and reference[0]["loss"]["total"] > 0
    for mode in ("device", "ram"):
        assert [{k: e[k] for k in keys} for e in runs[mode]] == reference, mode


def test_auto_picks_by_free_memory() -> None:
    need = 2 * GB
    cuda = torch.device("cuda", 0)
    assert choose_cache_mode("auto", need, cuda, FreeMemory(80 * GB, 100 * GB)) == "device"
    assert choose_cache_mode("auto", need, cuda, FreeMemory(1 * GB, 100 * GB)) == "ram"
    assert choose_cache_mode("auto", need, CPU, FreeMemory(None, 100 * GB)) == "device"
    assert choose_cache_mode("auto", need, CPU, FreeMemory(None, 1 * GB)) == "stream"
    assert choose_cache_mode("auto", need, cuda, FreeMemory(1 * GB, 1 * GB)) == "stream"
    assert choose_cache_mode("stream", need, CPU, FreeMemory(None, 100 * GB)) == "stream"
    with pytest.raises(ConfigError, match=r"data\.cache"):
        choose_cache_mode("disk", need, CPU, FreeMemory(None, 100 * GB))


def test_auto_streams_when_told_memory_is_short(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(train_module, "measure_free_memory", lambda device: FreeMemory(None, 1024))
    built: list[object] = []
    real = train_module.FeatureCache
    monkeypatch.setattr(
        train_module, "FeatureCache", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    with caplog.at_level(logging.INFO, logger="crest.engine.train"):
        _train(world, tmp_path / "auto", "auto")
    assert built == []  # streamed: no cache was filled
    assert "data.cache=auto chose stream" in caplog.text


def test_a_nan_row_is_named_while_the_cache_fills(world: Path, tmp_path: Path) -> None:
    bad = tmp_path / "nan.h5"
    bad.write_bytes(world.read_bytes())
    rows, _ = _rows_and_labels(bad)
    with h5py.File(bad, "r+") as f:
        f["feature_map"][int(rows[3]), 0, 0, 0] = np.nan
    with pytest.raises(DataError, match=rf"row {int(rows[3])} holds NaN"):
        FeatureCache(bad, rows, CPU)


def test_feature_bytes_counts_the_files_dtype(world: Path) -> None:
    with h5py.File(world) as f:
        per_row = int(np.prod(f["feature_map"].shape[1:])) * f["feature_map"].dtype.itemsize
    assert feature_bytes(world, 10) == 10 * per_row
