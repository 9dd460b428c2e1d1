"""`report.md` of a run: config summary, the selected metrics with their label, the per-epoch table,
and every figure of the run folder (added by `crest explain`), readable on GitHub as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crest.atomic import write_text_atomic


def _pct(v: Any) -> str:
    return f"{100 * float(v):.1f}" if isinstance(v, int | float) else "–"


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
            f"- model: {branches}, d={m['d']}, d_ff={m['d_ff']}, dropout={m['dropout']}, μ={m['mu']}, "
            f"encoder={m['encoder']}, fusion={m['fusion']}, bank {m['bank_size']}×{m['bank_dim']}"
            + (f" top-{m['bank_topk']}" if m["bank_topk"] else ""),
            f"- losses: {' + '.join(losses)}; λ_CAL={lo['lambda_cal']}, λ_EDL={lo['lambda_edl']}, "
            f"CE over {lo['ce_over']}, SC form {lo['sc_form']}",
            f"- training: {t['epochs']} epochs, batch {t['batch_size']}, Adam lr {t['lr']}, weight decay "
            f"{t['weight_decay']}, seed {t['seed']}, {t['precision']}, selection `{t['selection']}`",
        ]
    )


def epoch_table(history: list[dict[str, Any]]) -> str:
    rows = [
        "| phase | epoch | loss | split | CZSL | U | S | H | γ | AUSUC | u seen | u unseen |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in history:
        if "czsl_acc" not in e:
            continue
        rows.append(
            f"| {e['phase']} | {e['epoch']} | {e['loss'].get('total', float('nan')):.3f} | {e['eval_split']} | "
            f"{_pct(e['czsl_acc'])} | {_pct(e['gzsl_u'])} | {_pct(e['gzsl_s'])} | {_pct(e['gzsl_h'])} | "
            f"{e['gamma']:.2f} | {_pct(e['ausuc'])} | {e['uncertainty_seen']:.3f} | {e['uncertainty_unseen']:.3f} |"
        )
    return "\n".join(rows)


def write_report(
    folder: str | Path,
    cfg: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    extra_sections: list[str] | None = None,
) -> Path:
    """Write ``report.md``; figures are the PNG files under ``folder/figures`` (linked relatively)."""
    folder = Path(folder)
    lines = [
        f"# CREST run: {folder.name}",
        "",
        "## Configuration",
        "",
        config_summary(cfg),
        "",
        "## Result",
        "",
        "| CZSL | U | S | H | γ | selection | epoch |",
        "|---|---|---|---|---|---|---|",
        f"| {_pct(metrics['czsl_acc'])} | {_pct(metrics['gzsl_u'])} | {_pct(metrics['gzsl_s'])} | "
        f"{_pct(metrics['gzsl_h'])} | {metrics['gamma']:.3f} | {metrics['selection']} | {metrics['epoch']} |",
        "",
        f"**How the epoch and γ were chosen:** {metrics.get('selection_detail', metrics['selection'])}",
        "",
        "Accuracies are per-class mean top-1 (%), GZSL H = 2SU/(S+U).",
        "",
    ]
    for section in extra_sections or []:
        lines += [section, ""]
    figures = sorted((folder / "figures").glob("*.png")) if (folder / "figures").is_dir() else []
    if figures:
        lines += ["## Figures", ""]
        for fig in figures:
            lines += [
                f"### {fig.stem.replace('_', ' ')}",
                "",
                f"![{fig.stem}](figures/{fig.name})",
                "",
            ]
    lines += ["## Per epoch", "", epoch_table(history), ""]
    path = folder / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path
