"""Issue 12: inputs that used to give a silently wrong number, a traceback or a half-made run
folder. One test per finding, each through the path a user takes (library reader or real CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from conftest import SMALL_MODEL
from crest.class_files import read_class_file
from crest.config import load_config
from crest.data.schema.hdf5 import read_benchmark
from crest.data.sources.attribute_vectors import load_attribute_vectors, load_pickled_array
from crest.errors import ConfigError, CrestError, DataError
from crest.evidential import edl_loss, kl_to_uniform
from test_bad_input import _copy, _edit
from test_benchmark_file import write_transzero_file

CREST = str(Path(sys.executable).with_name("crest"))
QUICK = [*SMALL_MODEL, "train.batch_size=16", "eval.batch_size=64", "train.epochs=1"]


def crest(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CREST, *args], capture_output=True, text=True, timeout=timeout)


def sets(world: Path, *extra: str) -> list[str]:
    out = []
    for item in (f"data.path={world}", *QUICK, *extra):
        out += ["--set", item]
    return out


def _locs(path: Path, *keys: str) -> list[np.ndarray]:
    with h5py.File(path, "r") as f:
        return [f[k][()] for k in keys]


# ---- 1. split leakage ---------------------------------------------------------------------


def test_trainval_holding_test_seen_rows_is_refused(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    trainval, test_seen = _locs(path, "trainval_loc", "test_seen_loc")
    _edit(path, "trainval_loc", np.concatenate([trainval, test_seen[:2]]))
    with pytest.raises(DataError, match=r"field 'test_seen_loc': 2 rows are also in trainval_loc"):
        read_benchmark(path)


def test_train_holding_test_seen_rows_is_refused(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    train, test_seen = _locs(path, "train_loc", "test_seen_loc")
    _edit(path, "train_loc", np.concatenate([train, test_seen[:1]]))
    with pytest.raises(DataError, match=r"field 'test_seen_loc': 1 rows are also in train_loc"):
        read_benchmark(path)


def test_repeated_rows_are_refused(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    (trainval,) = _locs(path, "trainval_loc")
    _edit(path, "trainval_loc", np.concatenate([trainval, trainval[:3]]))
    with pytest.raises(DataError, match=r"field 'trainval_loc': 3 rows appear more than once"):
        read_benchmark(path)


def test_validation_classes_that_are_training_classes_are_refused(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    train, val, labels = _locs(path, "train_loc", "val_loc", "labels")
    # move one image of a validation class into train: that class is now trained on
    moved = val[:1]
    _edit(path, "train_loc", np.sort(np.concatenate([train, moved])))
    _edit(path, "val_loc", val[1:])
    assert labels[moved[0]] in set(labels[val[1:]].tolist())
    with pytest.raises(
        DataError, match=r"field 'val_loc': 1 validation classes also have train_loc"
    ):
        read_benchmark(path)


def test_leaky_file_does_not_train(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    trainval, test_seen = _locs(path, "trainval_loc", "test_seen_loc")
    _edit(path, "trainval_loc", np.concatenate([trainval, test_seen[:2]]))
    res = crest("train", *sets(path), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "rows are also in trainval_loc" in res.stderr
    assert not (tmp_path / "run").exists()
    info = crest("data", "info", str(path))
    assert info.returncode == 2 and "rows are also in trainval_loc" in info.stderr


# ---- 4. non-finite features -----------------------------------------------------------------


def _poison(path: Path, row: int) -> None:
    with h5py.File(path, "r+") as f:
        x = f["feature_map"][row]
        x[0, 0, 0] = np.nan
        f["feature_map"][row] = x


def test_nan_in_test_features_stops_training_and_eval(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    (unseen,) = _locs(path, "test_unseen_loc")
    _poison(path, int(unseen[3]))
    res = crest("train", *sets(path), "--out", str(tmp_path / "run"))
    assert res.returncode == 2, res.stderr
    assert f"field 'feature_map': row {int(unseen[3])} holds NaN/inf" in res.stderr
    assert "b.h5" in res.stderr and "Traceback" not in res.stderr


def test_nan_in_training_features_names_file_field_and_row(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    (trainval,) = _locs(path, "trainval_loc")
    _poison(path, int(trainval[5]))
    res = crest("train", *sets(path, "train.max_steps_per_epoch=100"), "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert f"b.h5: field 'feature_map': row {int(trainval[5])} holds NaN/inf" in res.stderr


# ---- 5. empty splits ------------------------------------------------------------------------


def test_empty_test_unseen_is_refused_before_training(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    _edit(path, "test_unseen_loc", np.zeros(0, dtype=np.int64))
    info = crest("data", "info", str(path))
    assert info.returncode == 2 and "field 'test_unseen_loc': is empty" in info.stderr
    res = crest("train", *sets(path), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()


# ---- 6. config ranges -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.bank_size=1", "DIGS contrasts the best and second-best"),
        ("train.batch_size=0", "train.batch_size=0; expected ≥ 1"),
        ("train.lr=-1", "train.lr=-1.0; expected > 0"),
        ("train.lr=nan", "train.lr=nan; expected > 0"),
        ("train.epochs=0", "train.epochs=0; expected ≥ 1"),
        ("model.dropout=2", "model.dropout=2.0; expected in [0, 1)"),
        ("eval.batch_size=0", "eval.batch_size=0; expected ≥ 1"),
        ("model.mu=2.5", "model.mu=2.5; expected in [0, 1]"),
        ("model.bank_topk=999", "model.bank_topk=999 > model.bank_size=32"),
    ],
)
def test_config_values_are_range_checked(override, message):
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        load_config(None, [override])


def test_both_branches_off_is_refused_before_any_folder(tiny_world, tmp_path):
    res = crest(
        "train",
        *sets(tiny_world, "model.use_vgt=false", "model.use_agt=false"),
        "--out",
        str(tmp_path / "run"),
    )
    assert res.returncode == 2 and "expected at least one branch" in res.stderr
    assert not (tmp_path / "run").exists()


def test_bank_wider_than_the_attributes_is_refused(tiny_world, tmp_path):
    res = crest("train", *sets(tiny_world, "model.bank_dim=64"), "--out", str(tmp_path / "run"))
    assert res.returncode == 2
    assert "model.bank_dim=64 for 12 attributes; expected d_p < A" in res.stderr


# ---- 7. types -------------------------------------------------------------------------------


def test_string_att_is_a_clear_error(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    (att,) = _locs(path, "att")
    _edit(path, "att", np.array([[str(v) for v in row] for row in att], dtype="S8"))
    with pytest.raises(DataError, match=r"field 'att': dtype \|S8; expected real numbers"):
        read_benchmark(path)


def test_string_feature_map_is_refused_by_data_info(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    with h5py.File(path, "r+") as f:
        shape = f["feature_map"].shape
        del f["feature_map"]
        f.create_dataset("feature_map", shape=shape, dtype="S4")
    res = crest("data", "info", str(path))
    assert (
        res.returncode == 2
        and "field 'feature_map': dtype |S4; expected real numbers" in res.stderr
    )


def test_float_labels_with_fractions_are_refused(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    (labels,) = _locs(path, "labels")
    _edit(path, "labels", labels.astype(np.float64) + 0.4)
    with pytest.raises(DataError, match=r"field 'labels': expected integer values"):
        read_benchmark(path)
    _edit(path, "labels", labels.astype(np.float64))  # whole numbers stored as floats are fine
    np.testing.assert_array_equal(read_benchmark(path).labels, labels)


def test_zero_channel_feature_map_is_refused(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    with h5py.File(path, "r+") as f:
        n, _, h, w = f["feature_map"].shape
        del f["feature_map"]
        f.create_dataset("feature_map", shape=(n, 0, h, w), dtype="f4")
    with pytest.raises(DataError, match=r"field 'feature_map': .*at least one channel"):
        read_benchmark(path)


# ---- 8. tracebacks that become errors -------------------------------------------------------


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  d: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML at line \d+"):
        load_config(str(bad))
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("model: !!python/object/apply:os.system ['true']\n")
    res = crest("train", "--config", str(tagged))
    assert res.returncode == 2 and "tagged.yaml: not valid YAML" in res.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("class,a\nx,1\n".encode("utf-16"), "is UTF-16 text; expected UTF-8"),
        (b"\x00\x01\x02binary", "is a binary file"),
        (b"class,attribute_0,attribute_1\n", "no classes found"),
        (b"class,attribute_0,attribute_1\n,1,0\n", "class name.*is empty"),
        (b"caf\xe9,1\n", "is not UTF-8 text"),
    ],
)
def test_bad_class_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "classes.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_class_file(path, ["attribute_0", "attribute_1"])


def test_object_dtype_pickle_is_refused(tmp_path):
    import pickle

    path = tmp_path / "vectors.pkl"
    path.write_bytes(pickle.dumps(np.array([["a", "b"], ["c", "d"]], dtype=object)))
    with pytest.raises(DataError, match=r"vectors\.pkl"):
        load_attribute_vectors(path)
    words = tmp_path / "words.pkl"
    words.write_bytes(pickle.dumps(np.array([["a", "b"], ["c", "d"]])))
    assert load_pickled_array(words).dtype.kind == "U"
    with pytest.raises(DataError, match=r"dtype <U1; expected real numbers"):
        load_attribute_vectors(words)


def test_like_lists_the_datasets_that_work(shared_data, tmp_path):
    for name in ("FOO", "AWA1"):
        res = crest("data", "synth", "--like", name, "--out", str(tmp_path / "w.h5"))
        assert res.returncode == 2, res.stderr
        assert "expected one of AWA2, CUB, SUN" in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / "w.h5").exists()


def test_synth_on_a_full_disk_is_refused_before_writing(tmp_path, monkeypatch):
    import crest.atomic as atomic
    from crest.cli import main

    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 1000)
    args = ["--classes", "12", "--unseen", "3", "--val-classes", "2"]
    code = main(["data", "synth", "--out", str(tmp_path / "w.h5"), *args])
    assert code == 2 and not (tmp_path / "w.h5").exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_checkpoint_write_on_a_full_disk_says_so(tmp_path, monkeypatch):
    import crest.atomic as atomic
    from crest.engine import checkpoint

    def failing_save(obj, f):  # what torch raises when the disk fills mid-write
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 0 vs 64")

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 0)
    with pytest.raises(CrestError, match=r"last\.pt: could not be written: the disk is full"):
        checkpoint.save_checkpoint(tmp_path / "last.pt", {"x": 1})
    assert list(tmp_path.iterdir()) == []


# ---- 9. smaller -----------------------------------------------------------------------------


def test_transposed_att_names_the_real_problem(tmp_path):
    path = write_transzero_file(tmp_path / "tz.h5")  # 6 classes, 5 attributes
    (att,) = _locs(path, "att")
    _edit(path, "att", att.T)
    with pytest.raises(
        DataError, match=r"field 'att': shape \(5, 6\) looks like \(attributes, classes\)"
    ):
        read_benchmark(path)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_evidential_losses_are_computed_in_float32(dtype):
    g = torch.Generator().manual_seed(0)
    alpha = 1.0 + 30.0 * torch.rand(64, 200, generator=g)
    target = torch.randint(0, 200, (64,), generator=g)
    reference = edl_loss(alpha, target, epoch=5)
    low = edl_loss(alpha.to(dtype), target, epoch=5)
    assert low.dtype == torch.float32 and torch.isfinite(low) and low > 0
    assert torch.isclose(low, reference, rtol=0.05)
    assert torch.all(kl_to_uniform(alpha.to(dtype)) >= 0)


# ---- 2. one owner per run folder ------------------------------------------------------------


def test_second_training_into_a_busy_folder_fails_at_once_and_changes_nothing(tiny_world, tmp_path):
    import time

    run = tmp_path / "run"
    first = subprocess.Popen(
        [CREST, "train", *sets(tiny_world, "train.epochs=30"), "--out", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while not (run / "metrics.jsonl").exists():  # the first run is well under way
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.05)
        before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
        contents = {p: p.read_bytes() for p in before}
        start = time.perf_counter()
        second = crest("train", *sets(tiny_world), "--out", str(run))
        elapsed = time.perf_counter() - start
        assert second.returncode == 2 and "in use by another crest run" in second.stderr
        assert f"PID {first.pid}" in second.stderr
        assert elapsed < 2.0, f"took {elapsed:.2f} s"
        # nothing the first run had written was touched by the second
        for p, data in contents.items():
            if p.exists() and p.name in ("config.yaml", "env.json", ".crest.lock"):
                assert p.read_bytes() == data, p
    finally:
        first.kill()
        first.wait()


def test_stale_lock_and_temporaries_of_a_dead_writer_are_taken_over(tiny_world, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".crest.lock").write_text("999999\n")  # a PID that holds no lock
    leftover = run / "checkpoints" / ".last.pt.abc123.pt.tmp"
    leftover.write_bytes(b"")
    res = crest("train", *sets(tiny_world), "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert not leftover.exists() and (run / "metrics.json").exists()


# ---- 3. resume means resume -----------------------------------------------------------------


def test_resume_without_checkpoint_uses_the_folders_config(tiny_world, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config(None, [f"data.path={tiny_world}", *QUICK, "train.epochs=2"])
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    res = crest("train", "--resume", "--out", str(run))
    assert res.returncode == 0, res.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["path"] == str(tiny_world) and saved["train"]["epochs"] == 2
    assert saved["model"]["d"] == 16  # not the default synthetic config


def test_resume_of_an_empty_folder_refuses(tmp_path):
    (tmp_path / "run").mkdir()
    res = crest("train", "--resume", "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "nothing to resume" in res.stderr


def test_resume_refuses_changes_but_extends_epochs(tiny_world, tmp_path):
    run = tmp_path / "run"
    assert crest("train", *sets(tiny_world, "train.epochs=2"), "--out", str(run)).returncode == 0
    changed = crest("train", "--resume", "--out", str(run), "--set", "train.lr=0.5")
    assert changed.returncode == 2 and "refusing to change train.lr=0.5" in changed.stderr
    config = crest("train", "--resume", "--config", "cub", "--out", str(run))
    assert config.returncode == 2 and "--config cub is not allowed" in config.stderr
    shorter = crest("train", "--resume", "--out", str(run), "--set", "train.epochs=1")
    assert shorter.returncode == 2 and "cannot shorten" in shorter.stderr
    longer = crest("train", "--resume", "--out", str(run), "--set", "train.epochs=4")
    assert longer.returncode == 0, longer.stderr
    epochs = [
        yaml.safe_load(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [1, 2, 3, 4]


def test_training_killed_at_random_moments_resumes_bit_for_bit(tiny_world, tmp_path):
    """SIGKILL a training at seeded random moments (before its first checkpoint, during an
    epoch, during evaluation...), resume each time; the final model equals an uninterrupted one."""
    import random
    import signal
    import time

    args = sets(tiny_world, "train.epochs=5")
    reference = crest("train", *args, "--out", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    run, rng, kills = tmp_path / "run", random.Random(12), 0
    while not (run / "metrics.json").exists():
        started = (run / "config.yaml").exists() or (run / "checkpoints" / "last.pt").exists()
        cmd = (
            ["train", "--resume", "--out", str(run)]
            if started
            else ["train", *args, "--out", str(run)]
        )
        proc = subprocess.Popen([CREST, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < 3:
            time.sleep(rng.uniform(1.5, 6.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    assert kills >= 1
    a = torch.load(tmp_path / "ref" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["history"][-1]["gzsl_h"] == b["history"][-1]["gzsl_h"]
    assert not list(run.rglob(".*.tmp"))


def test_eval_on_a_file_of_another_feature_width_is_a_clear_error(tiny_world, tmp_path):
    from dataclasses import replace

    from conftest import TINY
    from crest.data.synthetic.generator import generate_default_world

    run = tmp_path / "run"
    assert crest("train", *sets(tiny_world), "--out", str(run)).returncode == 0
    wide = generate_default_world(tmp_path / "wide.h5", replace(TINY, feature_dim=24))
    res = crest("eval", str(run / "checkpoints" / "last.pt"), "--data", str(wide))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert (
        "wide.h5: field 'feature_map': 24 channels; the model in last.pt was trained on 16"
        in res.stderr
    )


def test_class_name_clash_names_the_class_file(tiny_world, tmp_path):
    import crest as api

    run = tmp_path / "run"
    assert crest_cli_train(tiny_world, run)
    model = api.load(run / "checkpoints" / "last.pt")
    path = tmp_path / "mine.txt"
    path.write_text(f"{model.class_names[0]}: {model.attribute_names[0]}\n")
    classes = api.read_class_file(path, model.attribute_names)
    features = np.zeros((1, 16, 4, 4), dtype=np.float32)
    with pytest.raises(
        DataError, match=r"mine\.txt: field 'class '.*': already exists in the model"
    ):
        model.predict(features, classes=classes)


def crest_cli_train(world: Path, run: Path) -> bool:
    return crest("train", *sets(world), "--out", str(run)).returncode == 0


def test_nan_features_in_a_loader_worker_stay_a_clear_error(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    (trainval,) = _locs(path, "trainval_loc")
    _poison(path, int(trainval[2]))
    # streamed (data.cache=stream): the default would read the rows into memory, with no worker
    worker = sets(path, "data.num_workers=1", "data.cache=stream")
    res = crest("train", *worker, "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"field 'feature_map': row {int(trainval[2])} holds NaN/inf" in res.stderr


def _trained_and_a_copy(world: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A run trained on ``world`` and a copy of ``world`` to damage before `crest eval --data`."""
    run = tmp_path / "run"
    assert crest_cli_train(world, run)
    return run, _copy(world, tmp_path / "b.h5")


def _eval_on(run: Path, path: Path) -> subprocess.CompletedProcess:
    res = crest("eval", str(run / "checkpoints" / "last.pt"), "--data", str(path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    return res


def test_nan_in_test_features_stops_eval(tiny_world, tmp_path):
    run, path = _trained_and_a_copy(tiny_world, tmp_path)
    (unseen,) = _locs(path, "test_unseen_loc")
    _poison(path, int(unseen[0]))
    res = _eval_on(run, path)
    assert f"field 'feature_map': row {int(unseen[0])} holds NaN/inf" in res.stderr


def test_eval_on_a_file_with_empty_test_unseen_is_a_clear_error(tiny_world, tmp_path):
    run, path = _trained_and_a_copy(tiny_world, tmp_path)
    _edit(path, "test_unseen_loc", np.zeros(0, dtype=np.int64))
    res = _eval_on(run, path)
    assert "field 'test_unseen_loc': is empty" in res.stderr
