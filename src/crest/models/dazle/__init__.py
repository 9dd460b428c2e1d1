"""DAZLE (Huynh & Elhamifar, CVPR 2020; docs/peers.md): the model, its output and its loss."""

from crest.models.dazle.loss import DazleLoss
from crest.models.dazle.model import DazleModel, DazleOutput
from crest.models.dazle.recipes import ENTRY

__all__ = ["ENTRY", "DazleLoss", "DazleModel", "DazleOutput"]
