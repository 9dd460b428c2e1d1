"""CREST (docs/method.md): the model, its output and its total loss (Eq. 17)."""

from crest.models.crest.loss import CrestLoss
from crest.models.crest.model import CrestModel, CrestOutput
from crest.models.crest.recipes import ENTRY

__all__ = ["ENTRY", "CrestLoss", "CrestModel", "CrestOutput"]
