"""``report.md`` of a study: the budget, the best trial, the search space, every trial, the
parameter importances and the optimisation-history figure (``history.png``)."""

from __future__ import annotations

import logging
import math

import optuna
from optuna.trial import FrozenTrial, TrialState

from crest.atomic import atomic_path, write_text_atomic
from crest.config import Config
from crest.markdown import md_table
from crest.models.search_space import SearchSpace
from crest.tune.folder import StudyFolder
from crest.tune.study import (
    DIVERGED,
    EPOCHS,
    FOLDER,
    INTERRUPTED,
    RECIPE,
    RETRY_OF,
    counts_toward_budget,
)

log = logging.getLogger(__name__)
#: completed trials below which importances are not estimated (a forest fitted on fewer says
#: nothing but noise)
MIN_IMPORTANCE_TRIALS = 4


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def last_value(trial: FrozenTrial) -> float | None:
    """A trial's score: its value when complete, its last reported validation H otherwise."""
    if trial.state == TrialState.COMPLETE:
        return trial.value
    if trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return None


def importances(study: optuna.Study, trials: list[FrozenTrial]) -> dict[str, float] | str:
    """Optuna's parameter importances, or why there are none."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(done) < MIN_IMPORTANCE_TRIALS:
        return f"not estimated: {len(done)} completed trial(s), {MIN_IMPORTANCE_TRIALS} needed"
    if len({t.value for t in done}) < 2:
        return "not estimated: every completed trial has the same validation H"
    try:
        return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:
        return f"not estimated: {exc}"


def _state(trial: FrozenTrial) -> str:
    text = trial.state.name.lower()
    if trial.user_attrs.get(DIVERGED):
        text += " (diverged)"
    if trial.user_attrs.get(INTERRUPTED):
        text += " (interrupted, asked again)"
    if RETRY_OF in trial.user_attrs:
        text += f" (retry of {trial.user_attrs[RETRY_OF]})"
    if trial.user_attrs.get(RECIPE):
        text += " (the recipe)"
    return text


def trials_table(trials: list[FrozenTrial], keys: tuple[str, ...]) -> str:
    rows = [
        [
            str(t.number),
            _state(t),
            _pct(last_value(t)),
            str(t.user_attrs.get(EPOCHS, "–")),
            *(f"{t.params[k]:.3g}" if k in t.params else "–" for k in keys),
            f"`{t.user_attrs.get(FOLDER, '–')}`",
        ]
        for t in trials
    ]
    return md_table(["trial", "state", "validation H", "epochs run", *keys, "run folder"], rows)


def history_figure(folder: StudyFolder, trials: list[FrozenTrial]) -> bool:
    """Validation H of every trial (pruned ones at their last report) and the best so far."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    points = [(t.number, v, t.state) for t in trials if (v := last_value(t)) is not None]
    if not points:
        return False
    fig = Figure(figsize=(5.5, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for state, marker, label in (
        (TrialState.COMPLETE, "o", "completed"),
        (TrialState.PRUNED, "x", "pruned (last reported)"),
    ):
        mine = [(n, 100 * v) for n, v, s in points if s == state]
        if mine:
            ax.scatter(*zip(*mine, strict=True), marker=marker, label=label)
    best, line = -math.inf, []
    for n, v, s in points:
        if s == TrialState.COMPLETE:
            best = max(best, 100 * v)
        if math.isfinite(best):
            line.append((n, best))
    if line:
        ax.step(*zip(*line, strict=True), where="post", color="gray", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("validation H (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    with atomic_path(folder.history, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return True


def write_report(
    folder: StudyFolder,
    model: str,
    base: Config,
    space: SearchSpace,
    trials: list[FrozenTrial],
    best: FrozenTrial | None,
    study: optuna.Study,
) -> None:
    counted = [t for t in trials if counts_toward_budget(t)]
    text = [
        f"# crest tune: {model}",
        "",
        f"{len(counted)} trials × up to {base.train.epochs} epochs, each a `train.validation_only` "
        f"run (selection `val`, seed {base.train.seed}) of {model}'s recipe for "
        f"`{base.name}` on `{base.data.path or 'the default synthetic world'}`: scored by "
        "validation H (best epoch, γ and μ on the validation classes); the test split was never "
        "read. TPE proposes the values; trials that fall below the median of the completed "
        "ones at the same epoch are pruned. docs/tune.md.",
        "",
        "## Best",
        "",
    ]
    recipe = space.values_in(base)
    if best is None:
        text.append("No trial has completed yet.")
    else:
        chosen = ", ".join(f"`{k}={v:.4g}`" for k, v in best.params.items())
        text += [
            f"Trial {best.number}: validation H **{_pct(best.value)}** ({chosen}); validation "
            f"chose epoch {best.user_attrs.get('val_epoch', '?')}, γ "
            f"{float(best.user_attrs.get('val_gamma', math.nan)):.3f}.",
            "",
            f"Its config: `{folder.best.name}` (`crest train --config {folder.best}`: the full "
            "`val` protocol, then one score on test).",
        ]
    text += [
        "",
        "## Search space",
        "",
        md_table(
            ["key", "range", "recipe", "what"],
            [[f"`{p.key}`", p.describe(), f"{recipe[p.key]:g}", p.what] for p in space.params],
        ),
        "",
        "## Trials",
        "",
        trials_table(trials, space.keys),
        "",
        "Validation H in %; a pruned trial shows its last reported epoch's.",
        "",
        "## Parameter importances",
        "",
    ]
    found = importances(study, trials)
    if isinstance(found, str):
        text.append(found.capitalize() + ".")
    else:
        text += [
            md_table(["key", "importance"], [[f"`{k}`", f"{v:.3f}"] for k, v in found.items()]),
            "",
            "Optuna's default evaluator over the completed trials (shares summing to 1).",
        ]
    if history_figure(folder, trials):
        text += ["", "## Optimisation history", "", f"![history]({folder.history.name})"]
    write_text_atomic(folder.report, "\n".join(text) + "\n")
