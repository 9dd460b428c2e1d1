"""CREST model: pure PyTorch, importing nothing from training or CLI code."""

from crest.models.crest import CrestModel, CrestOutput, build_model

__all__ = ["CrestModel", "CrestOutput", "build_model"]
