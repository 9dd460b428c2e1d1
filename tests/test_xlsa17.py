"""The real xlsa17 class sides and attribute vectors: exact sizes, clean validation protocol."""

from __future__ import annotations

import numpy as np
import pytest

from crest.data.sources.attribute_names import attribute_names_for
from crest.data.sources.attribute_vectors import load_attribute_vectors
from crest.data.sources.xlsa17 import attribute_vectors_file, load_xlsa17

# dataset: classes all/seen/unseen, attributes, trainval/test_seen/test_unseen, clean train/val
EXPECTED = {
    "CUB": ((200, 150, 50), 312, (7057, 1764, 2967), (4702, 2355)),
    "SUN": ((717, 645, 72), 102, (10320, 2580, 1440), (9280, 1040)),
    "AWA2": ((50, 40, 10), 85, (23527, 5882, 7913), (20218 - 4031, 9191 - 1851)),
    "AWA1": ((50, 40, 10), 85, (19832, 4958, 5685), None),
    "APY": ((32, 20, 12), 64, (5932, 1483, 7924), None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_class_side_sizes(shared_data, name):
    (c, s, u), a, (tv, ts, tu), clean = EXPECTED[name]
    side = load_xlsa17(shared_data / "xlsa17" / name)
    assert (side.num_classes, len(side.seen_classes), len(side.unseen_classes)) == (c, s, u)
    assert side.num_attributes == a
    assert side.att.shape == side.original_att.shape == (c, a)
    assert (
        len(side.locs["trainval"]),
        len(side.locs["test_seen"]),
        len(side.locs["test_unseen"]),
    ) == (tv, ts, tu)
    np.testing.assert_allclose(np.linalg.norm(side.att, axis=1), 1.0, atol=1e-6)
    val = side.clean_val_locs()
    if clean is None:
        assert name == "AWA1" or val is None
    else:
        assert val is not None
        assert (len(val["train"]), len(val["val"])) == clean
        assert not np.intersect1d(val["train"], side.locs["test_seen"]).size
        assert not np.intersect1d(val["val"], side.locs["test_seen"]).size


def test_awa1_clean_split_removes_test_seen(shared_data):
    side = load_xlsa17(shared_data / "xlsa17" / "AWA1")
    val = side.clean_val_locs()
    assert val is not None
    overlap = np.intersect1d(side.locs["train"], side.locs["test_seen"]).size
    assert overlap > 0, "the original AWA1 train_loc overlaps test_seen_loc"
    assert len(val["train"]) == len(side.locs["train"]) - overlap


@pytest.mark.parametrize("name", ["CUB", "SUN", "AWA2"])
def test_labels_agree_with_class_lists(shared_data, name):
    side = load_xlsa17(shared_data / "xlsa17" / name)
    assert side.labels is not None
    assert set(np.unique(side.labels[side.locs["trainval"]])) == set(side.seen_classes.tolist())
    assert set(np.unique(side.labels[side.locs["test_unseen"]])) == set(
        side.unseen_classes.tolist()
    )


def test_cub_class_order_is_xlsa17(shared_data):
    side = load_xlsa17(shared_data / "xlsa17" / "CUB")
    assert side.class_names[0] == "002.Laysan_Albatross"


@pytest.mark.parametrize(("name", "rows"), [("CUB", 312), ("SUN", 102), ("AWA2", 85)])
def test_attribute_vectors_and_names(shared_data, name, rows):
    folder = shared_data / "attributes" / name
    vectors = load_attribute_vectors(attribute_vectors_file(folder, name), rows)
    assert vectors.shape == (rows, 300)
    assert vectors.dtype == np.float32
    assert len(attribute_names_for(folder, name, rows)) == rows


def test_npy_vectors_are_accepted(tmp_path):
    arr = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.save(tmp_path / "v.npy", arr)
    np.testing.assert_array_equal(
        load_attribute_vectors(tmp_path / "v.npy", 3), arr.astype(np.float32)
    )
