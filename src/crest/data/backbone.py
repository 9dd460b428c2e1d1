"""The image backbone of extraction and prediction: torchvision's ResNet-101 up to layer4 (before
pooling), its ImageNet weights and the preprocessing that goes with them.

Preprocessing follows the CREST/TransZero extraction script (``resize="crop"``): resize the short
side to ``size``, centre-crop ``size`` x ``size``, ImageNet mean/std; ``resize="stretch"`` squashes
the whole image to ``size`` x ``size`` instead. 448 px gives the 14 x 14 grid, 224 px the 7 x 7
grid. ``weights="imagenet"`` are torchvision's ``ResNet101_Weights.IMAGENET1K_V1`` (what the
script's ``pretrained=True`` loads); ``imagenet-v2`` selects ``IMAGENET1K_V2``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crest.errors import DataError
from crest.safe_load import load_torch

log = logging.getLogger(__name__)


BACKBONE = "resnet101"
BACKBONE_LAYER = "layer4"
FEATURE_CHANNELS = 2048
STRIDE = 32  # ResNet-101's layer4 downsamples by 32: 448 px → 14 x 14, 224 px → 7 x 7
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_WEIGHTS = {
    "imagenet": "IMAGENET1K_V1",
    "imagenet-v1": "IMAGENET1K_V1",
    "imagenet-v2": "IMAGENET1K_V2",
}


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    obj = load_torch(path, "weights")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise DataError(path, "weights", f"holds a {type(obj).__name__}; expected a state_dict")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def build_backbone(weights: str, seed: int) -> nn.Module:
    """ResNet-101 up to layer4 (no pooling, no fc), in eval mode, on the CPU."""
    import torchvision

    key = weights.lower()
    if key in TORCHVISION_WEIGHTS:
        enum = torchvision.models.ResNet101_Weights[TORCHVISION_WEIGHTS[key]]
        try:
            model = torchvision.models.resnet101(weights=enum)
        except Exception as exc:  # URLError, SSL, hash mismatch...
            raise DataError(
                None,
                "weights",
                f"cannot load torchvision's {enum} ({enum.url}): {exc}; download it into "
                f"{torch.hub.get_dir()}/checkpoints or pass --weights FILE",
            ) from exc
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = torchvision.models.resnet101(weights=None)
        if key != "none":
            path = Path(weights)
            state = _load_state_dict(path)
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError as exc:  # shape mismatches
                raise DataError(
                    path, "weights", f"not a torchvision ResNet-101 state_dict: {exc}"
                ) from exc
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing or unexpected:
                raise DataError(
                    path,
                    "weights",
                    f"not a torchvision ResNet-101 state_dict (missing {missing[:3]}, "
                    f"unexpected {unexpected[:3]})",
                )
    trunk = nn.Sequential(*list(model.children())[:-2])
    return trunk.eval().requires_grad_(False)


def image_transform(size: int, resize: str) -> Any:
    """The torchvision preprocessing (``crop`` is the CREST/TransZero script's)."""
    from torchvision import transforms

    steps = (
        [transforms.Resize(size), transforms.CenterCrop(size)]
        if resize == "crop"
        else [transforms.Resize((size, size))]
    )
    return transforms.Compose(
        [*steps, transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
