"""Write the benchmark HDF5 schema (:mod:`crest.data.schema.hdf5`), atomically."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from crest.atomic import atomic_path, ensure_space
from crest.data.schema.benchmark import Benchmark
from crest.data.schema.checks import validate_class_side
from crest.data.schema.hdf5 import SCHEMA_VERSION


def write_class_side(f: h5py.File, b: Benchmark) -> None:
    """Every dataset of the schema but ``feature_map`` (and the ground truth): labels, locs, class
    matrices, attribute vectors and the name lists."""
    f.create_dataset("labels", data=b.labels.astype(np.int64))
    for name, locs in b.splits.items():
        f.create_dataset(f"{name}_loc", data=np.asarray(locs, dtype=np.int64))
    f.create_dataset("att", data=b.att.astype(np.float32))
    f.create_dataset("original_att", data=b.original_att.astype(np.float32))
    f.create_dataset("w2v_att", data=b.w2v_att.astype(np.float32))
    text = h5py.string_dtype("utf-8")
    f.create_dataset("class_names", data=np.array(b.class_names, dtype=object), dtype=text)
    f.create_dataset("attribute_names", data=np.array(b.attribute_names, dtype=object), dtype=text)
    if b.image_files is not None:
        f.create_dataset("image_files", data=np.array(b.image_files, dtype=object), dtype=text)


class BenchmarkWriter:
    """Write a benchmark file in batches, atomically: the final name appears only when complete.

    >>> with BenchmarkWriter(out, bench, dtype="float16") as w:   # doctest: +SKIP
    ...     for start, batch in batches:
    ...         w.write_features(start, batch)
    """

    def __init__(
        self,
        path: str | Path,
        bench: Benchmark,
        dtype: str = "float32",
        compression: str | None = None,
        ground_truth_parts: int | None = None,
    ) -> None:
        if bench.feature_shape is None:
            raise ValueError("bench.feature_shape must be set before writing features")
        validate_class_side(bench, Path(path))
        self.path = Path(path)
        self.bench = bench
        self.dtype = np.dtype(dtype)
        self.compression = compression
        self.ground_truth_parts = ground_truth_parts
        self._atomic = atomic_path(self.path, suffix=".h5")
        self._file: h5py.File | None = None
        self._written = 0

    def expected_bytes(self) -> int:
        """The file's size, give or take its small datasets (checked against free space first)."""
        b = self.bench
        assert b.feature_shape is not None
        size = b.num_images * int(np.prod(b.feature_shape)) * self.dtype.itemsize
        if self.ground_truth_parts is not None:
            _, h, w = b.feature_shape
            size += b.num_images * (self.ground_truth_parts * h * w + b.num_attributes)
        return size

    def __enter__(self) -> BenchmarkWriter:
        ensure_space(self.path, self.expected_bytes())
        tmp = self._atomic.__enter__()
        self._file = h5py.File(tmp, "w")
        self._create(self._file)
        return self

    def _create(self, f: h5py.File) -> None:
        b = self.bench
        assert b.feature_shape is not None
        n = b.num_images
        f.create_dataset(
            "feature_map",
            shape=(n, *b.feature_shape),
            dtype=self.dtype,
            chunks=(1, *b.feature_shape),
            compression=self.compression,
        )
        write_class_side(f, b)
        if self.ground_truth_parts is not None:
            _, h, w = b.feature_shape
            p = self.ground_truth_parts
            f.create_dataset(
                "part_masks", shape=(n, p, h, w), dtype=np.uint8, chunks=(min(n, 256), p, h, w)
            )
            f.create_dataset("image_attributes", shape=(n, b.num_attributes), dtype=np.uint8)
        f.attrs["crest_schema_version"] = SCHEMA_VERSION
        for key, value in b.meta.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value

    def write_features(self, start: int, batch: np.ndarray) -> None:
        assert self._file is not None, "use BenchmarkWriter as a context manager"
        self._file["feature_map"][start : start + len(batch)] = batch.astype(self.dtype, copy=False)
        self._written += len(batch)

    def write_ground_truth(
        self,
        start: int,
        part_masks: np.ndarray,
        image_attributes: np.ndarray,
        attribute_part: np.ndarray | None = None,
    ) -> None:
        assert self._file is not None
        self._file["part_masks"][start : start + len(part_masks)] = part_masks
        self._file["image_attributes"][start : start + len(image_attributes)] = image_attributes
        if attribute_part is not None and "attribute_part" not in self._file:
            self._file.create_dataset("attribute_part", data=attribute_part.astype(np.int64))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None
        self._file.close()
        if exc is None and self._written != self.bench.num_images:
            exc = RuntimeError(
                f"{self.path}: wrote {self._written} of {self.bench.num_images} feature rows"
            )
            self._atomic.__exit__(type(exc), exc, None)
            raise exc
        self._atomic.__exit__(exc_type, exc, tb)
