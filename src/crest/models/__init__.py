"""The models: pure PyTorch, importing nothing from training or CLI code. Every model fills the
contract of :mod:`crest.models.contract`; :mod:`crest.models.registry` is the one door to them."""

from crest.models.contract import ArrayInputs, ModelOutput, ZSLModel
from crest.models.crest import CrestLoss, CrestModel, CrestOutput
from crest.models.registry import create_loss, create_model

__all__ = [
    "ArrayInputs",
    "CrestLoss",
    "CrestModel",
    "CrestOutput",
    "ModelOutput",
    "ZSLModel",
    "create_loss",
    "create_model",
]
