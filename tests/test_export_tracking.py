"""`crest export` (safetensors, no pickle) and train.logger=tensorboard, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import crest
from conftest import SMALL_MODEL, TINY
from crest.data.schema.dataset import FeatureDataset
from crest.data.schema.hdf5 import read_benchmark
from crest.data.synthetic.generator import generate_default_world
from crest.engine.checkpoint import load_checkpoint
from crest.errors import DataError

CREST = str(Path(sys.executable).with_name("crest"))


def crest_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CREST, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("export")
    world = generate_default_world(tmp / "w.h5", replace(TINY, seed=11, images_min=12, grid=3))
    run = tmp / "run"
    sets = [f"data.path={world}", *SMALL_MODEL, "train.epochs=2", "train.logger=tensorboard"]
    res = crest_cli("train", *[a for s in sets for a in ("--set", s)], "--out", str(run))
    assert res.returncode == 0, res.stderr
    return world, run


def test_tensorboard_event_files_hold_every_epoch_metric_and_loss(trained) -> None:
    _, run = trained
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file"
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    history = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for name in ("gzsl_h", "czsl_acc", "loss/total", "loss/ce", "branches/vgt/gzsl_h"):
        assert f"final/{name}" in tags, name
    h = acc.Scalars("final/gzsl_h")
    assert [e.step for e in h] == [1, 2]
    assert [e.value for e in h] == pytest.approx([x["gzsl_h"] for x in history], abs=1e-6)
    total = acc.Scalars("final/loss/total")
    assert [e.value for e in total] == pytest.approx(
        [x["loss"]["total"] for x in history], rel=1e-6
    )


def test_export_loads_like_the_checkpoint_and_predicts_the_same(trained, tmp_path) -> None:
    world, run = trained
    out = tmp_path / "exported"
    res = crest_cli("export", str(run), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    # nothing pickled: the weights file is safetensors (an 8-byte header length, then JSON)
    head = (out / "model.safetensors").read_bytes()[:9]
    assert head[8:9] == b"{"
    bench = read_benchmark(world)
    rows = bench.splits["test_unseen"][:10]
    x = FeatureDataset(world, rows).read_rows(np.arange(len(rows)))
    from_checkpoint = crest.load(run / "checkpoints" / "last.pt", device="cpu").predict(x)
    from_export = crest.load(out, device="cpu").predict(x)
    assert np.array_equal(from_checkpoint.scores, from_export.scores)
    assert np.array_equal(from_checkpoint.top, from_export.top)
    assert np.array_equal(from_checkpoint.vacuity, from_export.vacuity)
    state = load_checkpoint(out)
    assert state["epoch"] == 2 and "optimizer" not in state
    assert all(isinstance(v, torch.Tensor) for v in state["model"].values())
    # `crest eval` takes the exported folder as it takes a checkpoint
    res = crest_cli("eval", str(out))
    assert res.returncode == 0, res.stderr
    assert "CZSL" in res.stdout


def test_export_refuses_an_existing_folder_and_a_damaged_export(trained, tmp_path) -> None:
    _, run = trained
    taken = tmp_path / "taken"
    taken.mkdir()
    res = crest_cli("export", str(run), "--out", str(taken))
    assert res.returncode == 2 and "already exists" in res.stderr
    out = tmp_path / "exported"
    assert crest_cli("export", str(run), "--out", str(out)).returncode == 0
    (out / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(DataError, match="not a readable crest export"):
        load_checkpoint(out)
