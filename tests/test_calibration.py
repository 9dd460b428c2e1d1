"""ECE, AUROC and the accuracy–coverage curve on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from crest.calibration import accuracy_coverage, auroc, expected_calibration_error, reliability


def test_ece_by_hand():
    # two bins of width 0.5: {0.2, 0.4} with 1 of 2 correct; {0.9, 0.7} with 2 of 2 correct
    conf = np.array([0.2, 0.4, 0.9, 0.7])
    correct = np.array([1, 0, 1, 1])
    expected = 2 / 4 * abs(0.5 - 0.3) + 2 / 4 * abs(1.0 - 0.8)
    assert expected_calibration_error(conf, correct, bins=2) == pytest.approx(expected)


def test_ece_is_zero_when_confidence_matches_accuracy():
    conf = np.full(10, 0.7)
    correct = np.array([1] * 7 + [0] * 3)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.0)


def test_reliability_bins():
    conf, acc, count = reliability(np.array([0.1, 0.15, 0.95]), np.array([0, 1, 1]), bins=2)
    assert count.tolist() == [2, 1]
    assert acc.tolist() == [0.5, 1.0] and conf[0] == pytest.approx(0.125)


def test_auroc_by_hand():
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    # one positive (0.5) against negatives 0.3 and 0.5 (a tie): (1 + 0.5) / 2
    assert auroc(np.array([0.5, 0.3, 0.5]), np.array([1, 0, 0])) == pytest.approx(0.75)
    assert np.isnan(auroc(np.array([0.1]), np.array([1])))


def test_auroc_equals_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for n, levels in ((7, 3), (200, 5), (1000, 10_000)):  # heavy ties … almost none
        scores = rng.integers(0, levels, n) / levels + rng.normal(0, 1e-9 if levels > 100 else 0, n)
        positive = rng.random(n) < 0.3
        positive[:2] = [True, False]
        assert auroc(scores, positive) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)
    assert np.isnan(auroc(np.array([0.1, np.nan]), np.array([1, 0])))


def test_accuracy_coverage_by_hand():
    u = np.array([0.1, 0.9, 0.2, 0.8])  # most certain first: samples 0, 2, 3, 1
    correct = np.array([1, 0, 1, 0])
    curve = accuracy_coverage(u, correct, levels=4)
    np.testing.assert_allclose(curve.coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.accuracy, [1.0, 1.0, 2 / 3, 0.5])
    assert curve.area == pytest.approx((1 + 1 + 2 / 3 + 0.5) / 4)


def test_risk_coverage_area_by_hand():
    from crest.calibration import risk_coverage_area

    u = np.array([0.1, 0.9, 0.2, 0.8])  # most certain first: samples 0, 2, 3, 1
    correct = np.array([1, 0, 1, 0])
    # errors among the k most certain: 0/1, 0/2, 1/3, 2/4
    assert risk_coverage_area(u, correct) == pytest.approx((0 + 0 + 1 / 3 + 1 / 2) / 4)
    # a tie is ranked by its mean error, whatever the input order
    tied = risk_coverage_area(np.array([0.5, 0.5]), np.array([1, 0]))
    assert tied == pytest.approx((0.5 + 0.5) / 2)
    assert np.isnan(risk_coverage_area(np.zeros(0), np.zeros(0)))


def test_decision_probability_matches_the_gzsl_decision():
    from crest.engine.evaluate import decision_probability

    logits = np.array([[2.0, 1.0, 0.5], [0.0, 0.2, 0.1]])  # 2 seen classes, then 1 unseen
    p = decision_probability(logits, gamma=1.0, num_seen=2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p.argmax(axis=1).tolist() == [0, 2]  # 0.5 + 1 < 2; 0.1 + 1 > 0.2
    expected = np.exp([2.0, 1.0, 1.5]) / np.exp([2.0, 1.0, 1.5]).sum()
    np.testing.assert_allclose(p[0], expected)
