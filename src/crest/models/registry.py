"""The one door to a model (in the manner of timm's ``create_model`` and open_clip's factory):
``model.name`` picks an entry; :func:`create_model` builds it from a config and the class side it
is shaped by, :func:`create_loss` builds its training loss. Loading a trained model goes through
:func:`crest.engine.checkpoint.load_model`, which calls :func:`create_model`.

Adding a model is one subpackage (its model, its loss, its recipes; see
:mod:`crest.models.dazle`) and one line in :data:`REGISTRY`.
"""

from __future__ import annotations

import importlib

import numpy as np
import torch

from crest.config import Config, ModelConfig
from crest.models.contract import ModelEntry, ModelInputs, ModelLoss, ZSLModel
from crest.models.search_space import SearchSpace

#: model name → the subpackage whose ``ENTRY`` describes it (imported when first asked for)
REGISTRY: dict[str, str] = {
    "crest": "crest.models.crest",
    "dazle": "crest.models.dazle",
    "transzero": "crest.models.transzero",
    "msdn": "crest.models.msdn",
}


def entry(name: str) -> ModelEntry:
    if name not in REGISTRY:
        raise ValueError(f"unknown model '{name}'; expected one of {', '.join(REGISTRY)}")
    found = importlib.import_module(REGISTRY[name]).ENTRY
    assert isinstance(found, ModelEntry), f"{REGISTRY[name]}.ENTRY is not a ModelEntry"
    return found


def create_model(cfg: Config | ModelConfig, inputs: ModelInputs) -> ZSLModel:
    """A new model of ``cfg.model.name`` for ``inputs``' feature width, attribute vectors and Z
    (a bare ModelConfig stands for a config with every other section at its default)."""
    if isinstance(cfg, ModelConfig):
        cfg = Config(model=cfg)
    if inputs.feature_shape is None:
        raise ValueError("the class side has no feature shape: read it from a benchmark file")
    return entry(cfg.model.name).build(
        cfg, inputs.feature_shape[0], np.asarray(inputs.w2v_att), np.asarray(inputs.class_matrix())
    )


def create_loss(cfg: Config, seen: torch.Tensor, unseen: torch.Tensor) -> ModelLoss:
    """The training loss of ``cfg.model.name`` for a task (classes trained on, held-out ones)."""
    return entry(cfg.model.name).loss(cfg, seen, unseen)


def recipe(name: str, dataset: str) -> tuple[str, ...]:
    """The ``--set`` overrides that turn a dataset config into model ``name``'s recipe for it."""
    return (f"model.name={name}", *entry(name).recipes.get(dataset, ()))


def search_space(name: str) -> SearchSpace:
    """What `crest tune` searches for model ``name`` (declared beside its recipes)."""
    declared = entry(name).search_space
    if declared is None:
        raise ValueError(f"model '{name}' declares no search space (ModelEntry.search_space)")
    return declared
