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

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crest.atomic import atomic_path, write_text_atomic
from crest.errors import DataError

log = logging.getLogger(__name__)

#: Above this many attributes, plots show ranks/indices instead of one tick label per attribute.
MAX_NAMED_TICKS = 60
MAJORITY = 0.5
_GROUP_SEP = "::"

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
    from crest.data.h5 import open_h5, read_benchmark

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
    from crest.data.xlsa17 import attribute_names_for, load_xlsa17

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
            "gini": _r(self.gini),
            "cv": _r(self.cv),
            "max_min_ratio": None if self.max_min_ratio is None else _r(self.max_min_ratio),
            "max_min_ratio_over_nonzero": self.ratio_over_nonzero,
            "zero_count": self.zero_count,
            "mean": _r(self.mean),
            "min": _r(self.min),
            "max": _r(self.max),
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
            "cooccurrence": _r(self.value),
            "freq_a": _r(self.freq_a),
            "freq_b": _r(self.freq_b),
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


def _new_figure(width: float, height: float) -> Figure:
    """A figure bound to the Agg canvas: headless, and no global pyplot state is touched."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _short(name: str, limit: int = 38) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _plot_frequency_level(ax: Axes, lv: LevelStats, names: list[str]) -> None:
    order = np.argsort(-lv.frequency, kind="stable")
    freq = lv.frequency[order]
    ranks = np.arange(1, len(freq) + 1)
    imb = lv.imbalance
    numbers = f"Gini {imb.gini:.3f}, CV {imb.cv:.2f}, max/min {imb.ratio_text()}"
    ax.bar(
        ranks, freq, width=1.0, color="tab:blue", edgecolor="none", label=f"{lv.frequency_label}"
    )
    ax.axhline(imb.mean, color="tab:red", linestyle="--", linewidth=1, label=f"mean {imb.mean:.3f}")
    if lv.majority_fraction is not None:
        ax.plot(
            ranks,
            lv.majority_fraction[order],
            ".",
            color="tab:orange",
            markersize=3,
            label=f"fraction of classes with p ≥ {MAJORITY} (same attribute order)",
        )
    ax.set_xlim(0.5, len(freq) + 0.5)
    ax.set_ylim(0.0, max(1.0, float(freq.max()) * 1.05) if freq.size else 1.0)
    ax.set_ylabel(f"attribute frequency over {lv.unit_noun} (0–1)")
    ax.set_title(f"{lv.level} level ({lv.units} {lv.unit_noun}): {numbers}")
    if len(freq) <= MAX_NAMED_TICKS:
        ax.set_xticks(ranks, [_short(names[i], 24) for i in order], rotation=90, fontsize=7)
        ax.set_xlabel("attribute, sorted by frequency")
    else:
        ax.set_xlabel("attribute rank (1 = most frequent)")
        _annotate_extremes(ax, names, order, freq)
    ax.legend(loc="upper right", fontsize=8)


def _annotate_extremes(ax: Axes, names: list[str], order: np.ndarray, freq: np.ndarray) -> None:
    """Name the most and least frequent attributes in a box, instead of hundreds of ticks."""
    k = 3
    top = [f"{r + 1}. {_short(names[order[r]])} ({freq[r]:.2f})" for r in range(min(k, len(freq)))]
    low_ranks = range(max(len(freq) - k, k), len(freq))
    low = [f"{r + 1}. {_short(names[order[r]])} ({freq[r]:.3f})" for r in low_ranks]
    text = "most frequent:\n" + "\n".join(top) + "\nleast frequent:\n" + "\n".join(low)
    ax.text(
        0.99,
        0.60,
        text,
        transform=ax.transAxes,
        ha="right",
        va="top",
        multialignment="left",
        fontsize=7,
        family="monospace",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
    )


def plot_frequency(stats: AttributeStats, path: Path) -> None:
    """Sorted attribute frequencies, one panel per level, imbalance numbers in the legend."""
    n = len(stats.levels)
    fig = _new_figure(11.0, 4.2 * n)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, lv in zip(axes, stats.levels, strict=True):
        _plot_frequency_level(ax, lv, stats.data.attribute_names)
    fig.suptitle(
        f"{stats.data.dataset}: attribute frequency, sorted ({stats.data.num_attributes} attributes)"
    )
    _save_png(fig, path)


def _attribute_groups(names: list[str]) -> list[tuple[str, int, int]] | None:
    """(group, first, last+1) runs of CUB-style ``group::value`` names, or None."""
    if not names or not all(_GROUP_SEP in n for n in names):
        return None
    runs: list[tuple[str, int, int]] = []
    for i, name in enumerate(names):
        group = name.split(_GROUP_SEP, 1)[0].removeprefix("has_")
        if runs and runs[-1][0] == group:
            runs[-1] = (group, runs[-1][1], i + 1)
        else:
            runs.append((group, i, i + 1))
    return runs if 1 < len(runs) < len(names) else None


def _label_matrix_axes(ax: Axes, names: list[str]) -> None:
    a = len(names)
    groups = _attribute_groups(names)
    if a <= MAX_NAMED_TICKS:
        ticks = np.arange(a)
        labels = [_short(n, 24) for n in names]
        ax.set_xticks(ticks, labels, rotation=90, fontsize=6)
        ax.set_yticks(ticks, labels, fontsize=6)
    elif groups is not None:
        centres = [(lo + hi - 1) / 2 for _, lo, hi in groups]
        labels = [g for g, _, _ in groups]
        ax.set_yticks(centres, labels, fontsize=6)
        ax.set_xticks(centres, labels, rotation=90, fontsize=6)
        for _, lo, _ in groups[1:]:
            ax.axhline(lo - 0.5, color="white", linewidth=0.3)
            ax.axvline(lo - 0.5, color="white", linewidth=0.3)
        ax.set_xlabel("attribute group (attributes in file order)")
        ax.set_ylabel("attribute group")
    else:
        ax.set_xlabel("attribute index (file order)")
        ax.set_ylabel("attribute index (file order)")


def plot_cooccurrence(stats: AttributeStats, path: Path) -> None:
    """Co-occurrence heatmaps (attributes in file order), one per level, with a colorbar."""
    n = len(stats.levels)
    names = stats.data.attribute_names
    fig = _new_figure(8.5 * n, 8.0)
    axes = fig.subplots(1, n, squeeze=False)[0]
    image = None
    for ax, lv in zip(axes, stats.levels, strict=True):
        shown = np.array(lv.cooccurrence, dtype=np.float64)
        np.fill_diagonal(shown, np.nan)
        cmap = _colormap()
        image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"{lv.level} level ({lv.units} {lv.unit_noun}; diagonal masked)")
        _label_matrix_axes(ax, names)
    assert image is not None
    cbar = fig.colorbar(image, ax=list(axes), shrink=0.8)
    cbar.set_label("co-occurrence  P(a and b) / √(P(a)·P(b))")
    fig.suptitle(f"{stats.data.dataset}: attribute co-occurrence")
    _save_png(fig, path)


def _colormap() -> Any:
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")


def _save_png(fig: Figure, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)


# ---- report --------------------------------------------------------------------------------


def _r(x: float) -> float:
    return round(float(x), 6)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(name: str) -> str:
    """An attribute name as inline code, so that Markdown leaves ``_`` and ``*`` alone."""
    return f"`{name}`"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _imbalance_rows(stats: AttributeStats) -> list[list[str]]:
    rows = []
    for lv in stats.levels:
        measures = [(lv.frequency_label, lv.imbalance)]
        if lv.majority_imbalance is not None:
            measures.append((f"fraction of classes with p ≥ {MAJORITY}", lv.majority_imbalance))
        for label, imb in measures:
            rows.append(
                [
                    lv.level,
                    label,
                    f"{imb.gini:.3f}",
                    f"{imb.cv:.3f}",
                    imb.ratio_text(),
                    f"{imb.mean:.3f}",
                    f"{imb.min:.4f}",
                    f"{imb.max:.3f}",
                ]
            )
    return rows


def _pair_rows(pairs: list[Pair]) -> list[list[str]]:
    return [
        [
            str(i),
            _code(p.name_a),
            _code(p.name_b),
            f"{p.value:.3f}",
            f"{p.freq_a:.3f}",
            f"{p.freq_b:.3f}",
        ]
        for i, p in enumerate(pairs, start=1)
    ]


def _extremes_rows(lv: LevelStats, names: list[str], k: int = 10) -> list[list[str]]:
    order = np.argsort(-lv.frequency, kind="stable")
    picked = list(order[:k]) + [i for i in order[-k:] if i not in set(order[:k])]
    rank = {int(a): r for r, a in enumerate(order, start=1)}
    return [[str(rank[int(a)]), _code(names[a]), f"{lv.frequency[a]:.4f}"] for a in picked]


def render_markdown(stats: AttributeStats, figures: dict[str, str]) -> str:
    """The ``stats.md`` report: numbers, top pairs, definitions, figures by relative link."""
    data = stats.data
    names = data.attribute_names
    units = ", ".join(f"{lv.units} {lv.unit_noun}" for lv in stats.levels)
    out = [
        f"# Attribute statistics: {data.dataset}",
        "",
        f"Source: `{data.source}`. {data.num_attributes} attributes; {units}.",
        "",
        "## Frequency imbalance",
        "",
        *_md_table(
            ["level", "frequency", "Gini", "CV", "max/min", "mean", "min", "max"],
            _imbalance_rows(stats),
        ),
        "",
        f"![attribute frequency]({figures['frequency']})",
        "",
    ]
    for lv in stats.levels:
        out += [
            f"### Most and least frequent attributes ({lv.level} level)",
            "",
            *_md_table(["rank", "attribute", "frequency"], _extremes_rows(lv, names)),
            "",
        ]
    out += ["## Co-occurrence", ""]
    for lv in stats.levels:
        out += [
            f"### Most co-occurring pairs ({lv.level} level, top {len(lv.pairs)})",
            "",
            *_md_table(
                ["#", "attribute a", "attribute b", "co-occurrence", "freq a", "freq b"],
                _pair_rows(lv.pairs),
            ),
            "",
        ]
    out += [f"![attribute co-occurrence]({figures['cooccurrence']})", "", "## Definitions", ""]
    out += [f"- **{key}**: {text}" for key, text in DEFINITIONS.items()]
    return "\n".join(out) + "\n"


def stats_json(stats: AttributeStats) -> dict[str, Any]:
    """The numbers of ``stats.json`` (plain JSON types; full frequency vectors, top pairs)."""
    names = stats.data.attribute_names
    levels: dict[str, Any] = {}
    for lv in stats.levels:
        entry: dict[str, Any] = {
            "units": lv.units,
            "imbalance": lv.imbalance.as_dict(),
            "frequency": [_r(x) for x in lv.frequency],
            "top_pairs": [p.as_dict() for p in lv.pairs],
        }
        if lv.majority_fraction is not None and lv.majority_imbalance is not None:
            entry["majority_fraction"] = [_r(x) for x in lv.majority_fraction]
            entry["majority_imbalance"] = lv.majority_imbalance.as_dict()
        levels[lv.level] = entry
    return {
        "dataset": stats.data.dataset,
        "source": str(stats.data.source),
        "attributes": stats.data.num_attributes,
        "attribute_names": names,
        "definitions": DEFINITIONS,
        "levels": levels,
    }


def default_out_dir(source: str | Path) -> Path:
    """``<stem>_stats/`` beside the input file or folder."""
    source = Path(source)
    return source.parent / f"{source.stem if source.is_file() else source.name}_stats"


def write_report(stats: AttributeStats, out_dir: str | Path) -> dict[str, Path]:
    """Write frequency.png, cooccurrence.png, stats.md and stats.json (each atomically)."""
    out_dir = Path(out_dir)
    paths = {
        "frequency": out_dir / "frequency.png",
        "cooccurrence": out_dir / "cooccurrence.png",
        "markdown": out_dir / "stats.md",
        "json": out_dir / "stats.json",
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_frequency(stats, paths["frequency"])
        plot_cooccurrence(stats, paths["cooccurrence"])
        figures = {k: paths[k].name for k in ("frequency", "cooccurrence")}
        write_text_atomic(paths["markdown"], render_markdown(stats, figures))
        text = json.dumps(stats_json(stats), indent=2, allow_nan=False)
        write_text_atomic(paths["json"], text + "\n")
    except OSError as exc:
        raise DataError(out_dir, None, f"cannot write the report here ({exc}); pick --out") from exc
    log.info("wrote %s", out_dir)
    return paths
