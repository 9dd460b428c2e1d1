"""Derive a benchmark without some classes: their rows, images and class-matrix rows are gone.

Used to check zero-shot recognition of classes the model has never heard of, and handy for
hold-out experiments on one's own data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crest.data.schema.benchmark import Benchmark
from crest.data.schema.dataset import FeatureDataset
from crest.data.schema.hdf5 import read_benchmark
from crest.data.schema.writer import BenchmarkWriter


def remove_classes(path: str | Path, classes: list[int], out: str | Path, batch: int = 256) -> Path:
    """Write ``out``: the benchmark at ``path`` minus ``classes`` (ids of the original file)."""
    src = read_benchmark(path)
    assert src.feature_shape is not None
    drop = np.asarray(sorted(set(classes)), dtype=np.int64)
    keep_cls = np.setdiff1d(np.arange(src.num_classes), drop)
    new_id = np.full(src.num_classes, -1)
    new_id[keep_cls] = np.arange(len(keep_cls))
    keep_rows = np.flatnonzero(~np.isin(src.labels, drop))
    new_row = np.full(src.num_images, -1)
    new_row[keep_rows] = np.arange(len(keep_rows))
    splits = {}
    for name, rows in src.splits.items():
        kept = new_row[rows]
        splits[name] = np.sort(kept[kept >= 0])
    bench = Benchmark(
        att=src.att[keep_cls],
        original_att=src.original_att[keep_cls],
        w2v_att=src.w2v_att,
        labels=new_id[src.labels[keep_rows]],
        splits=splits,
        class_names=[src.class_names[c] for c in keep_cls],
        attribute_names=src.attribute_names,
        image_files=[src.image_files[r] for r in keep_rows] if src.image_files else None,
        feature_shape=src.feature_shape,
        meta={
            **{k: v for k, v in src.meta.items() if k != "crest_schema_version"},
            "derived_from": str(path),
            "removed_classes": drop.tolist(),
        },
    )
    data = FeatureDataset(path, keep_rows, labels=src.labels)
    with BenchmarkWriter(out, bench, dtype=src.feature_dtype or "float32") as writer:
        for start in range(0, len(keep_rows), batch):
            positions = np.arange(start, min(start + batch, len(keep_rows)))
            writer.write_features(start, data.read_rows(positions))
    return Path(out)
