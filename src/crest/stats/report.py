"""The attribute-statistics report of `crest data stats`: frequency and co-occurrence figures,
``stats.md`` with the definitions, and ``stats.json``, written atomically."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crest.atomic import atomic_path, write_text_atomic
from crest.errors import DataError
from crest.explain.figures import new_figure
from crest.markdown import md_table
from crest.stats.attributes import (
    DEFINITIONS,
    GROUP_SEP,
    MAJORITY,
    AttributeStats,
    LevelStats,
    Pair,
    rounded,
)

log = logging.getLogger(__name__)


#: Above this many attributes, plots show ranks/indices instead of one tick label per attribute.
MAX_NAMED_TICKS = 60


def _new_figure(width: float, height: float) -> Figure:
    return new_figure(figsize=(width, height), layout="constrained")


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
    if not names or not all(GROUP_SEP in n for n in names):
        return None
    runs: list[tuple[str, int, int]] = []
    for i, name in enumerate(names):
        group = name.split(GROUP_SEP, 1)[0].removeprefix("has_")
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


def _code(name: str) -> str:
    """An attribute name as inline code, so that Markdown leaves ``_`` and ``*`` alone."""
    return f"`{name}`"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return md_table(header, rows).splitlines()


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
            "frequency": [rounded(x) for x in lv.frequency],
            "top_pairs": [p.as_dict() for p in lv.pairs],
        }
        if lv.majority_fraction is not None and lv.majority_imbalance is not None:
            entry["majority_fraction"] = [rounded(x) for x in lv.majority_fraction]
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
