"""`crest data embed-attributes`: names files, the phrase rule, streamed word vectors, OOV, output."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from crest.cli import main
from crest.data.schema.hdf5 import read_benchmark
from crest.data.sources import attribute_names as an
from crest.data.sources import word_vectors as wv
from crest.data.sources.attribute_vectors import load_attribute_vectors
from crest.errors import CrestError, DataError

# Integer-valued 4-d vectors: sums are exact in float32.
VOCAB = {
    "bill": [1, 0, 0, 0],
    "shape": [0, 2, 0, 0],
    "curved": [0, 0, 3, 0],
    "up": [0, 0, 0, 4],
    "or": [1, 1, 1, 1],
    "down": [-1, 0, 0, 0],
    "black": [5, 5, 0, 0],
    "multi": [0, 0, 7, 0],
    "colored": [0, 0, 0, 8],
    "water": [2, 0, 2, 0],
    "running": [0, 3, 0, 3],
}
NAMES = [
    "has_bill_shape::curved_(up_or_down)",  # all six words known
    "black",
    "has_wing_color::zzzq",  # 'zzzq' has no vector
    "qqqx_vvvy",  # every word OOV -> zero row
    "has_breast_pattern::multi-colored",  # hyphenated word: falls back to its parts
    "running water",
]


def _v(*words: str) -> np.ndarray:
    return np.sum([np.asarray(VOCAB[w], dtype=np.float64) for w in words], axis=0)


EXPECTED = np.stack(
    [
        _v("bill", "shape", "curved", "up", "or", "down"),
        _v("black"),
        np.zeros(4),
        np.zeros(4),
        _v("multi", "colored"),
        _v("running", "water"),
    ]
).astype(np.float32)
EXPECTED[2] = np.zeros(4)  # 'wing' and 'color' are not in VOCAB either


def _lines(extra: dict[str, list[int]] | None = None) -> list[str]:
    vocab = {"the": [9, 9, 9, 9], **VOCAB, **(extra or {})}
    return [f"{w} {' '.join(str(x) for x in v)}" for w, v in vocab.items()]


def write_glove(path: Path) -> Path:
    path.write_text("\n".join(_lines()) + "\n")
    return path


def write_word2vec(path: Path, extra: dict[str, list[int]] | None = None) -> Path:
    lines = _lines(extra)
    path.write_text(f"{len(lines)} 4\n" + "\n".join(lines) + "\n")
    return path


def write_names(path: Path, names: list[str] = NAMES) -> Path:
    path.write_text("\n".join(names) + "\n")
    return path


# ---- phrase rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("has_bill_shape::curved_(up_or_down)", ["bill", "shape", "curved", "up", "or", "down"]),
        ("has_size::large_(16_-_32_in)", ["size", "large", "16", "32", "in"]),
        ("sailing/ boating", ["sailing", "boating"]),
        ("rock/stone", ["rock", "stone"]),
        ("wood (not part of a tree)", ["wood", "not", "part", "of", "a", "tree"]),
        ("Man-Made", ["man-made"]),
        ("bill shape curved ", ["bill", "shape", "curved"]),
    ],
)
def test_phrase_words(name, words):
    assert wv.phrase_words(name) == words


# ---- names files ---------------------------------------------------------------------------


def test_names_plain_list(tmp_path):
    assert an.read_attribute_names(write_names(tmp_path / "n.txt")) == NAMES


def test_names_numbered_cub_and_awa2_formats(tmp_path):
    cub = tmp_path / "attributes.txt"
    cub.write_text("1 has_bill_shape::curved_(up_or_down)\n2 has_bill_shape::dagger\n")
    assert an.read_attribute_names(cub) == [
        "has_bill_shape::curved_(up_or_down)",
        "has_bill_shape::dagger",
    ]
    awa = tmp_path / "predicates_awa2.txt"
    awa.write_text("     1\tblack\n     2\twhite\n")
    assert an.read_attribute_names(awa) == ["black", "white"]


def test_names_that_start_with_numbers_are_not_renumbered(tmp_path):
    path = write_names(tmp_path / "n.txt", ["3 legs", "7 spots"])
    assert an.read_attribute_names(path) == ["3 legs", "7 spots"]


def test_names_from_new_des_csv(tmp_path):
    path = tmp_path / "new_des.csv"
    path.write_text(",idx,des,new_des\n0,1,has_bill_shape::dagger,bill shape dagger \n")
    assert an.read_attribute_names(path) == ["bill shape dagger"]
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="new_des"):
        an.read_attribute_names(bad)


def test_names_from_real_files(shared_data):
    attrs = shared_data / "attributes"
    assert len(an.read_attribute_names(attrs / "CUB" / "attributes.txt")) == 312
    sun = an.read_attribute_names(attrs / "SUN" / "attributes.mat")
    assert len(sun) == 102 and sun[0] == "sailing/ boating"
    assert len(an.read_attribute_names(attrs / "AWA2" / "predicates.txt")) == 85
    assert len(an.read_attribute_names(attrs / "AWA2" / "predicates_awa2.txt")) == 85
    assert len(an.read_attribute_names(attrs / "CUB" / "new_des.csv")) == 312


def test_names_from_benchmark(tiny_world):
    assert an.names_from_benchmark(tiny_world) == read_benchmark(tiny_world).attribute_names


# ---- word vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [write_glove, write_word2vec], ids=["glove", "word2vec"])
def test_phrase_sums_and_oov(tmp_path, writer):
    emb = wv.embed_with_word_vectors(NAMES, writer(tmp_path / "vectors.txt"))
    assert emb.vectors.shape == (len(NAMES), 4)
    assert emb.vectors.dtype == np.float32
    np.testing.assert_array_equal(emb.vectors, EXPECTED)
    assert emb.missing[0] == [] and emb.missing[1] == []
    assert emb.missing[2] == ["wing", "color", "zzzq"]
    assert emb.missing[3] == ["qqqx", "vvvy"]
    assert emb.missing[4] == ["breast", "pattern"]  # multi-colored -> multi + colored
    assert emb.zero_rows == [2, 3]
    report = emb.report()
    assert report["oov_words"] == ["wing", "color", "zzzq", "qqqx", "vvvy", "breast", "pattern"]
    assert [r["index"] for r in report["zero_rows"]] == [2, 3]
    assert [r["index"] for r in report["oov_by_attribute"]] == [2, 3, 4]


def test_only_needed_words_are_kept(tmp_path):
    table = wv.read_word_vectors(write_glove(tmp_path / "v.txt"), {"black", "bill", "absent"})
    assert set(table.vectors) == {"black", "bill"}
    assert table.dim == 4 and table.format == "glove"


def test_reading_stops_once_every_word_is_found(tmp_path):
    table = wv.read_word_vectors(write_glove(tmp_path / "v.txt"), {"the", "bill"})
    assert table.lines_read == 2


def test_case_folded_fallback_and_exact_match_wins(tmp_path):
    path = write_word2vec(tmp_path / "v.vec", {"Arctic": [1, 2, 3, 4], "Black": [0, 0, 0, 1]})
    table = wv.read_word_vectors(path, {"arctic", "black"})
    assert table.format == "word2vec"
    np.testing.assert_array_equal(table.vectors["arctic"], [1, 2, 3, 4])
    np.testing.assert_array_equal(table.vectors["black"], VOCAB["black"])


def test_gzip_vectors(tmp_path):
    plain = write_glove(tmp_path / "v.txt")
    packed = tmp_path / "v.txt.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    emb = wv.embed_with_word_vectors(NAMES, packed)
    np.testing.assert_array_equal(emb.vectors, EXPECTED)


def test_bad_vector_line_names_the_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("the 1 2 3 4\nblack 1 x 3 4\n")
    with pytest.raises(DataError, match="line 2"):
        wv.read_word_vectors(path, {"black"})


def test_binary_word2vec_is_refused_clearly(tmp_path):
    path = tmp_path / "v.bin"
    path.write_bytes(b"3 4\nthe \xff\xfe\x00\x01\x80\x81\x82\x83\n")
    with pytest.raises(DataError, match="binary word2vec"):
        wv.read_word_vectors(path, {"the"})


# ---- other sources and output --------------------------------------------------------------


def test_sentence_transformers_missing_package(monkeypatch, tmp_path):
    monkeypatch.setattr(wv, "sentence_transformers_available", lambda: False)
    with pytest.raises(wv.MissingDependencyError, match="pip install sentence-transformers") as e:
        wv.embed_with_sentence_model(NAMES, tmp_path)
    assert isinstance(e.value, CrestError)


def test_convert_existing_pkl(shared_data):
    path = shared_data / "attributes" / "CUB" / "CUB_attribute.pkl"
    emb = wv.convert_vectors(path, [f"a{i}" for i in range(312)])
    assert emb.vectors.shape == (312, 300) and emb.vectors.dtype == np.float32
    sun = wv.convert_vectors(shared_data / "attributes" / "SUN" / "SUN_attribute.pkl")
    assert sun.vectors.shape == (102, 300) and len(sun.zero_rows) == 1  # one word with no vector
    with pytest.raises(DataError, match="312 rows; expected 5"):
        wv.convert_vectors(path, ["a"] * 5)


def test_npy_round_trip(tmp_path):
    out = wv.save_vectors(tmp_path / "sub" / "att.npy", EXPECTED.astype(np.float64))
    loaded = np.load(out, allow_pickle=False)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, EXPECTED)
    np.testing.assert_array_equal(load_attribute_vectors(out, len(NAMES)), EXPECTED)
    assert sorted(p.name for p in out.parent.iterdir()) == ["att.npy"]  # no temp file left
    with pytest.raises(DataError, match=r"\.npy"):
        wv.save_vectors(tmp_path / "att.txt", EXPECTED)


def _cli(argv: list[str]) -> int:
    """The real CLI entry point, in process."""
    return main(["data", *argv])


def test_cli_embed_attributes(tmp_path, capsys):
    names = write_names(tmp_path / "names.txt")
    vectors = write_glove(tmp_path / "glove.txt")
    out, report = tmp_path / "att.npy", tmp_path / "oov.json"
    argv = ["embed-attributes", "--names", str(names), "--word-vectors", str(vectors)]
    assert _cli([*argv, "--out", str(out), "--report", str(report)]) == 0
    np.testing.assert_array_equal(np.load(out), EXPECTED)
    printed = capsys.readouterr().out
    assert "attributes  6" in printed and "dim         4" in printed
    assert "OOV words   7 (wing, color, zzzq, qqqx, vvvy, breast, pattern)" in printed
    assert "zero rows   2 (all-zero vectors): 2 'has_wing_color::zzzq', 3 'qqqx_vvvy'" in printed
    assert json.loads(report.read_text())["oov_words"][0] == "wing"
    assert _cli(["embed-attributes", "--word-vectors", str(vectors), "--out", str(out)]) == 2
    assert "needs attribute names" in capsys.readouterr().err
