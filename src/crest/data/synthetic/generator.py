"""The embedded default: a synthetic ZSL world with the structure that makes ZSL hard (paper Fig. 1).

A world is a *design* (which attributes each class tends to show, where each attribute lives on
the object, how the classes split into seen and unseen) plus a *renderer* that draws feature
maps image by image:

* Attributes are (part, value) pairs, e.g. ``has_wing_red``. Values are shared across parts
  (red wings and red heads look alike), so telling "red wing" from "red head" needs *where* the
  colour is: region-level grounding helps, global pooling blurs it.
* Per-image attributes are Bernoulli draws from class-level probabilities, which are imbalanced
  (popular and rare values) and co-occur (class families, a per-class colour scheme).
* Vision variability per image: the object shifts, scales and flips, parts jitter and are
  sometimes occluded, the background changes, brightness changes, and there is noise.
* Attribute word vectors are the sum of a part word and a value word plus noise, like the
  word2vec phrase sums the real benchmarks use: informative but noisy.

Ground truth (part masks per image, the part of each attribute, the attributes actually
visible in each image) is written with the features, for localization scores.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from crest.data.schema.benchmark import Benchmark
from crest.data.schema.writer import BenchmarkWriter

log = logging.getLogger(__name__)

PART_NAMES = [
    "head",
    "breast",
    "wing",
    "tail",
    "back",
    "leg",
    "belly",
    "crown",
    "throat",
    "eye",
    "nape",
    "bill",
]
VALUE_NAMES = [
    "red",
    "blue",
    "yellow",
    "black",
    "white",
    "brown",
    "grey",
    "green",
    "spotted",
    "striped",
    "orange",
    "buff",
]


@dataclass
class WorldSpec:
    """Size and difficulty knobs of a generated world (every field is a CLI flag of `crest data synth`)."""

    seed: int = 0
    classes: int = 50
    unseen: int = 10
    val_classes: int = 8  # seen classes held out as validation classes (clean train/val protocol)
    parts: int = 6
    values: int = 8  # attributes = parts x values in the default world
    families: int = 5  # class families: the source of attribute co-occurrence
    images_min: int = 40
    images_max: int = 80
    test_seen_fraction: float = 0.2
    grid: int = 7
    feature_dim: int = 128
    word_dim: int = 300
    noise: float = 0.6
    occlusion: float = 0.1
    word_noise: float = 0.5
    image_cap: int | None = None  # like-mode: at most this many images per class
    dtype: str = "float32"


@dataclass
class WorldDesign:
    """Everything about a world except its images."""

    probs: np.ndarray  # (C, A) probability that an image of class c shows attribute a
    attribute_part: np.ndarray  # (A,)
    attribute_value: np.ndarray  # (A,)
    num_parts: int
    num_values: int
    class_names: list[str]
    attribute_names: list[str]
    w2v: np.ndarray  # (A, D_w)
    labels: np.ndarray  # (N,)
    splits: dict[str, np.ndarray]
    att: np.ndarray | None = None  # class matrix as published (like-mode keeps the real one)
    original_att: np.ndarray | None = None
    image_files: list[str] | None = None
    meta: dict = field(default_factory=dict)


def _l2_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def split_images(
    labels: np.ndarray,
    unseen: np.ndarray,
    val_classes: np.ndarray,
    test_fraction: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """xlsa17-style splits: unseen images → test_unseen; seen images → trainval / test_seen; clean train/val."""
    is_unseen = np.isin(labels, unseen)
    test_seen: list[int] = []
    for c in np.unique(labels[~is_unseen]):
        rows = np.flatnonzero(labels == c)
        k = max(1, round(test_fraction * len(rows)))
        test_seen.extend(rng.choice(rows, size=k, replace=False).tolist())
    test_seen_arr = np.sort(np.asarray(test_seen, dtype=np.int64))
    trainval = np.setdiff1d(np.flatnonzero(~is_unseen), test_seen_arr)
    in_val = np.isin(labels[trainval], val_classes)
    return {
        "trainval": trainval,
        "test_seen": test_seen_arr,
        "test_unseen": np.flatnonzero(is_unseen),
        "train": trainval[~in_val],
        "val": trainval[in_val],
    }


def default_design(spec: WorldSpec) -> WorldDesign:
    """The default world's classes: families, colour schemes and popular/rare values."""
    rng = np.random.default_rng([spec.seed, 1])
    p, v, c = spec.parts, spec.values, spec.classes
    if spec.unseen + spec.val_classes >= c:
        raise ValueError(
            f"unseen ({spec.unseen}) + val_classes ({spec.val_classes}) must leave training classes out of {c}"
        )
    family = rng.integers(0, spec.families, size=c)
    templates = rng.normal(0.0, 2.0, size=(spec.families, p, v))
    scheme = rng.normal(
        0.0, 1.0, size=(c, 1, v)
    )  # one colour scheme per class → cross-part co-occurrence
    popularity = rng.permutation(np.linspace(1.0, -2.5, v))[
        None, None, :
    ]  # imbalanced value frequencies
    logits = templates[family] + rng.normal(0.0, 1.2, size=(c, p, v)) + scheme + popularity - 0.5
    probs = np.clip(1.0 / (1.0 + np.exp(-1.5 * logits)), 0.02, 0.98).reshape(c, p * v)
    part_of = np.repeat(np.arange(p), v)
    value_of = np.tile(np.arange(v), p)
    part_names = [PART_NAMES[i] if i < len(PART_NAMES) else f"part{i}" for i in range(p)]
    value_names = [VALUE_NAMES[i] if i < len(VALUE_NAMES) else f"value{i}" for i in range(v)]
    attribute_names = [
        f"has_{part_names[g]}_color::{value_names[k]}"
        for g, k in zip(part_of, value_of, strict=True)
    ]
    words = rng.normal(0.0, 1.0, size=(p + v, spec.word_dim)) / np.sqrt(spec.word_dim)
    noise = rng.normal(0.0, spec.word_noise, size=(p * v, spec.word_dim)) / np.sqrt(spec.word_dim)
    w2v = words[part_of] + words[p + value_of] + noise
    counts = rng.integers(spec.images_min, spec.images_max + 1, size=c)
    labels = np.repeat(np.arange(c), counts)
    classes = rng.permutation(c)
    unseen = np.sort(classes[: spec.unseen])
    val = np.sort(classes[spec.unseen : spec.unseen + spec.val_classes])
    splits = split_images(labels, unseen, val, spec.test_seen_fraction, rng)
    return WorldDesign(
        probs=probs,
        attribute_part=part_of,
        attribute_value=value_of,
        num_parts=p,
        num_values=v,
        class_names=[f"synthetic_{i:03d}_family{family[i]}" for i in range(c)],
        attribute_names=attribute_names,
        w2v=w2v.astype(np.float32),
        labels=labels,
        splits=splits,
    )


class Renderer:
    """Draws feature maps for images of a design; all randomness comes from the WorldSpec's seed."""

    def __init__(self, design: WorldDesign, spec: WorldSpec) -> None:
        self.design, self.spec = design, spec
        rng = np.random.default_rng([spec.seed, 2])
        d = spec.feature_dim
        self.part_proto = _l2_rows(rng.normal(size=(design.num_parts, d)))
        self.value_proto = _l2_rows(rng.normal(size=(design.num_values, d)))
        self.bg_proto = _l2_rows(rng.normal(size=(8, d)))
        angles = 2 * np.pi * np.arange(design.num_parts) / max(design.num_parts, 1)
        radius = 0.28 * (1 + 0.3 * rng.random(design.num_parts))
        self.centres = np.stack(
            [0.5 + radius * np.cos(angles), 0.5 + radius * np.sin(angles)], axis=1
        )
        g = spec.grid
        yy, xx = np.meshgrid((np.arange(g) + 0.5) / g, (np.arange(g) + 0.5) / g, indexing="ij")
        self.cells = np.stack([xx.ravel(), yy.ravel()], axis=1)  # (R, 2) as (x, y)
        onehot = np.zeros(
            (design.probs.shape[1], design.num_parts * design.num_values), dtype=np.float64
        )
        onehot[
            np.arange(len(design.attribute_part)),
            design.attribute_part * design.num_values + design.attribute_value,
        ] = 1
        self.attr_to_part_value = onehot

    def render(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features (n, D, g, g), part masks (n, P, g, g) uint8, visible attributes (n, A) uint8."""
        spec, design = self.spec, self.design
        rng = np.random.default_rng([spec.seed, 3, int(rows[0])])
        n, p, v, d, g = len(rows), design.num_parts, design.num_values, spec.feature_dim, spec.grid
        present = rng.random((n, design.probs.shape[1])) < design.probs[design.labels[rows]]
        visible = rng.random((n, p)) >= spec.occlusion
        shown = present & visible[:, design.attribute_part]
        # Layout: the object shifts, scales and flips; each part jitters around its place.
        shift = rng.uniform(-0.15, 0.15, size=(n, 1, 2))
        scale = rng.uniform(0.75, 1.25, size=(n, 1, 1))
        offsets = (self.centres[None] - 0.5) * scale
        flip = rng.random(n) < 0.5
        offsets[flip, :, 0] *= -1
        centres = 0.5 + offsets + shift + rng.normal(0.0, 0.04, size=(n, p, 2))
        dist2 = ((self.cells[None, None] - centres[:, :, None]) ** 2).sum(-1)  # (n, P, R)
        rho = 0.12 * scale
        weight = np.exp(-dist2 / (2 * rho**2)) * visible[:, :, None]
        masks = (weight > 0.5) | ((weight == weight.max(-1, keepdims=True)) & visible[:, :, None])
        # Content of each part: its identity plus the values it shows, with a per-image strength.
        pv = (shown.astype(np.float64) @ self.attr_to_part_value).reshape(n, p, v)
        strength = rng.uniform(0.6, 1.4, size=(n, p, 1))
        content = self.part_proto[None] + strength * (pv @ self.value_proto)
        obj = np.einsum("npr,npd->nrd", weight, content)
        coverage = np.clip(weight.sum(1), 0.0, 1.0)[..., None]
        bg_mix = rng.dirichlet(np.full(len(self.bg_proto), 0.5), size=n) @ self.bg_proto
        bg = 0.8 * bg_mix[:, None, :] * (1.0 - coverage)
        noise = rng.normal(0.0, spec.noise / np.sqrt(d), size=(n, g * g, d))
        bright = rng.uniform(0.6, 1.4, size=(n, 1, 1))
        feats = np.maximum(obj + bg + noise, 0.0) * bright  # ReLU features, as a ResNet gives
        feats = feats.transpose(0, 2, 1).reshape(n, d, g, g)
        return (
            feats.astype(np.float32),
            masks.reshape(n, p, g, g).astype(np.uint8),
            shown.astype(np.uint8),
        )


def design_to_benchmark(design: WorldDesign, spec: WorldSpec, kind: str) -> Benchmark:
    original = design.original_att if design.original_att is not None else 100.0 * design.probs
    att = design.att if design.att is not None else _l2_rows(original)
    return Benchmark(
        att=att.astype(np.float32),
        original_att=original.astype(np.float32),
        w2v_att=design.w2v.astype(np.float32),
        labels=design.labels,
        splits=design.splits,
        class_names=design.class_names,
        attribute_names=design.attribute_names,
        image_files=design.image_files,
        feature_shape=(spec.feature_dim, spec.grid, spec.grid),
        meta={"source": kind, "features_real": False, "generator": asdict(spec) | design.meta},
    )


def write_world(
    design: WorldDesign, spec: WorldSpec, out: str | Path, kind: str = "synthetic", batch: int = 256
) -> Path:
    """Render every image of ``design`` into a benchmark file at ``out`` (atomically)."""
    out = Path(out)
    bench = design_to_benchmark(design, spec, kind)
    renderer = Renderer(design, spec)
    n = bench.num_images
    with BenchmarkWriter(
        out, bench, dtype=spec.dtype, ground_truth_parts=design.num_parts
    ) as writer:
        for start in tqdm(
            range(0, n, batch), desc=f"rendering {out.name}", unit="batch", disable=None
        ):
            rows = np.arange(start, min(n, start + batch))
            feats, masks, shown = renderer.render(rows)
            writer.write_features(start, feats)
            writer.write_ground_truth(
                start, masks, shown, design.attribute_part if start == 0 else None
            )
    log.info("wrote %s (%d images)", out, n)
    return out


def generate_default_world(out: str | Path, spec: WorldSpec | None = None) -> Path:
    """Generate the embedded default world (or one with other knobs) into ``out``."""
    spec = spec or WorldSpec()
    return write_world(default_design(spec), spec, out, kind="synthetic")
