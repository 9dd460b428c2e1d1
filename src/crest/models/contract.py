"""What every model returns and offers (docs/architecture.md): the one contract between a model
and evaluation, selection, reports, explain, export and ``predict``, which read nothing else.

A model subclasses :class:`ZSLModel` and returns a :class:`ModelOutput` (or a subclass that adds
its own fields for its own loss). Optional parts are None or empty when a model lacks them; the
readers then skip what needs them and say so (no attention: no attention figure).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from crest.models.search_space import SearchSpace

if TYPE_CHECKING:
    from crest.config import Config


def shared(default: Any = None) -> Any:
    """A batch-independent output field (not cut or joined along the batch)."""
    return field(default=default, metadata={"per_sample": False})


@dataclass(kw_only=True)
class ModelOutput:
    """One forward pass, as every reader sees it. Class-level fields cover the classes of the
    class matrix used in the call (all classes by default), in its row order."""

    logits: torch.Tensor  # (B, C') class scores, uncalibrated (γ is added by evaluation)
    embedding: torch.Tensor  # (B, A) the image in attribute space (what logits compare with Z)
    class_matrix: torch.Tensor = shared()  # Z of the call (C', A)
    # named partial class scores (B, C'), e.g. CREST's "vgt"/"agt" directions, MSDN's two subnets
    branches: dict[str, torch.Tensor] = field(default_factory=dict)
    # attribute→region attention (B, A, R) when asked for and the model has it, with the
    # attribute scores (B, A) that attention explains
    attention: torch.Tensor | None = None
    attention_scores: torch.Tensor | None = None
    # evidence, for evidential models only: Dirichlet parameters α (B, C'), fused and per branch
    alpha: torch.Tensor | None = None
    branch_alpha: dict[str, torch.Tensor] = field(default_factory=dict)


Output = TypeVar("Output", bound=ModelOutput)


def concat_outputs(pieces: list[Output]) -> Output:
    """One output from the outputs of consecutive pieces of a batch (any ModelOutput subclass)."""
    first = pieces[0]
    merged: dict[str, Any] = {}
    for f in dataclasses.fields(first):
        parts = [getattr(p, f.name) for p in pieces]
        if parts[0] is None or not f.metadata.get("per_sample", True):
            merged[f.name] = parts[0]  # shared by the pieces
        elif isinstance(parts[0], dict):
            merged[f.name] = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        else:
            merged[f.name] = torch.cat(parts)
    return type(first)(**merged)


class ZSLModel(nn.Module):
    """The base of every registered model.

    ``forward(feature_map (B, D_v, h, w), class_matrix=None, return_attention=False)`` returns a
    :class:`ModelOutput`; ``class_matrix`` (C', A) replaces the stored Z for one call (new
    classes at prediction time). The stored Z is the buffer ``class_matrix``, saved with the
    weights. ``has_attention`` says whether ``return_attention`` can give maps.
    """

    name: ClassVar[str] = "model"
    has_attention: ClassVar[bool] = False
    class_matrix: torch.Tensor

    def inference_chunk(self, device: torch.device) -> int:
        """Samples per forward piece when no gradient is taken (0 = the whole batch)."""
        return 0

    def num_classes(self) -> int:
        return int(self.class_matrix.shape[0])

    @property
    def wants_data_init(self) -> bool:
        """Whether :meth:`initialize_from_data` does anything (the engine reads no features
        for a model that says no)."""
        return False

    def initialize_from_data(self, feature_map: torch.Tensor) -> None:
        """Data-dependent initialisation from a sample of training feature maps (B, D_v, h, w),
        once, before a phase's first step (never on resume); nothing by default."""


class ModelInputs(Protocol):
    """What a model is shaped by: a :class:`~crest.data.schema.benchmark.Benchmark` has it."""

    @property
    def feature_shape(self) -> tuple[int, int, int] | None: ...

    @property
    def w2v_att(self) -> np.ndarray: ...

    def class_matrix(self) -> np.ndarray: ...


@dataclass(frozen=True)
class ArrayInputs:
    """Model inputs given as arrays: feature channels, attribute vectors (A, D_w) and Z (C, A)
    (tests, benchmarks, a model built for its shapes only)."""

    feature_dim: int
    attribute_vectors: np.ndarray
    classes: np.ndarray
    grid: tuple[int, int] = (1, 1)

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        return (self.feature_dim, *self.grid)

    @property
    def w2v_att(self) -> np.ndarray:
        return self.attribute_vectors

    def class_matrix(self) -> np.ndarray:
        return self.classes


class ModelLoss(Protocol):
    """A training loss: ``loss(out, target, epoch)`` → (total, {term: detached value})."""

    def to(self, device: torch.device) -> ModelLoss: ...

    def __call__(  # ``out``: the model's own ModelOutput subclass
        self, out: Any, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it and its loss, its recipes per dataset and what
    `crest tune` may move (its search space)."""

    build: Callable[[Config, int, np.ndarray, np.ndarray], ZSLModel]  # cfg, D_v, V (A, D_w), Z
    loss: Callable[[Config, torch.Tensor, torch.Tensor], ModelLoss]  # cfg, seen, unseen
    paper: str
    # dataset config name (cub, sun, awa2, synthetic) → --set overrides of the authors' recipe
    recipes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the keys `crest tune` searches, each range holding every recipe's value (None: none declared)
    search_space: SearchSpace | None = None
