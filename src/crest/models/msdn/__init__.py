"""MSDN (Chen et al., CVPR 2022; docs/peers.md): the model, its output and its total loss."""

from crest.models.msdn.loss import MsdnLoss
from crest.models.msdn.model import MsdnModel, MsdnOutput
from crest.models.msdn.recipes import ENTRY

__all__ = ["ENTRY", "MsdnLoss", "MsdnModel", "MsdnOutput"]
