"""TransZero (Chen et al., AAAI 2022; docs/peers.md): the model, its output and its loss."""

from crest.models.transzero.loss import TransZeroLoss
from crest.models.transzero.model import TransZeroModel, TransZeroOutput
from crest.models.transzero.recipes import ENTRY

__all__ = ["ENTRY", "TransZeroLoss", "TransZeroModel", "TransZeroOutput"]
