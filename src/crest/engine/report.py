"""`report.md` of a run: config summary, the selected metrics with their label, the per-epoch table,
and every figure of the run folder (added by `crest explain`), readable on GitHub as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crest.atomic import write_text_atomic
from crest.markdown import md_table
from crest.metrics import Key
from crest.run_folder import RunFolder
from crest.settings.departures import departures


def _pct(v: Any) -> str:
    return f"{100 * float(v):.1f}" if isinstance(v, int | float) else "–"


def deviations(cfg: dict[str, Any]) -> list[str]:
    """The switches of this run that depart from the paper's method (docs/method.md §7.4)."""
    return departures(cfg)


def additions(cfg: dict[str, Any]) -> list[str]:
    """What this run reports beyond the paper's outputs, changing none of its scores."""
    t = cfg["train"]
    if cfg.get("eval", {}).get("opinion", "validation") == "validation" and t["selection"] == "val":
        return [
            "confidence and p_unseen from an opinion with evidence "
            "exp((s + γ·1[unseen] − b)/T), T and b fitted on the validation classes "
            "(docs/method.md §6; the Uncertainty section says what this run used)"
        ]
    return [
        "confidence and p_unseen from an opinion with evidence exp(s + γ·1[unseen]) "
        "(fixed T = 1, no level; docs/method.md §6)"
    ]


def config_summary(cfg: dict[str, Any]) -> str:
    m, lo, t = cfg["model"], cfg["loss"], cfg["train"]
    branches = " + ".join(b for b, on in (("VGT", m["use_vgt"]), ("AGT", m["use_agt"])) if on)
    losses = ["ARISE"] + [
        n
        for n, on in (("VICL", lo["use_vicl"]), ("DIGS", lo["use_digs"]), ("EDL", lo["use_edl"]))
        if on
    ]
    return "\n".join(
        [
            f"- config `{cfg.get('name', '?')}`, data `{cfg['data']['path'] or 'embedded synthetic world'}`",
            f"- model: {branches}, d={m['d']}, d_ff={m['d_ff']}, dropout={m['dropout']}, μ={m['mu']}"
            + (
                ""
                if m.get("score_mu") is None
                else f" (scores: μ={m['score_mu']}, chosen on validation)"
            )
            + ", "
            f"encoder={m['encoder']}, fusion={m['fusion']}, bank {m['bank_size']}×{m['bank_dim']}"
            + (f" top-{m['bank_topk']}" if m["bank_topk"] else ""),
            f"- losses: {' + '.join(losses)}; λ_CAL={lo['lambda_cal']}, λ_EDL={lo['lambda_edl']}, "
            f"CE over {lo['ce_over']}, SC form {lo['sc_form']}",
            f"- training: {t['epochs']} epochs, batch {t['batch_size']}, Adam lr {t['lr']}, weight decay "
            f"{t['weight_decay']}, seed {t['seed']}, {t['precision']}, selection `{t['selection']}`",
            "- departures from the paper's method (docs/method.md §7.4): "
            + ("; ".join(deviations(cfg)) or "none"),
            "- reported beyond the paper: " + "; ".join(additions(cfg)),
        ]
    )


def epoch_table(history: list[dict[str, Any]]) -> str:
    header = ["phase", "epoch", "loss", "split", "CZSL", "U", "S", "H", "γ", "AUSUC"]
    header += ["confidence AUROC / ECE", "p_unseen AUROC", "vacuity seen / unseen"]
    names = next((list(e["branches"]) for e in history if e.get("branches")), [])
    header += [f"{n.upper()} CZSL / H / u" for n in names]
    rows = [
        [
            e["phase"],
            e["epoch"],
            f"{e['loss'].get('total', float('nan')):.3f}",
            e["eval_split"],
            *(_pct(e[k]) for k in (Key.CZSL, Key.U, Key.S, Key.H)),
            f"{e[Key.GAMMA]:.2f}",
            _pct(e[Key.AUSUC]),
            _auroc_ece(e),
            _u(e.get(Key.AUROC_UNSEEN)) if Key.AUROC_UNSEEN in e and Key.ECE_P_UNSEEN in e else "–",
            f"{_u(Key.read(e, Key.VACUITY_SEEN))} / {_u(Key.read(e, Key.VACUITY_UNSEEN))}",
            *(_branch_cell(e.get("branches", {}).get(n)) for n in names),
        ]
        for e in history
        if Key.CZSL in e
    ]
    return md_table(header, rows)


BRANCH_NAMES = {"vgt": "VGT alone (s^V)", "agt": "AGT alone (s^A)"}


def _u(v: Any) -> str:
    return f"{float(v):.3f}" if isinstance(v, int | float) else "–"


def branch_table(metrics: dict[str, Any]) -> str:
    """The fused result and each grounding direction scored alone, at the same epoch and γ."""
    seen_u, unseen_u = Key.read(metrics, Key.VACUITY_SEEN), Key.read(metrics, Key.VACUITY_UNSEEN)
    fused_u = None if seen_u is None or unseen_u is None else (seen_u + unseen_u) / 2
    rows = [["fused (reported)", *_scores(metrics, metrics.get(Key.BEST_H)), _u(fused_u)]]
    for name, b in metrics.get("branches", {}).items():
        rows.append([BRANCH_NAMES.get(name, name), *_scores(b, b[Key.BEST_H]), _u(_branch_u(b))])
    return md_table(["scores", "CZSL", "U", "S", "H at γ", "best-γ H", "mean vacuity"], rows)


def _branch_u(b: dict[str, Any]) -> Any:
    return b.get("vacuity", b.get("uncertainty"))  # the key of earlier releases


def _auroc_ece(e: dict[str, Any]) -> str:
    if Key.ECE_P_UNSEEN not in e:  # an entry of an earlier release: its keys meant vacuity
        return "–"
    return f"{_u(e.get(Key.AUROC_ERROR))} / {_pct(e.get(Key.ECE))}%"


def _scores(m: dict[str, Any], best_h: Any) -> list[str]:
    return [*(_pct(m[k]) for k in (Key.CZSL, Key.U, Key.S, Key.H)), _pct(best_h)]


def uncertainty_table(metrics: dict[str, Any]) -> str:
    """What the reported opinion is worth (crest.engine.evaluate.uncertainty_metrics)."""
    if Key.ECE_P_UNSEEN not in metrics:
        return ""
    m = metrics
    rows = [
        [
            "confidence: AUROC, wrong vs. right GZSL decisions",
            f"{_u(m[Key.AUROC_ERROR])} (softmax decision probability: {_u(m.get(Key.AUROC_ERROR_SOFTMAX))})",
        ],
        [
            "confidence: expected calibration error",
            f"{_pct(m[Key.ECE])}% (mean confidence {_pct(m.get(Key.CONFIDENCE))}%; softmax "
            f"{_pct(m.get(Key.ECE_SOFTMAX))}%; paper's α/S {_pct(m.get(Key.ECE_DIRICHLET))}%)",
        ],
        [
            "confidence: risk–coverage area (AURC, lower is better)",
            f"{_pct(m[Key.AURC])}%",
        ],
        ["p_unseen: AUROC, unseen vs. seen images", f"{_u(m[Key.AUROC_UNSEEN])}"],
        [
            "p_unseen: calibration error; mean on seen / unseen images",
            f"{_pct(m[Key.ECE_P_UNSEEN])}%; {_u(m.get(Key.P_UNSEEN_SEEN))} / {_u(m.get(Key.P_UNSEEN_UNSEEN))}",
        ],
        [
            "vacuity u = K/S (paper): AUROC wrong vs. right; unseen vs. seen",
            f"{_u(m.get(Key.AUROC_ERROR_VACUITY))}; {_u(m.get(Key.AUROC_UNSEEN_VACUITY))}",
        ],
    ]
    return md_table(["measure", "value"], rows)


def _branch_cell(b: dict[str, Any] | None) -> str:
    if not b:
        return "–"
    return f"{_pct(b[Key.CZSL])} / {_pct(b[Key.H])} / {_u(_branch_u(b))}"


def write_report(
    folder: str | Path,
    cfg: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    extra_sections: list[str] | None = None,
) -> Path:
    """Write ``report.md``; figures are the PNG files under ``folder/figures`` (linked relatively)."""
    folder = Path(folder)
    model = str(cfg.get("model", {}).get("name", "crest"))
    title = "CREST" if model == "crest" else f"{model} (a peer, docs/peers.md)"
    lines = [
        f"# {title} run: {folder.name}",
        "",
        "## Configuration",
        "",
        config_summary(cfg),
        "",
        "## Result",
        "",
        md_table(
            ["CZSL", "U", "S", "H", "γ", "selection", "epoch"],
            [
                [
                    *(_pct(metrics[k]) for k in (Key.CZSL, Key.U, Key.S, Key.H)),
                    f"{metrics[Key.GAMMA]:.3f}",
                    metrics["selection"],
                    metrics["epoch"],
                ]
            ],
        ),
        "",
        f"**How the epoch and γ were chosen:** {metrics.get(Key.SELECTION_DETAIL, metrics['selection'])}",
        "",
        "Accuracies are per-class mean top-1 (%), GZSL H = 2SU/(S+U).",
        "",
    ]
    if metrics.get("branches"):
        lines += [
            "## Each branch alone",
            "",
            "The same model and epoch: the combined scores, then each branch's on their own "
            "(CREST: VGT's s^V and AGT's s^A; H at the reported γ, and at the best γ of each one's own seen–unseen curve, since the "
            "branches' score scales differ).",
            "",
            branch_table(metrics),
            "",
        ]
    if Key.ECE_P_UNSEEN in metrics:
        lines += [
            "## Uncertainty: is the decision wrong? is the class new?",
            "",
            "Per image, for the decisions of the result above (docs/method.md §6): `confidence`, the "
            "probability that the decision is right; `p_unseen`, the belief that the image shows a "
            "class not seen in training; `vacuity`, the paper's u = K/S (lack of evidence). "
            f"Opinion: {metrics.get(Key.OPINION, 'fixed')}.",
            "",
            uncertainty_table(metrics),
            "",
        ]
    for section in extra_sections or []:
        lines += [section, ""]
    run = RunFolder(folder)
    figures = sorted(run.figures.glob("*.png")) if run.figures.is_dir() else []
    if figures:
        lines += ["## Figures", ""]
        for fig in figures:
            lines += [
                f"### {fig.stem.replace('_', ' ')}",
                "",
                f"![{fig.stem}]({RunFolder.FIGURES}/{fig.name})",
                "",
            ]
    lines += ["## Per epoch", "", epoch_table(history), ""]
    path = run.report_file
    write_text_atomic(path, "\n".join(lines))
    return path
