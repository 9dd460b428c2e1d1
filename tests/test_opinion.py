"""The reported opinion (docs/method.md §6): confidence, p_unseen and vacuity, fitted on
validation classes only, and what acts on it (`crest predict --max-risk`)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL_MODEL, TINY
from crest.engine.evaluate import decision_probability
from crest.opinion import (
    ErrorModel,
    OpinionSettings,
    fit_error_model,
    fit_opinion,
    fit_temperature_level,
    report,
    risk_threshold,
    self_estimated_threshold,
    signals,
)

CREST = str(Path(sys.executable).with_name("crest"))


def _scores(rng: np.random.Generator, n: int = 400, k: int = 6) -> np.ndarray:
    return rng.normal(scale=2.0, size=(n, k))


def test_fixed_opinion_is_the_softmax_decision_probability():
    rng = np.random.default_rng(0)
    s, unseen = _scores(rng), np.array([False, False, False, True, True, True])
    r = report(s, unseen, 1.5, OpinionSettings())
    prob = decision_probability(s, 1.5, 3)  # softmax of s + γ·1[unseen], seen columns first
    assert np.array_equal(r.decision, prob.argmax(axis=1))
    np.testing.assert_allclose(r.confidence, prob.max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(r.p_unseen, prob[:, 3:].sum(axis=1), rtol=1e-12)


def test_opinion_with_a_level_by_hand():
    s = np.array([[1.0, 0.0, 3.0], [0.5, 2.0, -1.0]])
    unseen = np.array([False, False, True])
    t, b, gamma = 0.5, 2.0, 1.0
    r = report(s, unseen, gamma, OpinionSettings(temperature=t, level=b))
    z = s + gamma * unseen
    alpha = np.exp((z - b) / t) + 1.0  # e = exp((s + γ·1[unseen] − b)/T), α = e + 1
    p = alpha / alpha.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(r.confidence, p[np.arange(2), z.argmax(axis=1)], rtol=1e-12)
    np.testing.assert_allclose(r.p_unseen, p[:, 2], rtol=1e-12)  # coarsened over {seen, unseen}


def test_huge_scores_stay_finite():
    s = np.array([[1e30, 0.0, -1e30], [0.0, 0.0, 0.0]])
    for settings in (OpinionSettings(), OpinionSettings(temperature=0.1, level=5.0)):
        r = report(s, np.array([False, True, True]), 2.0, settings)
        assert np.isfinite(r.confidence).all() and np.isfinite(r.p_unseen).all()
        assert r.confidence[0] == pytest.approx(1.0)


def test_the_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    s, unseen = _scores(rng, n=4000), np.array([False] * 3 + [True] * 3)
    z = (s + 0.7 * unseen) / 2.5  # labels drawn from softmax((s + γ·1[unseen]) / 2.5)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    target = np.array([rng.choice(6, p=row) for row in p])
    temperature, level, nll = fit_temperature_level(s, target, unseen, 0.7)
    assert temperature == pytest.approx(2.5, rel=0.1)
    assert math.isfinite(nll)
    # a level, if kept, must put little mass on the uniform part here: confidence ≈ softmax
    fitted = report(s, unseen, 0.7, OpinionSettings(temperature, level))
    assert np.abs(fitted.confidence - p[np.arange(len(p)), fitted.decision]).mean() < 0.02


def test_risk_threshold_by_hand():
    confidence = np.array([0.9, 0.8, 0.8, 0.6, 0.4])
    correct = np.array([True, True, False, True, False])
    # sorted: 0.9 ✓ (risk 0), 0.8 ✓ 0.8 ✗ (a tie: both or neither; risk 1/3), 0.6 ✓ (1/4), 0.4 ✗ (2/5)
    assert risk_threshold(confidence, correct, 0.0, delta=0) == 0.9
    assert risk_threshold(confidence, correct, 0.25, delta=0) == 0.6
    assert risk_threshold(confidence, correct, 0.4, delta=0) == 0.4
    assert risk_threshold(confidence, ~np.ones(5, bool), 0.1) == math.inf  # nothing qualifies
    # with the Clopper–Pearson bound, δ = 0.05 shared by 20 coverage levels (0.0025 each):
    # 0 errors in k decisions bound the error rate at 1 − 0.0025^(1/k)
    many = np.linspace(1.0, 0.5, 100)
    right = np.ones(100, bool)
    assert risk_threshold(many, right, 0.07) == 0.5  # 1 − 0.0025^(1/100) ≈ 0.058
    assert risk_threshold(many[:10], right[:10], 0.07) == math.inf  # 1 − 0.0025^(1/10) ≈ 0.45
    big = np.linspace(1.0, 0.0, 1000)
    right = np.ones(1000, bool)
    right[500::10] = False  # the less confident half: one decision in ten wrong (5 % overall)
    t = risk_threshold(big, right, 0.06)
    kept = int((big >= t).sum())
    assert 500 <= kept < 1000  # the observed 5 % would pass; its upper bound (≈ 6.5 %) does not
    assert risk_threshold(big, right, 0.06, delta=0) == 0.0  # without the bound: everything
    # without labels: mean 1 − confidence of the accepted ≤ R
    assert self_estimated_threshold(confidence, 0.17) == 0.8  # (0.1 + 0.2 + 0.2)/3 ≈ 0.167
    assert self_estimated_threshold(confidence, 0.15) == 0.9


def test_error_model_is_adopted_only_when_it_ranks_errors_better():
    rng = np.random.default_rng(2)
    n = 2000
    conf_logit = rng.normal(size=n)
    extra = rng.normal(size=n)
    correct = rng.random(n) < 1 / (1 + np.exp(-(conf_logit + 2.0 * extra)))
    x = {"confidence_logit": conf_logit, "branch_agreement": extra}
    model, measured = fit_error_model(x, correct)
    assert model is not None and measured["auroc_error_model"] > measured["auroc_confidence"]
    noise = {"confidence_logit": conf_logit, "branch_agreement": rng.normal(size=n)}
    plain = rng.random(n) < 1 / (1 + np.exp(-conf_logit))
    model, measured = fit_error_model(noise, plain)
    assert model is None and measured["auroc_confidence"] > 0.6
    # the saved form round-trips
    m = ErrorModel(("confidence_logit",), (0.0,), (1.0,), (2.0,), -1.0)
    assert ErrorModel.from_dict(m.to_dict()) == m
    np.testing.assert_allclose(
        m.probability({"confidence_logit": np.array([0.5])}), 1 / (1 + np.exp(-0.0))
    )


def test_fit_opinion_round_trips_and_reports_every_signal():
    rng = np.random.default_rng(3)
    s, unseen = _scores(rng, n=600), np.array([False] * 3 + [True] * 3)
    target = (s + unseen).argmax(axis=1)
    target[:150] = rng.integers(0, 6, 150)  # some decisions are wrong
    branches = {"vgt": s + rng.normal(size=s.shape), "agt": s + rng.normal(size=s.shape)}
    vacuity = rng.random(len(s))
    settings = fit_opinion(s, target, unseen, 1.0, branches, vacuity)
    assert settings.source == "validation" and len(settings.val_confidence) == len(s)
    again = OpinionSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again.temperature == settings.temperature and again.level == settings.level
    assert again.val_correct == settings.val_correct
    x = signals(s, unseen, 1.0, settings, branches, vacuity)
    assert set(x) == {
        "confidence_logit",
        "margin",
        "partition_margin",
        "decided_unseen",
        "branch_agreement",
        "conflict",
        "log_vacuity",
    }
    assert OpinionSettings.from_dict(None) == OpinionSettings()  # a model saved before it


# ---- through training and the CLI ---------------------------------------------------------


@pytest.fixture(scope="module")
def val_run(tmp_path_factory):
    """A tiny run under `val`, trained in-process, recording every row the opinion fit reads
    (the validation outputs its evaluation kept, or those of best_val.pt's model)."""
    import crest.engine.opinion_fit as opinion_fit
    import crest.engine.train as train_module
    from crest.config import load_config
    from crest.data.schema.hdf5 import read_benchmark
    from crest.data.synthetic.generator import generate_default_world

    spec = replace(TINY, seed=5, images_min=16, images_max=20, grid=3)
    world = generate_default_world(tmp_path_factory.mktemp("w") / "opinion.h5", spec)
    seen_rows: list[np.ndarray] = []
    real = opinion_fit.fit_from_outputs

    def recording(seen_out, unseen_out, *args, **kwargs):
        seen_rows.extend([np.asarray(seen_out.rows), np.asarray(unseen_out.rows)])
        return real(seen_out, unseen_out, *args, **kwargs)

    cfg = load_config(
        "synthetic",
        [
            f"data.path={world}",
            *SMALL_MODEL,
            "train.batch_size=16",
            "train.lr=0.003",
            "train.epochs=4",
            "train.selection=val",
        ],
    )
    run = tmp_path_factory.mktemp("runs") / "val"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(opinion_fit, "fit_from_outputs", recording)
        mp.setattr(train_module, "fit_from_outputs", recording)
        trainer = train_module.Trainer(cfg, run)
        metrics = trainer.run()
    return world, run, metrics, seen_rows, read_benchmark(world), trainer


def test_opinion_from_kept_outputs_equals_a_refit_from_best_val(val_run):
    from crest.engine.selection import choose_val_setting

    *_, trainer = val_run
    kept = trainer.selection_state["opinion"]
    choice = choose_val_setting(trainer.history, trainer.cfg.model.mu)
    assert trainer.best_val_outputs is None  # used, then let go
    # no outputs kept: the opinion is fitted on best_val.pt's model, scoring validation again
    refit = trainer._fit_opinion(trainer.val_task(), choice)
    assert refit is not None
    assert kept["temperature"] == pytest.approx(refit.temperature, rel=1e-6)
    assert kept["level"] == pytest.approx(refit.level, rel=1e-6, abs=1e-9)
    # (saved to 6 decimals)
    assert kept["val_confidence"] == pytest.approx(list(refit.val_confidence), abs=1e-6)


def test_nothing_is_fitted_on_test_rows(val_run):
    _, _, metrics, seen_rows, bench, _ = val_run
    assert seen_rows, "the opinion was never fitted"
    fitted = np.concatenate(seen_rows)
    test = np.concatenate([bench.splits["test_seen"], bench.splits["test_unseen"]])
    assert not np.isin(fitted, test).any(), "test rows reached the fit of the reported opinion"
    assert np.isin(fitted, bench.splits["trainval"]).all()
    assert "fitted on the validation classes" in metrics["opinion"]
    for key in ("confidence", "auroc_error", "auroc_unseen", "ece", "ece_p_unseen"):
        assert 0 <= metrics[key] <= 1, key


def test_predict_max_risk_abstains_and_reports_coverage(val_run):
    world, run, _, _, bench, _ = val_run
    out = run / "pred.json"
    res = subprocess.run(
        [
            CREST,
            "predict",
            str(run / "checkpoints" / "last.pt"),
            "--benchmark",
            str(world),
            "--split",
            "test_seen",
            "--max-risk",
            "0.2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "--max-risk 0.2: answered" in res.stdout and "coverage" in res.stdout
    assert "validation decisions" in res.stdout  # the threshold's origin is said
    records = json.loads(out.read_text())
    assert len(records) == len(bench.splits["test_seen"])
    assert all({"confidence", "p_unseen", "vacuity", "accepted"} <= set(r) for r in records)
    opinion = json.loads((run / "val_selection.json").read_text())["opinion"]
    t_val = risk_threshold(
        np.array(opinion["val_confidence"]), np.array(opinion["val_correct"]), 0.2
    )
    confidence = np.array([r["confidence"] for r in records])
    own = self_estimated_threshold(confidence, 0.2)
    # never below the inputs' own; the inputs' own alone where no validation level qualifies
    t = own if np.isinf(t_val) else max(t_val, own)
    assert all(r["accepted"] == (r["confidence"] >= t) for r in records)
    if np.isinf(t_val):
        assert "no coverage level" in res.stdout


def test_prediction_uncertainty_is_a_deprecated_alias(val_run):
    import crest

    world, run, _, _, bench, _ = val_run
    from crest.data.schema.dataset import FeatureDataset

    rows = bench.splits["test_unseen"][:4]
    x = FeatureDataset(world, rows, labels=bench.labels).read_rows(np.arange(len(rows)))
    pred = crest.load(run / "checkpoints" / "last.pt").predict(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.array_equal(pred.uncertainty, pred.vacuity)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert pred.accepted is None and pred.coverage == 1.0
    with pytest.raises(Exception, match="max_risk"):
        crest.load(run / "checkpoints" / "last.pt").predict(x, max_risk=1.5)


def test_abstention_falls_back_to_the_inputs_own_threshold_and_says_so():
    from crest.opinion import abstention_threshold

    inputs = np.array([0.99, 0.95, 0.9, 0.5, 0.3])
    hopeless = OpinionSettings(val_confidence=(0.9,) * 200, val_correct=(False,) * 200)
    t, how = abstention_threshold(hopeless, inputs, 0.1)
    assert t == self_estimated_threshold(inputs, 0.1) == 0.9 and "no coverage level" in how
    good = OpinionSettings(
        val_confidence=tuple(np.linspace(1, 0.5, 400)), val_correct=(True,) * 400
    )
    t, how = abstention_threshold(good, inputs, 0.1)
    assert t == 0.9 and "above 400 validation decisions" in how  # the guard decided
    t, how = abstention_threshold(good, inputs, 0.1, guard=False)
    assert t == 0.5 and how.startswith("chosen on 400 validation decisions")
    t, how = abstention_threshold(OpinionSettings(), inputs, 0.1)
    assert t == 0.9 and "no validation decisions are saved" in how
