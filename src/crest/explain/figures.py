"""Figures of a run, drawn headless and written atomically as PNG.

Figures are ``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot: nothing global
(no backend switch at import, no figure registry to close), the same style as the attribute
report's figures (crest.stats.report)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from crest.atomic import atomic_path
from crest.metrics import Key


def new_figure(**kwargs: Any) -> Figure:
    """A figure on its own Agg canvas."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def subplots(*grid: int, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """``pyplot.subplots`` without pyplot."""
    fig = new_figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def save(fig: Figure, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def short(name: str, width: int = 28) -> str:
    """Attribute names such as ``has_wing_color::red`` shortened for a subplot title."""
    text = name.replace("has_", "").replace("::", ": ").replace("_", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def attention_maps(path: Path, panels: list[dict[str, Any]], top_k: int) -> Path:
    """One row per image: the image (or its feature grid) and the VGT attention of its top attributes.

    Each panel dict: ``title``, ``attention`` (k, h, w), ``names`` (k,), ``scores`` (k,),
    ``present`` (k,) bool or None, ``image`` (H, W, 3) array or None.
    """
    rows = len(panels)
    fig, axes = subplots(rows, top_k + 1, figsize=(2.3 * (top_k + 1), 2.5 * rows), squeeze=False)
    for r, panel in enumerate(panels):
        base = panel.get("image")
        ax0 = axes[r, 0]
        if base is not None:
            ax0.imshow(base)
        else:
            ax0.imshow(panel["attention"].mean(0), cmap="gray")
        ax0.set_title(panel["title"], fontsize=7)
        ax0.axis("off")
        h, w = panel["attention"].shape[1:]
        for k in range(top_k):
            ax = axes[r, k + 1]
            ax.axis("off")
            if k >= len(panel["names"]):
                continue
            att = panel["attention"][k]
            if base is not None:
                ax.imshow(base)
                ax.imshow(
                    att,
                    cmap="jet",
                    alpha=0.5,
                    extent=(0, base.shape[1], base.shape[0], 0),
                    interpolation="bilinear",
                )
            else:
                ax.imshow(att, cmap="viridis", interpolation="nearest", extent=(0, w, h, 0))
            mark = ""
            if panel.get("present") is not None:
                mark = " ✓" if panel["present"][k] else " ✗"
            ax.set_title(
                f"{short(panel['names'][k])}{mark}\nscore {panel['scores'][k]:.2f}", fontsize=7
            )
    fig.suptitle(
        "VGT attribute→region attention (top attributes by VGT score; ✓ = present in the image)",
        fontsize=9,
    )
    return save(fig, path)


def _hist_key(entry: dict[str, Any], name: str) -> str:
    """``vacuity_hist_*``, or ``uncertainty_hist_*`` in histories of earlier releases."""
    return f"vacuity_{name}" if f"vacuity_{name}" in entry else f"uncertainty_{name}"


def vacuity_densities(path: Path, history: list[dict[str, Any]]) -> Path | None:
    """Fig. 6: densities of the fused vacuity u = K/S of seen and unseen test samples at a few
    epochs."""
    entries = [
        e for e in history if _hist_key(e, "hist_seen") in e and e.get("eval_split") == "test"
    ]
    if not entries:
        return None
    picks = sorted({0, len(entries) // 2, len(entries) - 1})
    fig, axes = subplots(1, len(picks), figsize=(4 * len(picks), 3.2), squeeze=False, sharey=True)
    for ax, i in zip(axes[0], picks, strict=True):
        e = entries[i]
        counts_edges = e.get(_hist_key(e, "hist_edges"))
        log_scale = counts_edges is not None
        for key, label, color in (
            (_hist_key(e, "hist_seen"), "seen classes", "tab:blue"),
            (_hist_key(e, "hist_unseen"), "unseen classes", "tab:orange"),
        ):
            counts = np.asarray(e[key], dtype=float)
            edges = np.asarray(counts_edges) if log_scale else np.linspace(0, 1, len(counts) + 1)
            # share of samples per bin (bins are log-spaced: a density in u would mislead the eye)
            share = counts / max(counts.sum(), 1)
            ax.stairs(share, edges, label=label, color=color, fill=True, alpha=0.35)
            ax.stairs(share, edges, color=color)
        if log_scale:
            ax.set_xscale("log")
        ax.set_title(f"epoch {e['epoch']}", fontsize=9)
        ax.set_xlabel("fused vacuity u = K/S (paper)")
    axes[0, 0].set_ylabel("share of test samples per bin")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Vacuity of test samples during training", fontsize=10, y=1.04)
    return save(fig, path)


def tsne_panels(
    path: Path,
    embeddings: dict[str, np.ndarray],
    labels: np.ndarray,
    unseen: set[int],
    names: Sequence[str],
) -> Path:
    """Fig. 9: t-SNE of the VGT, AGT and fused embeddings; ● seen, ▲ unseen classes."""
    from sklearn.manifold import TSNE

    fig, axes = subplots(1, len(embeddings), figsize=(4.6 * len(embeddings), 4.4), squeeze=False)
    classes = list(dict.fromkeys(labels.tolist()))
    colors = matplotlib.colormaps["tab20"](np.linspace(0, 1, max(len(classes), 1)))
    for ax, (title, emb) in zip(axes[0], embeddings.items(), strict=True):
        perplexity = float(min(30, max(5, len(emb) // 4)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0).fit_transform(
            emb
        )
        for ci, c in enumerate(classes):
            sel = labels == c
            ax.scatter(
                xy[sel, 0], xy[sel, 1], s=9, color=colors[ci], marker="^" if c in unseen else "o"
            )
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [
        Line2D([], [], marker="o", ls="", color="gray", label="seen class"),
        Line2D([], [], marker="^", ls="", color="gray", label="unseen class"),
    ]
    axes[0, 0].legend(handles=handles, fontsize=8, loc="best")
    fig.suptitle(f"t-SNE of test embeddings, {len(classes)} classes (one colour each)", fontsize=10)
    return save(fig, path)


def gamma_curve(
    path: Path,
    seen: np.ndarray,
    unseen: np.ndarray,
    ausuc: float,
    point: tuple[float, float],
    gamma: float,
    label: str,
) -> Path:
    """The seen–unseen accuracy curve over γ (Chao et al.) with its area and the γ used marked."""
    fig, ax = subplots(figsize=(4.6, 4.2))
    ax.plot(
        100 * unseen,
        100 * seen,
        color="tab:blue",
        drawstyle="steps-post",
        label=f"AUSUC = {100 * ausuc:.1f}",
    )
    ax.plot(
        100 * point[0], 100 * point[1], "o", color="tab:red", label=f"γ = {gamma:.2f} ({label})"
    )
    _seen_unseen_axes(ax, "Seen–unseen accuracy as γ varies")
    return save(fig, path)


def _seen_unseen_axes(ax: Any, title: str) -> None:
    """Axes of a seen–unseen curve: U across, S up, both in %."""
    ax.set_xlabel("U: unseen-class accuracy (%)")
    ax.set_ylabel("S: seen-class accuracy (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)


def reliability_diagram(
    path: Path,
    confidence: Sequence[float],
    accuracy: Sequence[float],
    count: Sequence[float],
    ece: float,
    xlabel: str = "confidence: probability that the GZSL decision is right",
    ylabel: str = "accuracy",
    title: str = "Reliability of confidence",
) -> Path:
    conf, acc = np.asarray(confidence, dtype=float), np.asarray(accuracy, dtype=float)
    bins = len(conf)
    centres = (np.arange(bins) + 0.5) / bins
    have = conf >= 0
    fig, ax = subplots(figsize=(4.4, 4.2))
    ax.bar(
        centres[have],
        acc[have],
        width=1 / bins,
        edgecolor="black",
        alpha=0.7,
        label=f"{ylabel} per bin",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (ECE = {100 * ece:.1f}%)", fontsize=10)
    if have.any():
        mean_conf = float(np.average(conf[have], weights=np.asarray(count, dtype=float)[have]))
        mean_acc = float(np.average(acc[have], weights=np.asarray(count, dtype=float)[have]))
        ax.text(
            0.98,
            0.04,
            f"mean predicted {mean_conf:.2f}\nmean observed {mean_acc:.2f}",
            ha="right",
            va="bottom",
            fontsize=8,
            transform=ax.transAxes,
        )
    ax.legend(fontsize=8)
    return save(fig, path)


def coverage_curve(
    path: Path, coverage: Sequence[float], accuracy: Sequence[float], area: float
) -> Path:
    fig, ax = subplots(figsize=(4.4, 4.0))
    ax.plot(
        100 * np.asarray(coverage),
        100 * np.asarray(accuracy),
        "o-",
        ms=3,
        label=f"area {100 * area:.1f}",
    )
    ax.set_xlabel("coverage: most confident test decisions kept (%)")
    ax.set_ylabel("GZSL top-1 accuracy on kept samples (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Accuracy–coverage (sorted by confidence)", fontsize=10)
    return save(fig, path)


def risk_coverage(
    path: Path, coverage: Sequence[float], risk: Sequence[float], aurc: float
) -> Path:
    """Error rate of the accepted decisions as fewer, more confident ones are accepted."""
    fig, ax = subplots(figsize=(4.4, 4.0))
    cov, r = 100 * np.asarray(coverage), 100 * np.asarray(risk)
    ax.plot(cov, r, "-", color="tab:red", label=f"AURC {100 * aurc:.1f}%")
    if len(r):
        ax.axhline(r[-1], ls="--", color="gray", lw=1, label=f"no abstention: {r[-1]:.1f}%")
    ax.set_xlabel("coverage: most confident test decisions accepted (%)")
    ax.set_ylabel("error rate of the accepted decisions (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Risk–coverage (crest predict --max-risk)", fontsize=10)
    return save(fig, path)


def p_unseen_histogram(
    path: Path, seen: Sequence[float], unseen: Sequence[float], auroc: float
) -> Path:
    """Histogram of p_unseen for seen-class and unseen-class test images (shares per bin)."""
    fig, ax = subplots(figsize=(4.8, 3.6))
    edges = np.linspace(0.0, 1.0, len(seen) + 1)
    for counts, label, color in (
        (seen, "seen-class images", "tab:blue"),
        (unseen, "unseen-class images", "tab:orange"),
    ):
        share = np.asarray(counts, dtype=float) / max(float(np.sum(counts)), 1.0)
        ax.stairs(share, edges, label=label, color=color, fill=True, alpha=0.35)
        ax.stairs(share, edges, color=color)
    ax.set_xlabel("p_unseen: belief that the class was not seen in training")
    ax.set_ylabel("share of images per bin")
    ax.legend(fontsize=8)
    ax.set_title(f"p_unseen on test images (AUROC {auroc:.3f})", fontsize=10)
    return save(fig, path)


def branch_curves(path: Path, history: list[dict[str, Any]]) -> Path | None:
    """The model's scores against each of its branches alone over the epochs of the final phase:
    CZSL, best-γ H and, for evidential models, mean vacuity (what each branch contributes,
    without an ablation). A `val` run scores the test split once, so its curves are those of
    the validation phase. None for a model without branches."""
    split = "test"
    entries = [e for e in history if e.get("branches") and e.get("eval_split") == "test"]
    if len(entries) < 2:
        validation = [e for e in history if e.get("branches") and e.get("phase") == "val"]
        if len(validation) > len(entries):
            split, entries = "validation", validation
    if not entries:
        return None
    epochs = [e["epoch"] for e in entries]
    names = list(entries[0]["branches"])
    evidential = Key.read(entries[0], Key.VACUITY_SEEN) is not None
    series: dict[str, dict[str, list[float]]] = {
        "fused": {
            Key.CZSL: [e[Key.CZSL] for e in entries],
            Key.BEST_H: [e[Key.BEST_H] for e in entries],
        }
    }
    if evidential:
        series["fused"]["vacuity"] = [
            (Key.read(e, Key.VACUITY_SEEN) + Key.read(e, Key.VACUITY_UNSEEN)) / 2 for e in entries
        ]
    for name in names:
        branch = [e["branches"][name] for e in entries]
        series[name] = {
            Key.CZSL: [b[Key.CZSL] for b in branch],
            Key.BEST_H: [b[Key.BEST_H] for b in branch],
        }
        if evidential:
            series[name]["vacuity"] = [b.get("vacuity", b.get("uncertainty")) for b in branch]
    panels = [
        (Key.CZSL, "CZSL (%)", 100.0),
        (Key.BEST_H, "GZSL H at each one's best γ (%)", 100.0),
    ]
    if evidential:
        panels.append(("vacuity", "mean vacuity u = K/S (paper)", 1.0))
    fig, axes = subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    styles = {"fused": ("fused", "black")} | {
        n: (f"{n.upper()} alone", colors[i % len(colors)]) for i, n in enumerate(names)
    }
    for ax, (key, title, scale) in zip(axes, panels, strict=True):
        for name, (label, color) in styles.items():
            ax.plot(
                epochs, scale * np.asarray(series[name][key]), label=label, color=color, marker="."
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Each branch and their combination, {split} split", fontsize=10, y=1.03)
    return save(fig, path)


def compare_curves(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> Path:
    """One seen–unseen curve per model: {model: (seen accuracy, unseen accuracy, AUSUC)}."""
    fig, ax = subplots(figsize=(4.8, 4.4))
    for model, (seen, unseen, ausuc) in curves.items():
        ax.plot(
            100 * unseen,
            100 * seen,
            drawstyle="steps-post",
            label=f"{model} (AUSUC {100 * ausuc:.1f})",
        )
    _seen_unseen_axes(ax, "Seen–unseen accuracy as γ varies, test split")
    return save(fig, path)


def h_over_epochs(path: Path, curves: dict[str, np.ndarray], note: str) -> Path:
    """Test H per epoch, one line per model (mean over seeds)."""
    fig, ax = subplots(figsize=(5.2, 3.8))
    for model, h in curves.items():
        ax.plot(np.arange(1, len(h) + 1), 100 * h, marker=".", label=model)
    ax.set_xlabel("epoch")
    ax.set_ylabel("H (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("GZSL H over epochs, test split", fontsize=10)
    ax.text(0.0, -0.22, note, transform=ax.transAxes, fontsize=7, color="gray")
    return save(fig, path)
