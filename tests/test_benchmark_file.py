"""The benchmark HDF5 schema: the TransZero/CREST file as it is, extras, lazy streaming, float16."""

from __future__ import annotations

import h5py
import numpy as np
import torch

from crest.data.schema.benchmark import validation_protocol
from crest.data.schema.dataset import FeatureDataset, contiguous_runs, feature_loader
from crest.data.schema.hdf5 import read_benchmark, read_ground_truth
from crest.data.schema.writer import BenchmarkWriter


def write_transzero_file(path, n=30, c=6, a=5, grid=(3, 3), d=8, seed=0):
    """Exactly what the TransZero/CREST extraction script writes: these keys, these dtypes, nothing else."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(c), n // c)
    unseen = labels >= 4
    seen_rows = np.flatnonzero(~unseen)
    att = rng.random((c, a))
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "feature_map", data=rng.random((n, d, *grid)).astype(np.float32), compression="gzip"
        )
        f.create_dataset("labels", data=labels, compression="gzip")
        f.create_dataset("trainval_loc", data=seen_rows[::2][:-1], compression="gzip")
        f.create_dataset("test_seen_loc", data=seen_rows[1::2], compression="gzip")
        f.create_dataset("test_unseen_loc", data=np.flatnonzero(unseen), compression="gzip")
        f.create_dataset(
            "att", data=att / np.linalg.norm(att, axis=1, keepdims=True), compression="gzip"
        )
        f.create_dataset("original_att", data=att * 100, compression="gzip")
        f.create_dataset("w2v_att", data=rng.normal(size=(a, 300)), compression="gzip")
    return path


def test_transzero_schema_reads_as_is(tmp_path):
    bench = read_benchmark(write_transzero_file(tmp_path / "tz.h5"))
    assert (bench.num_classes, bench.num_attributes, bench.num_images) == (6, 5, 30)
    assert bench.feature_shape == (8, 3, 3) and bench.num_regions == 9
    assert bench.seen_classes.tolist() == [0, 1, 2, 3] and bench.unseen_classes.tolist() == [4, 5]
    assert (
        bench.class_names[0] == "class_0" and not bench.has_val_split and not bench.has_ground_truth
    )
    data = FeatureDataset(bench.path, bench.splits["test_unseen"])
    x, y = data[0]
    assert x.shape == (8, 3, 3) and x.dtype == torch.float32 and y == 4


def test_class_matrix_clamps_negatives_and_normalises(tmp_path):
    bench = read_benchmark(write_transzero_file(tmp_path / "tz.h5"))
    bench.att[0, 0] = -0.5
    z = bench.class_matrix()
    assert z.min() >= 0
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)


def test_round_trip_with_extras_and_float16(tiny_world, tmp_path):
    bench = read_benchmark(tiny_world)
    out = tmp_path / "f16.h5"
    src = FeatureDataset(tiny_world, np.arange(bench.num_images))
    with BenchmarkWriter(out, bench, dtype="float16") as w:
        w.write_features(0, src.read_rows(np.arange(bench.num_images)))
    again = read_benchmark(out)
    assert again.feature_dtype == "float16"
    assert again.class_names == bench.class_names and again.attribute_names == bench.attribute_names
    for name, rows in bench.splits.items():
        np.testing.assert_array_equal(again.splits[name], rows)
    a = FeatureDataset(out, bench.splits["trainval"])
    b = FeatureDataset(tiny_world, bench.splits["trainval"])
    xa, _ = a[3]
    xb, _ = b[3]
    assert xa.dtype == torch.float32
    np.testing.assert_allclose(xa.numpy(), xb.numpy(), rtol=1e-3, atol=1e-3)


def test_batched_reads_match_single_reads_in_any_order(tiny_world):
    bench = read_benchmark(tiny_world)
    rows = bench.splits["trainval"]
    data = FeatureDataset(tiny_world, rows)
    order = [7, 2, 2, 30, 3, 4, 5, 0]
    xs, ys = data.__getitems__(order)
    for x, y, i in zip(xs, ys, order, strict=True):
        x1, y1 = data[i]
        assert torch.equal(x, x1) and int(y) == y1 == bench.labels[rows[i]]


def test_dataloader_with_workers_streams_every_row_once(tiny_world):
    bench = read_benchmark(tiny_world)
    rows = bench.splits["test_seen"]
    loader = feature_loader(
        FeatureDataset(tiny_world, rows), batch_size=5, num_workers=2, shuffle=False
    )
    labels = torch.cat([y for _, y in loader])
    assert labels.tolist() == bench.labels[rows].tolist()


def test_contiguous_runs():
    assert contiguous_runs(np.array([1, 2, 3, 7, 9, 10])) == [(1, 4), (7, 8), (9, 11)]
    assert contiguous_runs(np.array([], dtype=np.int64)) == []


def test_validation_protocol_is_clean(tiny_world):
    bench = read_benchmark(tiny_world)
    proto = validation_protocol(bench)
    test_seen = bench.splits["test_seen"]
    for rows in (proto.fit, proto.val_seen, proto.val_unseen):
        assert not np.intersect1d(rows, test_seen).size
    assert not np.intersect1d(proto.fit, proto.val_seen).size
    assert not np.intersect1d(proto.seen_classes, proto.unseen_classes).size
    assert set(bench.labels[proto.val_seen]) <= set(proto.seen_classes.tolist())
    assert not np.isin(proto.unseen_classes, bench.unseen_classes).any()


def test_ground_truth_rows_in_any_order(tiny_world):
    gt = read_ground_truth(tiny_world, np.array([5, 1, 3]))
    direct = read_ground_truth(tiny_world, np.array([1]))
    np.testing.assert_array_equal(gt["part_masks"][1], direct["part_masks"][0])
    assert gt["part_masks"].shape[1:] == (3, 4, 4)


def test_no_validation_split_draws_validation_classes_from_trainval(tmp_path):
    # a TransZero file has no train_loc/val_loc: validation classes are drawn among the trainval
    # classes (seeded), never touching test rows
    bench = read_benchmark(write_transzero_file(tmp_path / "tz.h5"))
    proto = validation_protocol(bench, seed=1)
    assert proto.source == "drawn"
    assert not np.intersect1d(proto.seen_classes, proto.unseen_classes).size
    assert set(proto.unseen_classes.tolist()) <= set(bench.seen_classes.tolist())
    used = np.concatenate([proto.fit, proto.val_seen, proto.val_unseen])
    assert np.isin(used, bench.splits["trainval"]).all()
    again = validation_protocol(bench, seed=1)
    np.testing.assert_array_equal(proto.unseen_classes, again.unseen_classes)


def test_transzero_file_trains_unchanged(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = write_transzero_file(tmp_path / "tz.h5", n=60, c=6, a=5, grid=(3, 3), d=8)
    crest = str(Path(sys.executable).with_name("crest"))
    args = [crest, "train", "--config", "configs/cub.yaml", "--out", str(tmp_path / "run")]
    for item in (
        f"data.path={path}",
        "train.epochs=1",
        "model.d=16",
        "model.d_ff=32",
        "model.bank_size=4",
        "model.bank_dim=4",
        "train.batch_size=8",
    ):
        args += ["--set", item]
    res = subprocess.run(
        args, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1]
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "run" / "metrics.json").exists()
