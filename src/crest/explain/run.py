"""`crest explain RUN`: every figure of a run, the numbers behind them, and the updated report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crest.atomic import write_text_atomic
from crest.data.schema.hdf5 import read_ground_truth
from crest.engine.checkpoint import selected_opinion
from crest.engine.evaluate import Outputs, uncertainty_metrics
from crest.engine.report import write_report
from crest.engine.runner import file_rows, run_model
from crest.explain import figures
from crest.explain.loading import LoadedRun, load_run
from crest.explain.localization import localization_score
from crest.markdown import md_table
from crest.metrics import Key, seen_unseen_curve
from crest.models.contract import ModelOutput
from crest.run_folder import RunFolder

log = logging.getLogger(__name__)


@torch.no_grad()
def forward_rows(
    run: LoadedRun, rows: np.ndarray, keep_attention: bool = False
) -> dict[str, np.ndarray]:
    """Model outputs for file rows, in order: logits (fused and per direction), alpha, vacuity,
    embeddings, attention."""

    def pick(out: ModelOutput, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        assert y is not None
        kept = {"logits": out.logits.float(), "embedding": out.embedding.float(), "labels": y}
        if out.alpha is not None:
            kept["alpha"] = out.alpha.float()
            kept["vacuity"] = out.logits.shape[1] / out.alpha.float().sum(dim=1)
        for name, branch in out.branches.items():
            kept[f"logits_{name}"] = branch.float()
        if keep_attention and out.attention is not None and out.attention_scores is not None:
            kept["attention"] = out.attention.float()
            kept["attention_scores"] = out.attention_scores.float()
        return kept

    assert run.data_path is not None
    batches = file_rows(run.data_path, rows, run.bench.labels, run.device, run.cfg.eval.batch_size)
    return run_model(run.model, batches, pick, return_attention=keep_attention)


def _outputs(d: dict[str, np.ndarray], rows: np.ndarray) -> Outputs:
    return Outputs(
        logits=d["logits"],
        labels=d["labels"],
        vacuity=d.get("vacuity"),
        rows=rows,
        alpha=d.get("alpha"),
        branch_logits={
            k.removeprefix("logits_"): v for k, v in d.items() if k.startswith("logits_")
        },
    )


def _sample(rng: np.random.Generator, rows: np.ndarray, k: int) -> np.ndarray:
    return np.sort(rng.choice(rows, size=min(k, len(rows)), replace=False))


def _load_image(root: Path | None, files: list[str] | None, row: int) -> np.ndarray | None:
    if root is None or files is None:
        return None
    from PIL import Image

    path = root / files[row]
    if not path.exists():
        log.warning("image %s not found; drawing over the feature grid", path)
        return None
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((224, 224)))


def explain_run(
    folder: str | Path,
    images: int = 4,
    top_k: int = 5,
    image_root: str | Path | None = None,
    rows: list[int] | None = None,
    localization_images: int = 500,
    tsne_classes: int = 10,
    seed: int = 0,
    data: str | Path | None = None,
    allow_other_classes: bool = False,
) -> dict[str, Any]:
    """Write figures under ``folder/figures``, numbers into ``explain.json`` and ``metrics.json``,
    and regenerate ``report.md``. Returns the numbers. ``data``: the benchmark file to read images
    from (default: the training file)."""
    run = load_run(folder, data=data, allow_other_classes=allow_other_classes)
    b, rng = run.bench, np.random.default_rng(seed)
    fig_dir = RunFolder(run.folder).figures
    assert run.data_path is not None  # load_run reads the benchmark file (images=True)
    seen_cls, unseen_cls = b.seen_classes, b.unseen_classes
    gamma = float(run.metrics.get(Key.GAMMA, run.cfg.eval.gamma))
    ts, tu = b.splits["test_seen"], b.splits["test_unseen"]
    out_s, out_u = forward_rows(run, ts), forward_rows(run, tu)
    numbers: dict[str, Any] = {Key.GAMMA: gamma, "checkpoint_epoch": int(run.state["epoch"])}

    # the seen-unseen curve with the run's gamma marked
    curve = seen_unseen_curve(
        out_s["logits"], out_s["labels"], out_u["logits"], out_u["labels"], seen_cls, unseen_cls
    )
    from crest.metrics import gzsl

    point = gzsl(
        out_s["logits"],
        out_s["labels"],
        out_u["logits"],
        out_u["labels"],
        seen_cls,
        unseen_cls,
        gamma,
    )
    figures.gamma_curve(
        fig_dir / "gamma_curve.png",
        curve.seen,
        curve.unseen,
        curve.ausuc,
        (point.unseen, point.seen),
        gamma,
        str(run.metrics.get("selection", "")),
    )
    numbers.update(
        ausuc=curve.ausuc, best_gamma_on_test=curve.best_gamma, best_h_on_test=curve.best_harmonic
    )

    figures.branch_curves(fig_dir / "branch_curves.png", run.history)

    # the reported opinion, measured: is the decision wrong? is the class new? (§6)
    opinion = selected_opinion(run.state)
    numbers[Key.OPINION] = opinion.describe()
    scalars, curves = uncertainty_metrics(
        _outputs(out_s, ts), _outputs(out_u, tu), seen_cls, unseen_cls, gamma, opinion
    )
    numbers.update(scalars)
    figures.reliability_diagram(
        fig_dir / "reliability.png",
        curves["reliability_confidence"],
        curves["reliability_accuracy"],
        curves["reliability_count"],
        scalars[Key.ECE],
    )
    figures.reliability_diagram(
        fig_dir / "reliability_p_unseen.png",
        curves["reliability_p_unseen"],
        curves["reliability_unseen_frequency"],
        curves["reliability_p_unseen_count"],
        scalars[Key.ECE_P_UNSEEN],
        xlabel="p_unseen: belief that the class was not seen in training",
        ylabel="share of unseen-class images",
        title="Reliability of p_unseen",
    )
    figures.p_unseen_histogram(
        fig_dir / "p_unseen.png",
        curves["p_unseen_hist_seen"],
        curves["p_unseen_hist_unseen"],
        scalars[Key.AUROC_UNSEEN],
    )
    figures.risk_coverage(
        fig_dir / "risk_coverage.png", curves["risk_coverage"], curves["risk"], scalars[Key.AURC]
    )
    figures.coverage_curve(
        fig_dir / "accuracy_coverage.png",
        curves["coverage"],
        curves["coverage_accuracy"],
        scalars[Key.COVERAGE_AUC],
    )
    figures.vacuity_densities(fig_dir / "vacuity_density.png", run.history)

    # attention maps of chosen or sampled test images, for a model that has attention
    has_attention = run.model.has_attention and _gives_attention(run, ts[:1])
    if not has_attention:
        numbers["attention"] = f"{run.cfg.model.name} gives no attribute→region attention: no maps"
        log.info("%s", numbers["attention"])
    if has_attention:
        chosen = (
            np.asarray(rows)
            if rows
            else np.concatenate(
                [_sample(rng, ts, (images + 1) // 2), _sample(rng, tu, images // 2)]
            )
        )
        fw = forward_rows(run, chosen, keep_attention=True)
        truth = (
            read_ground_truth(run.data_path, chosen)["image_attributes"]
            if b.has_ground_truth
            else None
        )
        h, w = b.grid or (1, 1)
        panels = []
        root = Path(image_root) if image_root else None
        for i, row in enumerate(chosen):
            top = np.argsort(-fw["attention_scores"][i])[:top_k]
            pred = int(
                np.argmax(fw["logits"][i] + gamma * np.isin(np.arange(b.num_classes), unseen_cls))
            )
            label = int(b.labels[row])
            kind = "unseen" if label in set(unseen_cls.tolist()) else "seen"
            panels.append(
                {
                    "title": f"row {row} ({kind})\ntrue {figures.short(b.class_names[label], 26)}\n"
                    f"pred {figures.short(b.class_names[pred], 26)}"
                    + (f" · vacuity {fw['vacuity'][i]:.2f}" if "vacuity" in fw else ""),
                    "attention": fw["attention"][i][top].reshape(len(top), h, w),
                    "names": [b.attribute_names[a] for a in top],
                    "scores": fw["attention_scores"][i][top],
                    "present": None if truth is None else truth[i][top].astype(bool),
                    "image": _load_image(root, b.image_files, int(row)),
                }
            )
        figures.attention_maps(fig_dir / "attention_maps.png", panels, top_k)

    # localization against ground-truth masks (synthetic worlds record them)
    if has_attention and b.has_ground_truth:
        test_rows = np.concatenate([ts, tu])
        picked = _sample(rng, test_rows, localization_images)
        fw = forward_rows(run, picked, keep_attention=True)
        gt = read_ground_truth(run.data_path, picked)
        masks = gt["part_masks"].reshape(len(picked), gt["part_masks"].shape[1], -1).astype(bool)
        loc = localization_score(
            fw["attention"], gt["image_attributes"].astype(bool), masks, gt["attribute_part"]
        )
        numbers["localization"] = {
            "vgt": loc.score,
            "uniform_reference": loc.uniform,
            "pairs": loc.pairs,
            "images": len(picked),
        }

    # t-SNE of the embedding (and the attention's attribute scores) for a few seen and unseen classes
    pick_s = rng.choice(seen_cls, size=min(tsne_classes, len(seen_cls)), replace=False)
    pick_u = rng.choice(unseen_cls, size=min(tsne_classes, len(unseen_cls)), replace=False)
    embs: dict[str, list[np.ndarray]] = {}
    labels: list[np.ndarray] = []
    for out, classes in ((out_s, pick_s), (out_u, pick_u)):
        for c in classes:
            idx = np.flatnonzero(out["labels"] == c)[:30]
            labels.append(out["labels"][idx])
            views = [("embedding", "embedding f (what the class scores compare with Z)")]
            views += [
                (k, f"{k.removeprefix('logits_')} class scores")
                for k in out
                if k.startswith("logits_")
            ]
            for key, title in views:
                if key in out:
                    embs.setdefault(title, []).append(out[key][idx])
    lab = np.concatenate(labels)
    if len(lab) >= 10:
        figures.tsne_panels(
            fig_dir / "tsne.png",
            {k: np.concatenate(v) for k, v in embs.items()},
            lab,
            set(unseen_cls.tolist()),
            b.class_names,
        )

    write_text_atomic(run.folder / "explain.json", json.dumps(numbers, indent=2))
    metrics = dict(run.metrics)
    for key in (
        Key.ECE,
        Key.AUROC_ERROR,
        Key.AUROC_UNSEEN,
        Key.ECE_P_UNSEEN,
        Key.AURC,
        Key.COVERAGE_AUC,
        Key.AUROC_ERROR_VACUITY,
        Key.AUROC_UNSEEN_VACUITY,
        Key.OPINION,
        "localization",
    ):
        if key in numbers:
            metrics[key] = numbers[key]
    RunFolder(run.folder).write_metrics(metrics)
    write_report(run.folder, run.cfg.to_dict(), metrics, run.history, [explain_section(numbers)])
    return numbers


def _gives_attention(run: LoadedRun, rows: np.ndarray) -> bool:
    """Whether the model, as configured, returns attention maps (CREST without VGT does not)."""
    return len(rows) > 0 and "attention" in forward_rows(run, rows, keep_attention=True)


def explain_section(n: dict[str, Any]) -> str:
    lines = [
        "## Inside the model",
        "",
        f"Measured on the test split with the checkpoint of epoch {n['checkpoint_epoch']} at γ = {n[Key.GAMMA]:.3f}; "
        f"opinion: {n[Key.OPINION]}.",
        "",
    ]
    rows = [
        ["confidence: AUROC, wrong vs. right GZSL decisions", f"{n[Key.AUROC_ERROR]:.3f}"],
        ["confidence: expected calibration error", f"{100 * n[Key.ECE]:.1f}%"],
        ["p_unseen: AUROC, unseen vs. seen test images", f"{n[Key.AUROC_UNSEEN]:.3f}"],
        ["p_unseen: expected calibration error", f"{100 * n[Key.ECE_P_UNSEEN]:.1f}%"],
        [
            "risk–coverage area (decisions ranked by confidence; lower is better)",
            f"{100 * n[Key.AURC]:.1f}%",
        ],
        ["accuracy–coverage area", f"{100 * n[Key.COVERAGE_AUC]:.1f}%"],
        ["AUSUC (area of the seen–unseen curve)", f"{100 * n[Key.AUSUC]:.1f}"],
    ]
    if Key.AUROC_ERROR_VACUITY in n:  # evidential models only
        rows.insert(
            4,
            [
                "vacuity u = K/S (paper): AUROC wrong vs. right; unseen vs. seen",
                f"{n[Key.AUROC_ERROR_VACUITY]:.3f}; {n[Key.AUROC_UNSEEN_VACUITY]:.3f}",
            ],
        )
    if "attention" in n:
        rows.append(["attention maps", n["attention"]])
    if "localization" in n:
        loc = n["localization"]
        rows += [
            [
                "localization: the most-attended region inside the attribute's true region",
                f"{100 * loc['vgt']:.1f}% of {loc['pairs']} (image, present attribute) pairs",
            ],
            [
                "localization of uniform attention (reference)",
                f"{100 * loc['uniform_reference']:.1f}%",
            ],
        ]
    lines.append(md_table(["measure", "value"], rows))
    lines += [
        "",
        f"The best γ on the test curve would be {n['best_gamma_on_test']:.2f} (H {100 * n['best_h_on_test']:.1f}); "
        "shown for diagnosis only, never used for the reported numbers.",
    ]
    return "\n".join(lines)
