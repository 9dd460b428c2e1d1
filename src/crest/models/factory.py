"""The one door to a CREST model: :func:`create_model` builds it from a config and a class side
(in the manner of open_clip's ``create_model``); loading a trained one goes through
:func:`crest.engine.checkpoint.load_model`, which calls this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crest.config import Config, ModelConfig
from crest.models.crest import CrestModel


class ClassSide(Protocol):
    """What a model is shaped by: a :class:`~crest.data.schema.benchmark.Benchmark` has it."""

    @property
    def feature_shape(self) -> tuple[int, int, int] | None: ...

    @property
    def w2v_att(self) -> np.ndarray: ...

    def class_matrix(self) -> np.ndarray: ...


@dataclass(frozen=True)
class ArraySide:
    """A class side given as arrays: feature channels, attribute vectors (A, D_w) and Z (C, A)
    (tests, benchmarks, a model built for its shapes only)."""

    feature_dim: int
    attribute_vectors: np.ndarray
    classes: np.ndarray

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        return (self.feature_dim, 1, 1)

    @property
    def w2v_att(self) -> np.ndarray:
        return self.attribute_vectors

    def class_matrix(self) -> np.ndarray:
        return self.classes


def create_model(cfg: Config | ModelConfig, benchmark: ClassSide) -> CrestModel:
    """A new CREST model for ``benchmark``'s feature width, attribute vectors and class matrix."""
    model_cfg = cfg.model if isinstance(cfg, Config) else cfg
    if benchmark.feature_shape is None:
        raise ValueError("the class side has no feature shape: read it from a benchmark file")
    return CrestModel(
        model_cfg, benchmark.feature_shape[0], benchmark.w2v_att, benchmark.class_matrix()
    )
