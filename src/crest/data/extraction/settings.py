"""What an extraction run is asked to do, and the fingerprint that tells whether a partial file
was written by the same settings, image list and class side."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crest.data.backbone import BACKBONE, BACKBONE_LAYER, STRIDE, TORCHVISION_WEIGHTS
from crest.data.schema.benchmark import Benchmark
from crest.errors import ConfigError, DataError

log = logging.getLogger(__name__)


if TYPE_CHECKING:  # settings are made before the list is read; only its type is needed
    from crest.data.extraction.images import ImageList

RESIZE_MODES = ("crop", "stretch")
DTYPES = ("float32", "float16")
FINGERPRINT_VERSION = 1


@dataclass(frozen=True)
class ExtractSettings:
    """How features are computed and stored; every field that changes the numbers is fingerprinted."""

    size: int = 448
    resize: str = "crop"
    weights: str = "imagenet"  # imagenet | imagenet-v2 | none | path to a state_dict file
    seed: int = 0  # seeds the random init of weights="none", so reruns get the same weights
    dtype: str = "float32"
    batch_size: int = 32
    workers: int = 4
    device: str = "auto"  # auto = CUDA when available
    bf16: bool = False  # bfloat16 autocast (CUDA only)

    def validate(self) -> None:
        """Refuse settings that cannot work, before any file is touched."""
        if self.size < STRIDE or self.size % STRIDE:
            raise ConfigError(f"--size {self.size}: expected a multiple of {STRIDE} (448 or 224)")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"--resize {self.resize!r}: expected one of {RESIZE_MODES}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype {self.dtype!r}: expected one of {DTYPES}")
        if self.batch_size < 1 or self.workers < 0:
            raise ConfigError("--batch-size must be >= 1 and --workers >= 0")

    @property
    def grid(self) -> int:
        return self.size // STRIDE


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_arrays(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = (
            np.ascontiguousarray(part).tobytes()
            if isinstance(part, np.ndarray)
            else json.dumps(part).encode()
        )
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def weights_identity(weights: str, seed: int) -> tuple[str, dict[str, Any]]:
    """(the file's ``weights`` attr, what the fingerprint holds): a weights file by content."""
    key = weights.lower()
    if key in TORCHVISION_WEIGHTS:
        name = f"torchvision:ResNet101_Weights.{TORCHVISION_WEIGHTS[key]}"
        return name, {"weights": name}
    if key == "none":
        return "none", {"weights": "none", "seed": seed}
    path = Path(weights)
    if not path.is_file():
        raise DataError(
            path,
            "weights",
            "file not found; expected imagenet, imagenet-v2, none or a state_dict file",
        )
    return f"file:{path.resolve()}", {"weights": "file", "weights_sha256": _sha256_file(path)}


def extraction_settings(
    bench: Benchmark, images: ImageList, settings: ExtractSettings, weights: dict[str, Any]
) -> dict[str, Any]:
    """Everything that decides the numbers in the file; equal settings → a partial may resume."""
    classes = _sha256_arrays(
        bench.att,
        bench.original_att,
        bench.w2v_att,
        *(bench.splits[k] for k in sorted(bench.splits)),
        bench.class_names,
        bench.attribute_names,
    )
    return {
        "version": FINGERPRINT_VERSION,
        "image_list": _sha256_arrays(images.entries, images.labels.astype(np.int64)),
        "class_side": classes,
        "backbone": BACKBONE,
        "layer": BACKBONE_LAYER,
        **weights,
        "image_size": settings.size,
        "resize": settings.resize,
        "dtype": settings.dtype,
        "bf16": settings.bf16,
    }


def fingerprint(extraction: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(extraction, sort_keys=True).encode()).hexdigest()


# ---- the HDF5 file -------------------------------------------------------------------------
