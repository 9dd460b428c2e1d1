"""Loss terms the models share (docs/method.md §3): ARISE (cross-entropy + self-calibration),
VICL, DIGS. Pure PyTorch; each model's total loss lives in its own subpackage."""

from crest.losses.arise import arise_loss
from crest.losses.digs import digs_loss
from crest.losses.vicl import vicl_loss, vicl_positives

__all__ = ["arise_loss", "digs_loss", "vicl_loss", "vicl_positives"]
