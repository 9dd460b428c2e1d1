"""Property-based fuzzing (Hypothesis) of the two readers that take files from users: the HDF5
benchmark reader and the class-file reader. Any corruption of a valid file must end in the
project's own DataError or in a correct read, never in another exception."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crest.class_files import read_class_file
from crest.data.schema.hdf5 import read_benchmark
from crest.errors import DataError

FUZZ = settings(
    max_examples=60,  # three properties: about 10 s together on 2 cores
    deadline=None,
    derandomize=True,  # the same examples in every CI run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KEYS = (
    "feature_map",
    "labels",
    "trainval_loc",
    "test_seen_loc",
    "test_unseen_loc",
    "train_loc",
    "val_loc",
    "att",
    "original_att",
    "w2v_att",
    "class_names",
    "attribute_names",
)


def _random_array(draw: st.DrawFn) -> np.ndarray:
    kind = draw(st.sampled_from(["int64", "float32", "float64", "bool", "S3", "empty", "nan"]))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "empty":
        return np.zeros((0,), dtype=np.int64)
    if kind == "S3":
        return np.full(shape, b"abc", dtype="S3")
    if kind == "nan":
        return np.full(shape, np.nan)
    values = (
        rng.integers(-3, 300, size=shape) if kind in ("int64", "bool") else rng.normal(size=shape)
    )
    return values.astype(kind)


@st.composite
def structural_edits(draw: st.DrawFn) -> list[tuple[str, str, np.ndarray | None]]:
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(KEYS))
        action = draw(st.sampled_from(["delete", "replace", "group"]))
        edits.append((key, action, _random_array(draw) if action == "replace" else None))
    return edits


def _read_or_data_error(path: Path) -> None:
    try:
        bench = read_benchmark(path)
    except DataError:
        return
    # a file that reads must be usable: consistent shapes and in-range rows
    assert bench.att.shape == (bench.num_classes, bench.num_attributes)
    for rows in bench.splits.values():
        assert rows.size == 0 or (0 <= rows.min() and rows.max() < bench.num_images)


@FUZZ
@given(edits=structural_edits())
def test_hdf5_reader_structural_corruption(tiny_world, tmp_path, edits):
    path = tmp_path / "fuzz.h5"
    shutil.copy(tiny_world, path)
    with h5py.File(path, "r+") as f:
        for key, action, value in edits:
            if key in f:
                del f[key]
            if action == "replace":
                assert value is not None
                f.create_dataset(key, data=value)
            elif action == "group":
                f.create_group(key)
    _read_or_data_error(path)


@FUZZ
@given(
    offsets=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
    payload=st.binary(min_size=1, max_size=64),
    truncate=st.one_of(st.none(), st.floats(0.0, 1.0)),
)
def test_hdf5_reader_byte_corruption(tiny_world, tmp_path, offsets, payload, truncate):
    data = bytearray(Path(tiny_world).read_bytes())
    for where in offsets:
        start = int(where * (len(data) - 1))
        data[start : start + len(payload)] = payload[: len(data) - start]
    if truncate is not None:
        data = data[: int(truncate * len(data))]
    path = tmp_path / "fuzz.h5"
    path.write_bytes(bytes(data))
    _read_or_data_error(path)


ATTRIBUTES = ["has_wing::red", "has_wing::blue", "size"]
#: pieces of class-file lines: attribute names, separators, numbers good and bad
TOKENS = [*ATTRIBUTES, "a", "b", ",", ":", ";", "0.5", "-1", "1e3", "nan", " ", '"', "\t"]


@FUZZ
@given(
    text=st.one_of(
        st.binary(max_size=200),
        st.lists(
            st.one_of(
                st.just("class," + ",".join(ATTRIBUTES)),
                st.lists(st.sampled_from(TOKENS), max_size=12).map("".join),
            ),
            max_size=6,
        ).map(lambda lines: "\n".join(lines).encode()),
    )
)
def test_class_file_reader(tmp_path, text):
    path = tmp_path / "classes.csv"
    path.write_bytes(text)
    try:
        table = read_class_file(path, ATTRIBUTES)
    except DataError:
        return
    assert table.matrix.shape == (len(table.names), len(ATTRIBUTES))
    assert np.allclose(np.linalg.norm(table.matrix, axis=1), 1.0, atol=1e-5)
    assert all(table.names) and len(set(table.names)) == len(table.names)
