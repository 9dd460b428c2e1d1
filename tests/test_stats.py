"""`crest data stats`: imbalance measures, co-occurrence, and the reports on real and synthetic data."""

from __future__ import annotations

import json
from itertools import combinations

import h5py
import numpy as np
import pytest

from crest.cli import main
from crest.stats import attributes as st
from crest.stats import report as rep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---- measures on hand-computed cases -------------------------------------------------------


def test_gini_of_equal_frequencies_is_zero():
    assert st.gini(np.full(7, 0.3)) == pytest.approx(0.0, abs=1e-12)
    assert st.gini(np.zeros(4)) == 0.0


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0, 0, 0, 1], 0.75), ([1, 2, 3, 4], 0.25), ([4, 1, 3, 2], 0.25), ([1, 3], 0.25)],
)
def test_gini_known_values(values, expected):
    assert st.gini(np.asarray(values, dtype=float)) == pytest.approx(expected)


def test_gini_matches_mean_absolute_difference_definition():
    x = np.random.default_rng(0).random(37)
    pairwise = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size**2 * x.mean())
    assert st.gini(x) == pytest.approx(pairwise)


def test_cv_and_max_min_ratio():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert st.coefficient_of_variation(x) == pytest.approx(np.sqrt(1.25) / 2.5)
    assert st.max_min_ratio(x) == (pytest.approx(4.0), False)
    imb = st.imbalance(np.array([0.0, 0.1, 0.4]))
    assert imb.max_min_ratio == pytest.approx(4.0)
    assert imb.ratio_over_nonzero and imb.zero_count == 1
    assert "over nonzero; 1 zero" in imb.ratio_text()
    assert st.max_min_ratio(np.zeros(3)) == (None, True)


def test_presence_probabilities_on_the_three_scales():
    cub = st.presence_probabilities(np.array([[0.0, 50.0], [100.0, 25.0]]))
    np.testing.assert_allclose(cub, [[0.0, 0.5], [1.0, 0.25]])
    sun = st.presence_probabilities(np.array([[0.0, 0.5], [1.0, 0.25]]))
    np.testing.assert_allclose(sun, [[0.0, 0.5], [1.0, 0.25]])
    awa2 = st.presence_probabilities(np.array([[-1.0, 50.0], [100.0, 25.0]]))
    np.testing.assert_allclose(awa2, [[0.0, 0.5], [1.0, 0.25]])


def test_cooccurrence_on_constructed_images():
    # a always comes with b; a and c never meet; b meets c once.
    x = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=float)
    m = st.normalised_cooccurrence(x)
    p = {"a": 0.5, "b": 0.75, "c": 0.5}
    expected = np.array(
        [
            [1.0, 0.5 / np.sqrt(p["a"] * p["b"]), 0.0],
            [0.5 / np.sqrt(p["a"] * p["b"]), 1.0, 0.25 / np.sqrt(p["b"] * p["c"])],
            [0.0, 0.25 / np.sqrt(p["b"] * p["c"]), 1.0],
        ]
    )
    np.testing.assert_allclose(m, expected)
    pairs = st.top_pairs(m, ["a", "b", "c"], x.mean(axis=0), k=5)
    assert [(q.name_a, q.name_b) for q in pairs] == [("a", "b"), ("b", "c"), ("a", "c")]
    assert pairs[0].value == pytest.approx(0.5 / np.sqrt(0.375))


def test_cooccurrence_from_class_probabilities_and_a_never_present_attribute():
    probs = np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 0.0]])
    m = st.normalised_cooccurrence(probs)
    # E[ab] = (1*0.5 + 0*0.5) / 2 = 0.25; P(a) = P(b) = 0.5 -> 0.25 / 0.5
    assert m[0, 1] == pytest.approx(0.5)
    np.testing.assert_array_equal(m[2], 0.0)
    np.testing.assert_array_equal(np.diag(m), [1.0, 1.0, 0.0])
    assert np.allclose(m, m.T)


def test_top_pairs_lists_each_pair_once_and_skips_the_diagonal():
    m = st.normalised_cooccurrence(np.random.default_rng(1).random((20, 6)))
    pairs = st.top_pairs(m, [str(i) for i in range(6)], np.ones(6), k=100)
    assert len(pairs) == 15
    assert {(q.a, q.b) for q in pairs} == set(combinations(range(6), 2))
    assert [q.value for q in pairs] == sorted((q.value for q in pairs), reverse=True)


# ---- reports -------------------------------------------------------------------------------


def _check_png(path):
    assert path.exists()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 1024


def _check_report(paths, stats):
    for key in ("frequency", "cooccurrence"):
        _check_png(paths[key])
    md = paths["markdown"].read_text()
    assert "](frequency.png)" in md and "](cooccurrence.png)" in md
    assert f"{stats.levels[0].imbalance.gini:.3f}" in md
    data = json.loads(paths["json"].read_text())
    assert data["levels"]["class"]["imbalance"]["gini"] == pytest.approx(
        stats.levels[0].imbalance.gini, abs=1e-6
    )
    assert len(data["levels"]["class"]["top_pairs"]) == 15
    return md, data


@pytest.mark.parametrize(
    ("name", "classes", "attributes", "first_name"),
    [
        ("CUB", 200, 312, "has_bill_shape::curved_(up_or_down)"),
        ("SUN", 717, 102, "sailing/ boating"),
        ("AWA2", 50, 85, "black"),
    ],
)
def test_real_class_sides(shared_data, tmp_path, name, classes, attributes, first_name):
    data = st.load_xlsa17_attributes(
        shared_data / "xlsa17" / name, shared_data / "attributes" / name
    )
    assert data.class_probs.shape == (classes, attributes)
    assert 0.0 <= data.class_probs.min() and data.class_probs.max() <= 1.0
    assert data.attribute_names[0] == first_name
    stats = st.compute_stats(data)
    assert [lv.level for lv in stats.levels] == ["class"]
    assert 0.0 < stats.levels[0].imbalance.gini < 1.0
    md, _ = _check_report(rep.write_report(stats, tmp_path / "out"), stats)
    assert "image level" not in md
    best = stats.levels[0].pairs[0]
    assert f"`{best.name_a}` | `{best.name_b}`" in md


def test_synthetic_benchmark_has_an_image_level(tiny_world, tmp_path):
    stats = st.compute_stats(st.load_benchmark_attributes(tiny_world))
    assert [lv.level for lv in stats.levels] == ["class", "image"]
    with h5py.File(tiny_world) as f:
        shown = f["image_attributes"][()].astype(float)
    image = stats.level("image")
    assert image is not None and image.units == shown.shape[0]
    np.testing.assert_allclose(image.frequency, shown.mean(axis=0))
    md, data = _check_report(rep.write_report(stats, tmp_path / "out"), stats)
    assert "image level" in md
    assert data["levels"]["image"]["units"] == shown.shape[0]


def _cli(argv: list[str]) -> int:
    """The real CLI entry point, in process."""
    return main(["data", *argv])


def test_cli_stats(tiny_world, tmp_path, capsys):
    out = tmp_path / "report"
    assert _cli(["stats", str(tiny_world), "--out", str(out), "--top", "5"]) == 0
    printed = capsys.readouterr().out
    assert "class level" in printed and "image level" in printed and "Gini" in printed
    assert printed.count("  5. ") == 2  # top 5 pairs for each level
    assert {p.name for p in out.iterdir()} == {
        "frequency.png",
        "cooccurrence.png",
        "stats.md",
        "stats.json",
    }
    assert _cli(["stats", str(tiny_world), "--xlsa17", str(tmp_path)]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_default_out_dir_is_beside_the_input(tiny_world, tmp_path):
    assert rep.default_out_dir(tiny_world) == tiny_world.parent / f"{tiny_world.stem}_stats"
    assert rep.default_out_dir(tmp_path / "CUB") == tmp_path / "CUB_stats"
