"""A real 2-process torchrun (gloo on CPU): synchronised parameters, exact distributed evaluation,
one run folder written by rank 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import TINY
from crest.data.synthetic.generator import generate_default_world
from crest.engine.evaluate import evaluate_checkpoint

HARNESS = Path(__file__).with_name("ddp_harness.py")
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


@pytest.fixture(scope="module")
def ddp_world(tmp_path_factory):
    spec = replace(TINY, seed=5, images_min=12, images_max=15, grid=3)
    return generate_default_world(tmp_path_factory.mktemp("w") / "ddp.h5", spec)


def test_two_process_torchrun(ddp_world, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    run, result = work / "run", tmp_path / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [
            TORCHRUN,
            "--standalone",
            "--nproc_per_node=2",
            str(HARNESS),
            str(ddp_world),
            str(run),
            str(result),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=work,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    r = json.loads(result.read_text())
    assert r["world_size"] == 2
    assert r["param_digests"][0] == r["param_digests"][1], "parameters differ across ranks"
    # the reported opinion was fitted on validation, the same on both ranks
    assert r["opinions"][0] == r["opinions"][1] and r["opinions"][0]["source"] == "validation"
    single = evaluate_checkpoint(run / "checkpoints" / "last.pt")  # one process, whole test split
    for key, value in r["distributed_eval"].items():
        assert value == single[key], key
    for key, value in r["train_metrics"].items():
        assert value == single[key], key  # per-epoch evaluation during training is exact too
    # one run folder, written by rank 0 only
    assert sorted(p.name for p in work.iterdir()) == ["run"]
    # (plus the folder's lock file, held by rank 0 while it trained)
    assert (run / ".crest.lock").exists()
    assert sorted(p.name for p in run.iterdir() if p.name != ".crest.lock") == [
        "checkpoints",
        "config.yaml",
        "env.json",
        "metrics.json",
        "metrics.jsonl",
        "report.md",
        "val_selection.json",
    ]
    chosen = json.loads((run / "val_selection.json").read_text())["val_epoch"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2 + chosen
