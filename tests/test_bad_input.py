"""Bad input: one test each, each a clear error naming file and field, and nothing half-written."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from crest.data.schema.hdf5 import read_benchmark
from crest.data.schema.writer import BenchmarkWriter
from crest.data.sources.attribute_vectors import load_attribute_vectors
from crest.errors import DataError


def _copy(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def _edit(path: Path, key: str, value: np.ndarray) -> None:
    with h5py.File(path, "r+") as f:
        del f[key]
        f.create_dataset(key, data=value)


def test_missing_key(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    with h5py.File(path, "r+") as f:
        del f["w2v_att"]
    with pytest.raises(DataError, match=r"b\.h5: field 'w2v_att': missing"):
        read_benchmark(path)


def test_wrong_shape(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    with h5py.File(path, "r") as f:
        w2v = f["w2v_att"][()]
    _edit(path, "w2v_att", w2v[:-1])
    with pytest.raises(DataError, match=r"field 'w2v_att': shape \(11, 20\); expected \(12, D_w\)"):
        read_benchmark(path)


def test_split_index_out_of_range(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    with h5py.File(path, "r") as f:
        locs, n = f["test_seen_loc"][()], f["labels"].shape[0]
    locs[0] = n + 5
    _edit(path, "test_seen_loc", locs)
    with pytest.raises(
        DataError, match=r"field 'test_seen_loc': index out of range .* expected 0-based rows"
    ):
        read_benchmark(path)


def test_seen_unseen_overlap(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    with h5py.File(path, "r") as f:
        trainval, unseen = f["trainval_loc"][()], f["test_unseen_loc"][()]
    _edit(path, "trainval_loc", np.concatenate([trainval, unseen[:1]]))
    with pytest.raises(
        DataError, match=r"field 'test_unseen_loc': 1 unseen classes also appear in trainval_loc"
    ):
        read_benchmark(path)


def test_nan_in_att(tiny_world, tmp_path):
    path = _copy(tiny_world, tmp_path / "b.h5")
    with h5py.File(path, "r") as f:
        att = f["att"][()]
    att[2, 1] = np.nan
    _edit(path, "att", att)
    with pytest.raises(DataError, match=r"field 'att': contains 1 NaN/inf values"):
        read_benchmark(path)


def test_truncated_file(tiny_world, tmp_path):
    path = tmp_path / "b.h5"
    path.write_bytes(tiny_world.read_bytes()[: os.path.getsize(tiny_world) // 3])
    with pytest.raises(
        DataError, match=r"b\.h5: not a readable HDF5 file \(truncated or corrupt\?\)"
    ):
        read_benchmark(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(
        DataError, match=r"evil\.pkl: not a pickled numpy array .*refusing to load global"
    ):
        load_attribute_vectors(path)
    assert not (tmp_path / "pwned").exists()


def test_pickled_array_still_loads(tmp_path):
    arr = np.random.default_rng(0).normal(size=(5, 7))
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(arr))
    np.testing.assert_allclose(load_attribute_vectors(path), arr.astype(np.float32))


def test_failed_write_leaves_nothing(tiny_world, tmp_path):
    bench = read_benchmark(tiny_world)
    out = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="boom"), BenchmarkWriter(out, bench) as w:
        w.write_features(0, np.zeros((2, *bench.feature_shape), dtype=np.float32))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_incomplete_write_is_an_error(tiny_world, tmp_path):
    bench = read_benchmark(tiny_world)
    out = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="wrote 2 of"), BenchmarkWriter(out, bench) as w:
        w.write_features(0, np.zeros((2, *bench.feature_shape), dtype=np.float32))
    assert not out.exists()
