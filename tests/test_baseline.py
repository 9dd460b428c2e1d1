"""The floor to beat: learnable on the default world, but far from solving it."""

from __future__ import annotations

import pytest

from crest.baseline import run_baseline
from crest.data.synthetic.generator import generate_default_world


@pytest.fixture(scope="module")
def default_world_file(tmp_path_factory):
    return generate_default_world(tmp_path_factory.mktemp("w") / "default.h5")


def test_baseline_on_default_world(default_world_file):
    r = run_baseline(default_world_file)
    assert r.chance_czsl == pytest.approx(0.1)
    assert r.czsl_acc > 3 * r.chance_czsl, "the default world must be learnable"
    assert r.gzsl_h < 0.6, "the default world must not be solved by the baseline"
    assert 0 < r.ausuc < 1 and "validation" in r.gamma_selection


def test_baseline_gamma_is_chosen_without_test_data(default_world_file, tiny_world):
    # the chosen gamma depends only on the validation protocol: same on two calls, finite
    a, b = run_baseline(tiny_world), run_baseline(tiny_world)
    assert a.gamma == b.gamma and abs(a.gamma) < 10
