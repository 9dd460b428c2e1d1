"""Attribute statistics of a ZSL dataset (the paper's Fig. 1): frequency imbalance, co-occurrence.

CREST is motivated by two properties of attribute annotations: a few attributes are present in
most classes while many are rare (imbalance), and attributes come in pairs that nearly always
appear together (co-occurrence). This module measures both from the class side alone (the real
xlsa17 class sides have no per-image features) and, where a benchmark file stores per-image
ground truth (``image_attributes``), at the image level too.

Definitions (also written into every report):

* presence probability p[c, a]: ``original_att`` clipped at 0 (AWA2 uses -1 for "unknown")
  and divided by 100 when its maximum exceeds 1 (CUB and AWA2 are percentages, SUN is 0..1);
* class-level frequency of attribute a: mean over all classes (seen and unseen) of p[c, a];
  also the fraction of classes with p[c, a] >= 0.5; image-level frequency: the fraction of
  images that show the attribute;
* imbalance: Gini coefficient of the frequencies (0 = all equal, (A-1)/A = one attribute holds
  everything), coefficient of variation (std / mean, population std), and the max/min ratio
  (when some frequency is 0 the ratio is taken over the nonzero frequencies, and says so);
* co-occurrence of a and b: P(a and b) / sqrt(P(a) P(b)) (the Ochiai/cosine coefficient, in
  [0, 1]), with P(a and b) = mean over units of p[u, a] p[u, b]. At the class level each class
  is treated as independent Bernoulli draws with probabilities p[c, :]; at the image level the
  0/1 annotations make it the exact fraction of images showing both. Unlike a correlation, it
  does not reward two attributes for being absent together, which is what "co-occur" means.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crest.errors import DataError

log = logging.getLogger(__name__)


MAJORITY = 0.5
GROUP_SEP = "::"

DEFINITIONS = {
    "presence_probability": "original_att clipped at 0 (negative = unknown), divided by 100 if "
    "its maximum exceeds 1",
    "class_frequency": "mean over all classes of the presence probability",
    "class_majority_fraction": f"fraction of classes with presence probability >= {MAJORITY}",
    "image_frequency": "fraction of images annotated with the attribute",
    "gini": "Gini coefficient of the frequencies: 0 = all equal, (A-1)/A = one attribute has all",
    "cv": "coefficient of variation: population std / mean of the frequencies",
    "max_min_ratio": "largest / smallest frequency (over nonzero frequencies when some are 0)",
    "cooccurrence": "P(a and b) / sqrt(P(a) P(b)) with P(a and b) = mean over units of "
    "p[u,a] p[u,b] (classes as independent Bernoullis; images exact); diagonal = 1",
}


# ---- inputs --------------------------------------------------------------------------------


def rounded(x: float) -> float:
    """A float as reports store it (6 decimals)."""
    return round(float(x), 6)


@dataclass
class AttributeData:
    """The attribute annotations of one dataset, ready for statistics."""

    dataset: str
    source: Path
    attribute_names: list[str]
    class_probs: np.ndarray  # (C, A) presence probabilities in [0, 1]
    image_attributes: np.ndarray | None = None  # (N, A) 0/1, when the file has them

    @property
    def num_attributes(self) -> int:
        return int(self.class_probs.shape[1])


def presence_probabilities(original_att: np.ndarray) -> np.ndarray:
    """Per-class presence probabilities from ``original_att`` on any of the datasets' scales."""
    probs = np.clip(np.asarray(original_att, dtype=np.float64), 0.0, None)
    if probs.size and probs.max() > 1.0:
        probs = probs / 100.0
    return np.clip(probs, 0.0, 1.0)


def load_benchmark_attributes(path: str | Path) -> AttributeData:
    """Class side and, when stored, per-image attributes of a benchmark HDF5 file."""
    from crest.data.schema.hdf5 import open_h5, read_benchmark

    path = Path(path)
    bench = read_benchmark(path)
    image_attributes = None
    with open_h5(path) as f:
        if "image_attributes" in f:
            image_attributes = np.asarray(f["image_attributes"][()])
    if image_attributes is not None:
        want = (bench.num_images, bench.num_attributes)
        if image_attributes.shape != want:
            raise DataError(
                path, "image_attributes", f"shape {image_attributes.shape}; expected {want}"
            )
        image_attributes = (image_attributes > 0).astype(np.float64)
    source = bench.meta.get("source")
    name = path.stem if not isinstance(source, str) else f"{path.stem} ({source})"
    return AttributeData(
        dataset=name,
        source=path,
        attribute_names=list(bench.attribute_names),
        class_probs=presence_probabilities(bench.original_att),
        image_attributes=image_attributes,
    )


def load_xlsa17_attributes(
    folder: str | Path, attributes: str | Path | None = None
) -> AttributeData:
    """The class side of an xlsa17 dataset folder; names from ``attributes`` when given.

    Without ``attributes``, the shared-data layout ``<root>/xlsa17/NAME`` beside
    ``<root>/attributes/NAME`` is tried; otherwise attributes are called ``attribute_<i>``.
    """
    from crest.data.sources.attribute_names import attribute_names_for
    from crest.data.sources.xlsa17 import load_xlsa17

    folder = Path(folder)
    side = load_xlsa17(folder)
    if attributes is None:
        guess = folder.parent.parent / "attributes" / folder.name
        if guess.is_dir():
            log.info("attribute names from %s", guess)
            attributes = guess
    names = (
        attribute_names_for(attributes, side.name, side.num_attributes)
        if attributes is not None
        else [f"attribute_{i}" for i in range(side.num_attributes)]
    )
    return AttributeData(
        dataset=side.name,
        source=folder,
        attribute_names=names,
        class_probs=presence_probabilities(side.original_att),
    )


# ---- measures ------------------------------------------------------------------------------


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 when all are equal, including all zero)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n, total = x.size, float(x.sum())
    if n == 0 or total <= 0.0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def coefficient_of_variation(values: np.ndarray) -> float:
    """Population std / mean (0 when the mean is 0)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    mean = float(x.mean()) if x.size else 0.0
    return float(x.std() / mean) if mean > 0.0 else 0.0


def max_min_ratio(values: np.ndarray) -> tuple[float | None, bool]:
    """(max / min, over_nonzero): over the nonzero values when some are 0; None if none is."""
    x = np.asarray(values, dtype=np.float64).ravel()
    nonzero = x[x > 0.0]
    if nonzero.size == 0:
        return None, True
    over_nonzero = bool(nonzero.size < x.size)
    return float(nonzero.max() / nonzero.min()), over_nonzero


@dataclass
class Imbalance:
    """How unequal a set of attribute frequencies is."""

    gini: float
    cv: float
    max_min_ratio: float | None
    ratio_over_nonzero: bool
    zero_count: int
    mean: float
    min: float
    max: float

    def ratio_text(self) -> str:
        if self.max_min_ratio is None:
            return "undefined (all zero)"
        note = f" (over nonzero; {self.zero_count} zero)" if self.ratio_over_nonzero else ""
        return f"{self.max_min_ratio:.1f}{note}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "gini": rounded(self.gini),
            "cv": rounded(self.cv),
            "max_min_ratio": None if self.max_min_ratio is None else rounded(self.max_min_ratio),
            "max_min_ratio_over_nonzero": self.ratio_over_nonzero,
            "zero_count": self.zero_count,
            "mean": rounded(self.mean),
            "min": rounded(self.min),
            "max": rounded(self.max),
        }


def imbalance(values: np.ndarray) -> Imbalance:
    """All imbalance measures of one frequency vector."""
    x = np.asarray(values, dtype=np.float64).ravel()
    ratio, over_nonzero = max_min_ratio(x)
    return Imbalance(
        gini=gini(x),
        cv=coefficient_of_variation(x),
        max_min_ratio=ratio,
        ratio_over_nonzero=over_nonzero,
        zero_count=int(np.sum(x <= 0.0)),
        mean=float(x.mean()) if x.size else 0.0,
        min=float(x.min()) if x.size else 0.0,
        max=float(x.max()) if x.size else 0.0,
    )


def normalised_cooccurrence(probs: np.ndarray) -> np.ndarray:
    """(A, A) P(a and b) / sqrt(P(a) P(b)) from (units, A) probabilities or 0/1 annotations.

    Attributes that never occur get a zero row and column; the diagonal of the others is 1
    (an attribute always co-occurs with itself).
    """
    p = np.asarray(probs, dtype=np.float64)
    joint = p.T @ p / max(p.shape[0], 1)
    marginal = p.mean(axis=0) if p.shape[0] else np.zeros(p.shape[1])
    scale = np.sqrt(np.outer(marginal, marginal))
    out = np.divide(joint, scale, out=np.zeros_like(joint), where=scale > 0.0)
    np.fill_diagonal(out, (marginal > 0.0).astype(np.float64))
    return np.clip(out, 0.0, 1.0)


@dataclass
class Pair:
    """One off-diagonal entry of a co-occurrence matrix."""

    a: int
    b: int
    name_a: str
    name_b: str
    value: float
    freq_a: float
    freq_b: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "name_a": self.name_a,
            "name_b": self.name_b,
            "cooccurrence": rounded(self.value),
            "freq_a": rounded(self.freq_a),
            "freq_b": rounded(self.freq_b),
        }


def top_pairs(matrix: np.ndarray, names: list[str], freq: np.ndarray, k: int = 15) -> list[Pair]:
    """The ``k`` largest off-diagonal entries (each unordered pair once), largest first."""
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    values = matrix[rows, cols]
    order = np.argsort(-values, kind="stable")[:k]
    return [
        Pair(
            a=int(rows[i]),
            b=int(cols[i]),
            name_a=names[rows[i]],
            name_b=names[cols[i]],
            value=float(values[i]),
            freq_a=float(freq[rows[i]]),
            freq_b=float(freq[cols[i]]),
        )
        for i in order
    ]


# ---- one level (classes or images) ---------------------------------------------------------


@dataclass
class LevelStats:
    """Frequencies, imbalance and co-occurrence over one kind of unit (classes or images)."""

    level: str  # "class" or "image"
    units: int
    frequency: np.ndarray  # (A,)
    imbalance: Imbalance
    cooccurrence: np.ndarray  # (A, A)
    pairs: list[Pair]
    majority_fraction: np.ndarray | None = None  # class level: fraction with p >= 0.5
    majority_imbalance: Imbalance | None = None

    @property
    def unit_noun(self) -> str:
        return "classes" if self.level == "class" else "images"

    @property
    def frequency_label(self) -> str:
        if self.level == "class":
            return "mean over classes of the presence probability p"
        return "fraction of images showing the attribute"


def level_stats(level: str, probs: np.ndarray, names: list[str], top: int) -> LevelStats:
    """Statistics of one level from its (units, A) probabilities."""
    freq = probs.mean(axis=0)
    matrix = normalised_cooccurrence(probs)
    majority = (probs >= MAJORITY).mean(axis=0) if level == "class" else None
    return LevelStats(
        level=level,
        units=int(probs.shape[0]),
        frequency=freq,
        imbalance=imbalance(freq),
        cooccurrence=matrix,
        pairs=top_pairs(matrix, names, freq, top),
        majority_fraction=majority,
        majority_imbalance=None if majority is None else imbalance(majority),
    )


@dataclass
class AttributeStats:
    """Everything the report shows, for the class level and (when available) the image level."""

    data: AttributeData
    levels: list[LevelStats] = field(default_factory=list)

    def level(self, name: str) -> LevelStats | None:
        return next((lv for lv in self.levels if lv.level == name), None)


def compute_stats(data: AttributeData, top: int = 15) -> AttributeStats:
    """Class-level statistics, plus image-level ones when per-image attributes exist."""
    if data.class_probs.ndim != 2 or data.class_probs.shape[1] != len(data.attribute_names):
        raise DataError(
            data.source,
            "original_att",
            f"shape {data.class_probs.shape}; expected (classes, {len(data.attribute_names)})",
        )
    names = data.attribute_names
    stats = AttributeStats(data=data, levels=[level_stats("class", data.class_probs, names, top)])
    if data.image_attributes is not None and data.image_attributes.shape[0] > 0:
        stats.levels.append(level_stats("image", data.image_attributes, names, top))
    return stats


# ---- figures -------------------------------------------------------------------------------
