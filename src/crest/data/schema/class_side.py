"""The class side of a benchmark as a model file keeps it (checkpoints and exports): class and
attribute names, the class attribute matrix, the attribute word vectors, the seen/unseen split, the
feature shape and the file's own settings (extraction, generator). With it a trained model
evaluates, predicts and explains without the (19-60 GB) training file."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from crest.data.schema.benchmark import Benchmark

#: the arrays of a stored class side (tensors in a checkpoint, safetensors entries in an export)
ARRAYS = ("att", "original_att", "w2v_att", "seen_classes", "unseen_classes")


def class_side_state(bench: Benchmark) -> dict[str, Any]:
    """What a checkpoint stores of ``bench``: tensors, strings, lists and numbers only (loadable
    with ``weights_only=True``)."""
    assert bench.feature_shape is not None
    return {
        "att": torch.as_tensor(np.asarray(bench.att, np.float32)),
        "original_att": torch.as_tensor(np.asarray(bench.original_att, np.float32)),
        "w2v_att": torch.as_tensor(np.asarray(bench.w2v_att, np.float32)),
        "seen_classes": torch.as_tensor(np.asarray(bench.seen_classes, np.int64)),
        "unseen_classes": torch.as_tensor(np.asarray(bench.unseen_classes, np.int64)),
        "class_names": list(bench.class_names),
        "attribute_names": list(bench.attribute_names),
        "feature_shape": [int(v) for v in bench.feature_shape],
        "feature_dtype": bench.feature_dtype,
        "meta": json.dumps(bench.meta, default=str),  # extraction/generator settings, as saved
    }


def split_arrays(side: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(arrays, the rest): an export keeps the arrays beside the weights, the rest as JSON."""
    arrays = {k: side[k] for k in ARRAYS if k in side}
    return arrays, {k: v for k, v in side.items() if k not in ARRAYS}


def class_side_benchmark(side: dict[str, Any]) -> Benchmark:
    """A :class:`Benchmark` without images, rebuilt from a stored class side: class matrix, names,
    word vectors, the seen/unseen split and the feature shape; no labels, splits or file."""

    def array(key: str, dtype: Any) -> np.ndarray:
        value = side[key]
        return (value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)).astype(
            dtype
        )

    meta = side.get("meta", "{}")
    return Benchmark(
        att=array("att", np.float32),
        original_att=array("original_att", np.float32),
        w2v_att=array("w2v_att", np.float32),
        labels=np.zeros(0, np.int64),
        splits={},
        class_names=list(side["class_names"]),
        attribute_names=list(side["attribute_names"]),
        feature_shape=tuple(int(v) for v in side["feature_shape"]),  # type: ignore[arg-type]
        feature_dtype=side.get("feature_dtype"),
        meta=json.loads(meta) if isinstance(meta, str) else dict(meta),
        stored_split=(array("seen_classes", np.int64), array("unseen_classes", np.int64)),
    )
