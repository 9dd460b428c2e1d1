"""Printing helpers shared by CLI commands."""

from __future__ import annotations

import json
from typing import Any

from crest.metrics import Key, ZslScores


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain-text table with aligned columns (also valid Markdown)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def add_overrides(
    parser: Any, help: str = "override a config key, e.g. --set train.epochs=5 (repeatable)"
) -> None:
    """The ``--set a.b=v`` option every config-taking command shares."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="A.B=V", help=help
    )


def print_summary(summary: dict[str, Any]) -> None:
    cls = summary["classes"]
    print(f"file        {summary['file']}")
    if "file_size_bytes" in summary:
        print(f"size        {human_bytes(summary['file_size_bytes'])}")
    print(f"classes     {cls['all']} (seen {cls['seen']}, unseen {cls['unseen']})")
    print(f"attributes  {summary['attributes']} (word vectors {summary['word_vector_dim']}-d)")
    print(f"images      {summary['images']}")
    print("splits      " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    if "features" in summary:
        feat = summary["features"]
        print(
            f"features    {feat['channels']} channels on a {feat['grid']} grid ({feat['regions']} regions), {feat['dtype']}"
        )
    print(f"ground truth attribute masks: {'yes' if summary['ground_truth_masks'] else 'no'}")
    if "features_checked" in summary:
        print(f"checked     {summary['features_checked']}")
    meta = summary.get("meta", {})
    if "source" in meta:
        real = meta.get("features_real", True)
        print(
            f"source      {meta['source']}"
            + ("" if real else " (features are not real image features)")
        )


def pct(v: float) -> str:
    return f"{100 * v:.1f}"


def score_cells(metrics: dict[str, Any]) -> list[str]:
    """CZSL, U, S, H of a metrics record, in % (a validation-only run: its validation CZSL and
    H, no U and S)."""
    if metrics.get("validation_only"):
        czsl = metrics.get("val_czsl")
        return ["–" if czsl is None else pct(czsl), "–", "–", pct(metrics["val_h"])]
    z = ZslScores.of(metrics)
    return [pct(z.czsl), pct(z.unseen), pct(z.seen), pct(z.harmonic)]


def print_metrics(metrics: dict[str, Any]) -> None:
    if metrics.get("validation_only"):  # no test scores: the validation choice and its scores
        from crest.engine.selection import validation_only_line

        print(metrics[Key.SELECTION_DETAIL])
        print(validation_only_line(metrics))
        return
    print(
        table(
            [
                [
                    *score_cells(metrics),
                    f"{metrics[Key.GAMMA]:.3f}",
                    metrics["selection"],
                    str(metrics["epoch"]),
                ]
            ],
            ["CZSL", "U", "S", "H", "γ", "selection", "epoch"],
        )
    )
    print(f"selection: {metrics.get(Key.SELECTION_DETAIL, metrics['selection'])}")
    if Key.ECE_P_UNSEEN in metrics:
        print(opinion_line(metrics))


def opinion_line(metrics: dict[str, Any]) -> str:
    """One line on what the reported opinion is worth (docs/method.md §6)."""
    m = metrics
    return (
        f"uncertainty: confidence flags wrong decisions with AUROC {m[Key.AUROC_ERROR]:.3f} "
        f"(ECE {pct(m[Key.ECE])}%); p_unseen flags unseen-class images with AUROC "
        f"{m[Key.AUROC_UNSEEN]:.3f} (ECE {pct(m[Key.ECE_P_UNSEEN])}%)"
        + (
            f"; the paper's vacuity: {m[Key.AUROC_ERROR_VACUITY]:.3f} and "
            f"{m[Key.AUROC_UNSEEN_VACUITY]:.3f}"
            if Key.AUROC_ERROR_VACUITY in m  # evidential models only
            else ""
        )
        + (f" [opinion: {m[Key.OPINION]}]" if Key.OPINION in m else "")
    )


def add_model_choice(p: Any) -> None:
    from crest.config import MODEL_NAMES

    p.add_argument(
        "--model",
        choices=MODEL_NAMES,
        help="the model, with its authors' recipe for the --config dataset (docs/peers.md); "
        "the same as --set model.name=NAME plus the recipe's overrides (default: crest)",
    )


def model_recipe(model: str | None, config: str | None) -> list[str]:
    """The ``--set`` overrides of ``model``'s recipe for the dataset of ``config`` (none for
    CREST, whose recipes are the packaged configs themselves)."""
    if model is None:
        return []
    from crest.config import dataset_of
    from crest.models.registry import recipe  # torch: only once a model is asked for

    dataset = dataset_of(config)
    return list(recipe(model, dataset))
