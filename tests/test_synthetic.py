"""The synthetic world: deterministic, fast, and built with the structure that makes ZSL hard."""

from __future__ import annotations

import time
from dataclasses import replace

import h5py
import numpy as np
import pytest

from conftest import TINY
from crest.data.schema.hdf5 import read_benchmark
from crest.data.sources.attribute_names import attribute_names_for
from crest.data.sources.attribute_vectors import load_attribute_vectors
from crest.data.sources.xlsa17 import attribute_vectors_file, load_xlsa17
from crest.data.synthetic.generator import WorldSpec, generate_default_world
from crest.data.synthetic.worlds import build_world


def _features(path):
    with h5py.File(path) as f:
        return f["feature_map"][()]


def test_same_seed_same_world_other_seed_other_world(tiny_world, tmp_path):
    again = generate_default_world(tmp_path / "again.h5", TINY)
    np.testing.assert_array_equal(_features(again), _features(tiny_world))
    other = generate_default_world(tmp_path / "other.h5", replace(TINY, seed=4))
    assert not np.array_equal(_features(other), _features(tiny_world))


def test_default_world_is_fast_and_learnable_size(tmp_path):
    start = time.perf_counter()
    path = generate_default_world(tmp_path / "default.h5")
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"default world took {elapsed:.1f}s"
    bench = read_benchmark(path)
    assert (bench.num_classes, len(bench.seen_classes), len(bench.unseen_classes)) == (50, 40, 10)
    assert bench.has_val_split and bench.has_ground_truth and bench.meta["features_real"] is False


@pytest.fixture(scope="module")
def default_truth(tmp_path_factory):
    path = generate_default_world(tmp_path_factory.mktemp("w") / "default.h5")
    with h5py.File(path) as f:
        return (
            read_benchmark(path),
            f["image_attributes"][()],
            f["part_masks"][()],
            f["attribute_part"][()],
        )


def test_attribute_frequencies_are_imbalanced(default_truth):
    _, shown, _, _ = default_truth
    freq = shown.mean(0)
    assert freq.max() / max(freq.min(), 1e-6) > 5


def test_attributes_co_occur_across_parts(default_truth):
    _, shown, _, part = default_truth
    corr = np.nan_to_num(np.corrcoef(shown.T.astype(float)))
    cross_part = part[:, None] != part[None, :]
    assert corr[cross_part].max() > 0.3


def test_attributes_are_tied_to_parts_and_parts_move(default_truth):
    bench, shown, masks, part = default_truth
    assert masks.shape[1:] == (6, 7, 7) and part.shape == (bench.num_attributes,)
    visible = masks.reshape(len(masks), masks.shape[1], -1).any(-1)
    # an attribute is shown only where its part is visible
    assert not (shown.astype(bool) & ~visible[:, part]).any()
    # the same part sits in different cells from image to image (vision variability)
    cells = masks[:, 0].reshape(len(masks), -1).argmax(-1)[visible[:, 0]]
    assert len(np.unique(cells)) >= 5


def test_word_vectors_are_informative(default_truth):
    bench, *_ = default_truth
    w = bench.w2v_att / np.linalg.norm(bench.w2v_att, axis=1, keepdims=True)
    cos = w @ w.T
    names = [n.split("::") for n in bench.attribute_names]
    same_part = np.array([[a[0] == b[0] for b in names] for a in names])
    np.fill_diagonal(same_part, False)
    unrelated = np.array([[a[0] != b[0] and a[1] != b[1] for b in names] for a in names])
    assert cos[same_part].mean() > cos[unrelated].mean() + 0.2


@pytest.mark.parametrize("name", ["CUB", "SUN", "AWA2"])
def test_like_world_keeps_the_real_class_side(shared_data, tmp_path, name):
    spec = WorldSpec(feature_dim=8, grid=3, image_cap=4, parts=4)
    path = build_world(
        spec,
        out=tmp_path / f"{name}.h5",
        like=name,
        xlsa17=shared_data / "xlsa17",
        attributes=shared_data / "attributes",
    )
    bench = read_benchmark(path)
    side = load_xlsa17(shared_data / "xlsa17" / name)
    np.testing.assert_allclose(bench.att, side.att, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bench.original_att, side.original_att, rtol=1e-6, atol=1e-5)
    assert bench.class_names == side.class_names
    assert bench.attribute_names == attribute_names_for(
        shared_data / "attributes" / name, name, side.num_attributes
    )
    np.testing.assert_array_equal(bench.seen_classes, side.seen_classes)
    np.testing.assert_array_equal(bench.unseen_classes, side.unseen_classes)
    vectors = load_attribute_vectors(
        attribute_vectors_file(shared_data / "attributes" / name, name)
    )
    np.testing.assert_allclose(bench.w2v_att, vectors, rtol=1e-6)
    counts = np.bincount(bench.labels, minlength=bench.num_classes)
    real = np.bincount(side.labels, minlength=side.num_classes)
    small = real <= 4
    np.testing.assert_array_equal(
        counts[small], real[small]
    )  # classes under the cap keep every image
    assert counts[~small].min() >= 2 and counts.max() <= 4 + 2  # capped (rounding per split group)
    assert bench.meta["generator"]["like"] == name and bench.image_files is not None


def test_like_world_without_a_cap_has_the_real_counts(shared_data, tmp_path):
    """`crest data synth --like SUN` with no --image-cap: every image of the real splits, so each
    class and each xlsa17 split has its real size (the real-scale worlds of issue 28)."""
    spec = WorldSpec(feature_dim=4, grid=2, parts=4)
    assert spec.image_cap is None
    path = build_world(
        spec,
        out=tmp_path / "sun.h5",
        like="SUN",
        xlsa17=shared_data / "xlsa17",
        attributes=shared_data / "attributes",
    )
    bench = read_benchmark(path)
    side = load_xlsa17(shared_data / "xlsa17" / "SUN")
    np.testing.assert_array_equal(
        np.bincount(bench.labels, minlength=bench.num_classes),
        np.bincount(side.labels, minlength=side.num_classes),
    )
    for split in ("trainval", "test_seen", "test_unseen"):
        assert len(bench.splits[split]) == len(side.locs[split]), split
