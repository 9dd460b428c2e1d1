"""The real `crest` entry point, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CREST = str(Path(sys.executable).with_name("crest"))


def run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([CREST, *args], capture_output=True, text=True, env=env, timeout=300)


def test_data_info_prints_the_summary(tiny_world):
    out = run("data", "info", str(tiny_world))
    assert out.returncode == 0, out.stderr
    assert "classes     12 (seen 9, unseen 3)" in out.stdout
    assert "4x4 grid (16 regions), float32" in out.stdout
    js = json.loads(run("data", "info", str(tiny_world), "--json").stdout)
    assert js["splits"]["trainval"] > 0 and js["features"]["channels"] == 16


def test_data_synth_writes_a_readable_world(tmp_path):
    out = tmp_path / "w.h5"
    res = run(
        "data",
        "synth",
        "--out",
        str(out),
        "--classes",
        "10",
        "--unseen",
        "3",
        "--val-classes",
        "2",
        "--feature-dim",
        "8",
        "--grid",
        "3",
        "--images-min",
        "4",
        "--images-max",
        "6",
        "--seed",
        "5",
    )
    assert res.returncode == 0, res.stderr
    assert out.exists() and "classes     10 (seen 7, unseen 3)" in res.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["w.h5"]  # no temporary file left behind


def test_data_synth_like_uses_the_shared_data(shared_data, tmp_path):
    out = tmp_path / "awa2.h5"
    res = run(
        "data",
        "synth",
        "--like",
        "AWA2",
        "--out",
        str(out),
        "--feature-dim",
        "8",
        "--grid",
        "3",
        "--image-cap",
        "3",
        env_extra={"CREST_DATA": str(shared_data)},
    )
    assert res.returncode == 0, res.stderr
    assert "classes     50 (seen 40, unseen 10)" in res.stdout and "attributes  85" in res.stdout


def test_bad_file_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5 at all")
    res = run("data", "info", str(bad))
    assert res.returncode == 2
    assert "error:" in res.stderr and "broken.h5" in res.stderr and "Traceback" not in res.stderr


def test_baseline_command(tiny_world, tmp_path):
    res = run("baseline", str(tiny_world), "--json-out", str(tmp_path / "b.json"))
    assert res.returncode == 0, res.stderr
    assert "| CZSL |" in res.stdout and "γ: best H on the validation classes" in res.stdout
    assert set(json.loads((tmp_path / "b.json").read_text())) >= {
        "czsl_acc",
        "gzsl_u",
        "gzsl_s",
        "gzsl_h",
        "gamma",
    }


def test_demo_runs_end_to_end_on_the_default_world(tmp_path):
    res = run(
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--set",
        "train.epochs=1",
        "--set",
        "train.max_steps_per_epoch=2",
    )
    assert res.returncode == 0, res.stderr
    assert (
        "== the embedded default world ==" in res.stdout
        and "classes     50 (seen 40, unseen 10)" in res.stdout
    )
    last = res.stdout.strip().splitlines()
    assert any(line.startswith("| CREST ") and "final epoch (1)" in line for line in last)
    assert any(line.startswith("| baseline ") for line in last)
    for branch in ("VGT", "AGT"):  # each direction scored alone, in the same table
        assert any(line.startswith(f"|   {branch} alone (same model) ") for line in last)
    assert (tmp_path / "demo" / "report.md").exists()
