"""Reports of run groups: the ablation table, and the sweep plot of H and CZSL against a parameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crest.atomic import write_text_atomic
from crest.experiments import RunResult, mean_std, scored, summary_table
from crest.explain import figures
from crest.metrics import Key
from crest.run_folder import RunFolder


def sweep_figure(path: Path, key: str, results: list[RunResult]) -> Path:
    labels = list(dict.fromkeys(r.label for r in results))
    xs = [float(x) for x in labels]
    fig, ax = figures.subplots(figsize=(5, 3.8))
    for metric, name in ((Key.H, "H (GZSL)"), (Key.CZSL, "ACC (CZSL)")):
        stats = [
            mean_std(
                [
                    100 * v
                    for r in results
                    if r.label == lab and (v := scored(r.metrics, metric)) is not None
                ]
            )
            for lab in labels
        ]
        means, stds = np.array([m for m, _ in stats]), np.array([s for _, s in stats])
        ax.errorbar(range(len(xs)), means, yerr=stds, marker="o", capsize=3, label=name)
    ax.set_xticks(range(len(xs)))
    ax.set_xticklabels([f"{x:g}" for x in xs])
    ax.set_xlabel(key)
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"H and ACC against {key}", fontsize=10)
    ax.text(
        0.0,
        -0.2,
        f"mean ± std over seeds; how epochs and γ were chosen: see {RunFolder.REPORT}",
        transform=ax.transAxes,
        fontsize=7,
        color="gray",
    )
    return figures.save(fig, path)


def write_group_report(
    out: Path,
    title: str,
    results: list[RunResult],
    label_header: str,
    figure: Path | None = None,
    note: str = "",
) -> Path:
    """``report.md`` of a group: the mean ± std table and the figure, with how numbers were chosen."""
    detail = sorted(
        {str(r.metrics.get(Key.SELECTION_DETAIL, r.metrics.get("selection", "?"))) for r in results}
    )
    text = f"# {title}\n\n{note}\n\n" + summary_table(results, label_header)
    text += "\nAccuracies in %, mean ± std over seeds. How each run's epoch and γ were chosen: "
    text += "; ".join(detail[:3]) + (" …" if len(detail) > 3 else "") + "\n"
    if figure is not None:
        text += f"\n![{figure.stem}]({figure.relative_to(out)})\n"
    text += "\n## Runs\n\n" + "\n".join(
        f"- {r.label} seed {r.seed}: `{r.folder.relative_to(out)}`" for r in results
    )
    path = out / RunFolder.REPORT  # a group folder is laid out like a run's
    write_text_atomic(path, text + "\n")
    write_text_atomic(out / "table.md", summary_table(results, label_header))
    return path
