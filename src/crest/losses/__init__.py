"""CREST's losses (docs/method.md §3): ARISE, VICL, DIGS, EDL and their total (Eq. 17). Pure PyTorch."""

from crest.losses.arise import arise_loss
from crest.losses.digs import digs_loss
from crest.losses.total import CrestLoss
from crest.losses.vicl import vicl_loss, vicl_positives

__all__ = ["CrestLoss", "arise_loss", "digs_loss", "vicl_loss", "vicl_positives"]
