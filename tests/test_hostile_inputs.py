"""The last silent paths, as a hostile user meets them through the real CLI: a model scored on
another world's classes, degenerate class sides, non-finite features, a failed training's
folder, predict's edge cases, refused files, the bf16 MFU peak and evidence at extreme values."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import SMALL_MODEL, TINY
from crest.config import load_config
from crest.data.schema.hdf5 import read_benchmark
from crest.data.synthetic.generator import generate_default_world
from crest.engine.train import train
from crest.errors import DataError
from crest.evidential import edl_loss, evidence_from_logits, fuse_dempster

CREST = str(Path(sys.executable).with_name("crest"))


def crest(*args: str) -> subprocess.CompletedProcess:
    """The installed `crest` executable in a fresh process."""
    return subprocess.run([CREST, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture
def cli(capsys):
    """The CLI's entry point in this process (the same `main` the executable runs, without a
    second interpreter's start-up): returns (exit code, stdout, stderr)."""
    from crest.cli import main

    def run(*args: str) -> subprocess.CompletedProcess:
        code = main(list(args))
        out = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out.out, out.err)

    return run


def _edit(path: Path, key: str, value: np.ndarray) -> None:
    with h5py.File(path, "r+") as f:
        del f[key]
        f.create_dataset(key, data=value)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> tuple[Path, Path]:
    """Two worlds of the same shapes and other classes (another generator seed)."""
    root = tmp_path_factory.mktemp("hostile")
    spec = replace(TINY, seed=11, images_min=8, images_max=10, grid=3)
    return (
        generate_default_world(root / "mine.h5", spec),
        generate_default_world(root / "other.h5", replace(spec, seed=12)),
    )


@pytest.fixture(scope="module")
def checkpoint(worlds, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile_run") / "run"
    cfg = load_config(
        "synthetic",
        [f"data.path={worlds[0]}", *SMALL_MODEL, "train.epochs=1", "train.batch_size=16"],
    )
    train(cfg, out)
    return out / "checkpoints" / "last.pt"


def test_eval_refuses_another_worlds_classes_unless_allowed(worlds, checkpoint):
    refused = crest("eval", str(checkpoint), "--data", str(worlds[1]))
    assert refused.returncode != 0
    assert "class side" in refused.stderr and "--allow-other-classes" in refused.stderr
    assert "Traceback" not in refused.stderr
    allowed = crest("eval", str(checkpoint), "--data", str(worlds[1]), "--allow-other-classes")
    assert allowed.returncode == 0, allowed.stderr
    assert "class attribute matrix" in allowed.stderr and "| CZSL |" in allowed.stdout


def test_a_class_without_attributes_and_all_zero_word_vectors_are_refused(cli, worlds, tmp_path):
    path = Path(shutil.copy(worlds[0], tmp_path / "b.h5"))
    with h5py.File(path) as f:
        att, w2v, names = f["att"][()], f["w2v_att"][()], f["class_names"][()]
    empty = att.copy()
    empty[4] = 0.0
    _edit(path, "att", empty)
    with pytest.raises(DataError, match=rf"field 'att': class 4 \('{names[4].decode()}'\) has no"):
        read_benchmark(path)
    _edit(path, "att", att)
    _edit(path, "w2v_att", np.zeros_like(w2v))
    res = cli("data", "info", str(path))
    assert (
        res.returncode != 0 and "field 'w2v_att': every attribute word vector is zero" in res.stderr
    )


def test_check_features_finds_the_first_nonfinite_row_and_a_failed_run_leaves_no_folder(
    cli, worlds, tmp_path
):
    path = Path(shutil.copy(worlds[0], tmp_path / "nan.h5"))
    with h5py.File(path, "r+") as f:
        train_rows = np.sort(f["trainval_loc"][()])
        bad = int(train_rows[3])
        f["feature_map"][bad] = np.nan
    plain = cli("data", "info", str(path))
    assert plain.returncode == 0  # the summary reads no feature rows, and says so
    assert "feature rows not read" in plain.stdout and "--check-features" in plain.stdout
    checked = cli("data", "info", str(path), "--check-features")
    assert checked.returncode != 0 and f"row {bad} holds NaN/inf" in checked.stderr
    healthy = cli("data", "info", str(worlds[0]), "--check-features")
    assert healthy.returncode == 0 and "every row finite" in healthy.stdout
    run = tmp_path / "run"
    sets = [x for s in [f"data.path={path}", *SMALL_MODEL, "train.epochs=1"] for x in ("--set", s)]
    res = cli("train", *sets, "--out", str(run))
    assert res.returncode != 0 and "holds NaN/inf" in res.stderr
    assert not run.exists(), "a run that failed before its first checkpoint left its folder"


def test_predict_edge_cases_are_clear_errors_or_answers(cli, worlds, checkpoint, tmp_path):
    with h5py.File(worlds[0]) as f:
        one = f["feature_map"][0]
    single = tmp_path / "one.npy"
    np.save(single, one)  # a single (D, h, w) map
    res = cli(
        "predict", str(checkpoint), "--features", str(single), "--json", str(tmp_path / "o.json")
    )
    assert res.returncode == 0, res.stderr
    assert len(json.loads((tmp_path / "o.json").read_text())) == 1
    cases = {
        "empty.npy": (np.zeros((0, *one.shape), np.float32), "no inputs"),
        "strings.npy": (np.array(["a", "b"]), "dtype <U1; expected real numbers"),
    }
    for name, (arr, message) in cases.items():
        np.save(tmp_path / name, arr)
        res = cli("predict", str(checkpoint), "--features", str(tmp_path / name))
        assert res.returncode != 0 and message in res.stderr and "Traceback" not in res.stderr
    text = tmp_path / "text.npy"
    text.write_text("1 2 3\n")
    res = cli("predict", str(checkpoint), "--features", str(text))
    assert "not a .npy file (no NumPy header)" in res.stderr and "pickled" not in res.stderr


def test_a_refused_training_leaves_a_folder_that_was_there_as_it_was(cli, worlds, tmp_path):
    path = Path(shutil.copy(worlds[0], tmp_path / "nan.h5"))
    with h5py.File(path, "r+") as f:
        f["feature_map"][int(np.sort(f["trainval_loc"][()])[0])] = np.nan
    run = tmp_path / "mine"
    run.mkdir()
    (run / "notes.txt").write_text("the user's own file")
    sets = [x for s in [f"data.path={path}", *SMALL_MODEL, "train.epochs=1"] for x in ("--set", s)]
    res = cli("train", *sets, "--out", str(run))
    assert res.returncode != 0 and "holds NaN/inf" in res.stderr
    assert sorted(p.name for p in run.iterdir()) == [
        "notes.txt"
    ]  # no lock, config, env, checkpoints/


def test_predict_refuses_another_grid_and_names_the_nonfinite_input(cli, checkpoint, tmp_path):
    import crest

    model = crest.load(checkpoint)
    d, h, w = model.bench.feature_shape
    with pytest.raises(
        DataError, match=rf"a {h + 1} × {w + 1} grid; the model was trained on {h} × {w}"
    ):
        model.predict(np.zeros((2, d, h + 1, w + 1), np.float32))
    np.save(tmp_path / "grid.npy", np.zeros((2, d, h + 1, w + 1), np.float32))
    res = cli("predict", str(checkpoint), "--features", str(tmp_path / "grid.npy"))
    assert res.returncode != 0 and "grid" in res.stderr and "Traceback" not in res.stderr
    bad = np.zeros((3, d, h, w), np.float32)
    bad[1, 0, 0, 0] = np.inf
    with pytest.raises(DataError, match=r"input 1 holds NaN/inf values \(1 such inputs\)"):
        model.predict(bad)


def test_crest_load_keeps_torchs_unsafe_advice_out_of_the_traceback(tmp_path):
    import traceback

    import crest

    bad = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "config": {}, "epoch": 1}, bad)
    with pytest.raises(DataError, match="refused") as info:
        crest.load(bad)
    text = "".join(traceback.format_exception(info.value))
    for advice in ("Re-running", "weights_only` set to `False", "will likely succeed"):
        assert advice not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


class Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


def test_a_refused_checkpoint_says_why_and_never_suggests_loading_it_unsafely(cli, tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "config": {}, "epoch": 1}, bad)
    res = cli("eval", str(bad))
    assert res.returncode != 0 and "payload ran" not in res.stdout
    assert "refused" in res.stderr and "weights_only=True" in res.stderr
    for advice in ("Re-running", "weights_only` set to `False", "will likely succeed"):
        assert advice not in res.stderr
    pickled = tmp_path / "plain.pkl.pt"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    res = cli("eval", str(pickled))
    assert res.returncode != 0 and "Traceback" not in res.stderr


def test_a_cut_class_matrix_is_named_and_a_folder_is_not_a_file(cli, worlds, tmp_path):
    path = Path(shutil.copy(worlds[0], tmp_path / "cut.h5"))
    with h5py.File(path) as f:
        att, orig = f["att"][()], f["original_att"][()]
    _edit(path, "att", att[:-2])
    _edit(path, "original_att", orig[:-2])
    with pytest.raises(
        DataError, match=r"field 'att': \d+ rows \(classes\), but class_names lists"
    ):
        read_benchmark(path)
    res = cli("data", "info", str(tmp_path))
    assert res.returncode != 0 and "is a folder; expected an HDF5 benchmark file" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error:")


def test_mfu_is_measured_against_the_peak_of_the_precision_it_runs_in(monkeypatch):
    from crest.perf import bench

    seen: list[torch.dtype] = []
    real_mm = torch.mm

    def spy(a, b):
        seen.append(a.dtype)
        return real_mm(a, b)

    monkeypatch.setattr(torch, "mm", spy)
    bench.matmul_peak(torch.device("cpu"), "bf16", n=64, reps=1)
    bench.matmul_peak(torch.device("cpu"), "fp32", n=64, reps=1)
    assert set(seen[: len(seen) // 2]) == {torch.bfloat16} and set(seen[len(seen) // 2 :]) == {
        torch.float32
    }


@pytest.mark.parametrize("big", [1e4, 1e30])
def test_evidence_is_clamped_so_extreme_logits_give_finite_agreeing_losses(big):
    losses = []
    for dtype in (torch.float32, torch.bfloat16):
        logits = torch.zeros(2, 5, dtype=dtype)
        logits[:, 1] = big
        a1 = evidence_from_logits(logits) + 1.0
        a2 = evidence_from_logits(logits.flip(-1)) + 1.0
        fused = fuse_dempster(a1, a2)
        assert torch.isfinite(fused).all()
        single = edl_loss(a1, torch.tensor([1, 1]), 5)
        assert single >= 0
        losses.append(float(edl_loss(fused, torch.tensor([1, 1]), 5)))
    assert losses[0] == pytest.approx(losses[1], rel=1e-2)
