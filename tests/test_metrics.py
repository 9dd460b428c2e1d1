"""ZSL metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from crest.metrics import czsl_accuracy, gzsl, harmonic_mean, per_class_accuracy, seen_unseen_curve


def test_per_class_accuracy_is_a_mean_over_classes():
    y_true = np.array([0, 0, 0, 0, 1])
    y_pred = np.array([0, 0, 0, 0, 0])
    # sample accuracy would be 0.8; per-class mean is (1 + 0) / 2
    assert per_class_accuracy(y_true, y_pred, [0, 1]) == pytest.approx(0.5)


def test_class_without_samples_is_excluded_with_warning():
    with pytest.warns(UserWarning, match="1 classes have no test samples"):
        acc = per_class_accuracy(np.array([0, 1]), np.array([0, 0]), [0, 1, 2])
    assert acc == pytest.approx(0.5)


def test_czsl_only_considers_unseen_classes():
    # class 0 is seen and scores highest, but CZSL predicts among unseen {1, 2}
    scores = np.array([[9.0, 1.0, 0.0], [9.0, 0.0, 1.0], [9.0, 2.0, 1.0]])
    assert czsl_accuracy(scores, np.array([1, 2, 2]), [1, 2]) == pytest.approx((1.0 + 0.5) / 2)


def test_gamma_moves_predictions_from_seen_to_unseen():
    seen, unseen = [0, 1], [2]
    s_seen = np.array([[2.0, 0.0, 1.5], [0.0, 2.0, 0.5]])  # both correct while gamma < 0.5
    s_unseen = np.array([[1.0, 0.0, 0.2], [0.0, 1.0, 0.9]])  # unseen wins at gamma > 0.8 and > 0.1
    r0 = gzsl(s_seen, [0, 1], s_unseen, [2, 2], seen, unseen, gamma=0.0)
    assert (r0.S, r0.U, r0.H) == (1.0, 0.0, 0.0)
    r1 = gzsl(s_seen, [0, 1], s_unseen, [2, 2], seen, unseen, gamma=0.3)
    assert (r1.S, r1.U) == (1.0, 0.5)
    assert r1.H == pytest.approx(harmonic_mean(1.0, 0.5)) == pytest.approx(2 / 3)
    r2 = gzsl(s_seen, [0, 1], s_unseen, [2, 2], seen, unseen, gamma=1.0)
    assert (r2.S, r2.U) == (0.5, 1.0)
    r3 = gzsl(s_seen, [0, 1], s_unseen, [2, 2], seen, unseen, gamma=2.0)
    assert (r3.S, r3.U) == (0.0, 1.0)


def test_seen_unseen_curve_and_ausuc_by_hand():
    seen, unseen = [0, 1], [2]
    s_seen = np.array([[2.0, 0.0, 1.5], [0.0, 2.0, 0.5]])  # thresholds 0.5, 1.5
    s_unseen = np.array([[1.0, 0.0, 0.2], [0.0, 1.0, 0.9]])  # thresholds 0.8, 0.1
    curve = seen_unseen_curve(s_seen, [0, 1], s_unseen, [2, 2], seen, unseen)
    np.testing.assert_allclose(curve.gammas[1:], [0.1, 0.5, 0.8, 1.5])
    np.testing.assert_allclose(curve.seen, [1.0, 1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(curve.unseen, [0.0, 0.5, 0.5, 1.0, 1.0])
    # area under S(U): from U=0 to 0.5 at S=1 (vertical drop at U=0.5 to 0.5), then S=0.5 to U=1
    assert curve.ausuc == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    assert curve.best_harmonic == pytest.approx(2 / 3)
    best = gzsl(s_seen, [0, 1], s_unseen, [2, 2], seen, unseen, gamma=curve.best_gamma)
    assert best.H == pytest.approx(curve.best_harmonic)


def test_curve_agrees_with_gzsl_at_every_step():
    rng = np.random.default_rng(0)
    seen, unseen = np.arange(5), np.arange(5, 8)
    s_seen, s_unseen = rng.normal(size=(40, 8)), rng.normal(size=(30, 8))
    y_seen, y_unseen = rng.integers(0, 5, 40), rng.integers(5, 8, 30)
    curve = seen_unseen_curve(s_seen, y_seen, s_unseen, y_unseen, seen, unseen)
    for k in range(0, len(curve.gammas), 7):
        g = curve.gammas[k] + 1e-9 if np.isfinite(curve.gammas[k]) else -1e9
        r = gzsl(s_seen, y_seen, s_unseen, y_unseen, seen, unseen, gamma=g)
        assert (r.S, r.U) == pytest.approx((curve.seen[k], curve.unseen[k]))
