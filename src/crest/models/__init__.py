"""CREST model: pure PyTorch, importing nothing from training or CLI code."""

from crest.models.crest import CrestModel, CrestOutput
from crest.models.factory import ArraySide, create_model

__all__ = ["ArraySide", "CrestModel", "CrestOutput", "create_model"]
