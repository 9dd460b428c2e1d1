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


def test_accuracy_coverage_by_hand():
    u = np.array([0.1, 0.9, 0.2, 0.8])  # most certain first: samples 0, 2, 3, 1
    correct = np.array([1, 0, 1, 0])
    curve = accuracy_coverage(u, correct, levels=4)
    np.testing.assert_allclose(curve.coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.accuracy, [1.0, 1.0, 2 / 3, 0.5])
    assert curve.area == pytest.approx((1 + 1 + 2 / 3 + 0.5) / 4)
