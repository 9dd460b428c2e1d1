"""`crest data extract`: real ResNet-101 architecture (random weights, no download) on tiny images.

The forward pass of ResNet-101 costs about a second per image on a small CPU, so the datasets are
tiny and each extraction is shared by several tests: ``toy224`` (12 classes x 2 images, 7x7),
``small`` (3 classes x 2 images: kill/resume and the CLI) and ``tiny`` (2 x 2 images, 14x14).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io as sio
import torch

from crest.cli import extract_cmd
from crest.data.backbone import build_backbone
from crest.data.extraction.images import read_image_list, resolve_image_path
from crest.data.extraction.run import build_benchmark, extract_benchmark
from crest.data.extraction.settings import ExtractSettings
from crest.data.extraction.writer import create_partial, to_storage
from crest.data.schema.hdf5 import REQUIRED_KEYS, read_benchmark
from crest.errors import ConfigError, DataError
from helpers_images import NAME, PREFIX, ToyDataset, make_toy_dataset, write_res101_mat

CREST = str(Path(sys.executable).with_name("crest"))
FAST = {"weights": "none", "workers": 0}
SMALL_SETTINGS = ExtractSettings(size=224, batch_size=2, **FAST)


def extract(toy: ToyDataset, out: Path, settings: ExtractSettings, **kw) -> Path:
    kw.setdefault("remap", [toy.remap])
    return extract_benchmark(
        kw.pop("images", toy.images_csv),
        toy.xlsa17,
        out,
        settings=settings,
        attributes=toy.attributes,
        progress=False,
        **kw,
    )


def features(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return np.asarray(f["feature_map"][()])


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> ToyDataset:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), classes=12, unseen=3, per_class=2)


@pytest.fixture(scope="module")
def toy224(toy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "toy224.h5"
    return extract(toy, out, ExtractSettings(size=224, batch_size=8, **FAST))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> ToyDataset:
    return make_toy_dataset(tmp_path_factory.mktemp("small"), classes=3, unseen=1, per_class=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> ToyDataset:
    return make_toy_dataset(tmp_path_factory.mktemp("tiny"), classes=2, unseen=1, per_class=2)


@pytest.fixture(scope="module")
def small224(small, tmp_path_factory) -> Path:
    """The uninterrupted reference run of ``small`` (batch size 2, as the killed run)."""
    return extract(small, tmp_path_factory.mktemp("ref") / "small.h5", SMALL_SETTINGS)


# ---- the output file ------------------------------------------------------------------------


def test_224_output_is_a_benchmark_file(toy, toy224):
    bench = read_benchmark(toy224)
    n = len(toy.entries)
    assert bench.feature_shape == (2048, 7, 7) and bench.num_images == n
    assert bench.feature_dtype == "float32"
    np.testing.assert_array_equal(bench.labels, toy.labels - 1)
    assert bench.image_files == toy.entries
    assert bench.class_names[0] == "001.class_0"
    assert bench.attribute_names[0] == "has_part_0::value_0"
    assert len(bench.seen_classes) == 9 and len(bench.unseen_classes) == 3
    assert bench.has_val_split  # clean train/val written, test_seen removed from them
    assert not np.intersect1d(bench.splits["val"], bench.splits["test_seen"]).size
    assert bench.meta["source"] == "extract" and bench.meta["features_real"] is False
    assert bench.meta["backbone"] == "resnet101" and bench.meta["image_size"] == 224
    assert bench.meta["grid"] == [7, 7] and bench.meta["weights"] == "none"
    with h5py.File(toy224, "r") as f:
        assert all(k in f for k in REQUIRED_KEYS)
        assert f["feature_map"].shape == (n, 2048, 7, 7)
        assert f["labels"].dtype == np.int64 and f["trainval_loc"].dtype == np.int64
        assert h5py.check_string_dtype(f["class_names"].dtype).encoding == "utf-8"
        mat = sio.loadmat(toy.xlsa17 / "att_splits.mat")
        np.testing.assert_allclose(f["att"][()], mat["att"].T, rtol=1e-6)  # C x A
        np.testing.assert_allclose(f["original_att"][()], mat["original_att"].T, rtol=1e-6)
        np.testing.assert_array_equal(f["test_unseen_loc"][()], mat["test_unseen_loc"].ravel() - 1)
        np.testing.assert_allclose(
            f["w2v_att"][()], np.load(toy.attributes / f"{NAME}_attribute.npy"), rtol=1e-6
        )
        fmap = f["feature_map"][()]
    assert np.isfinite(fmap).all() and (fmap >= 0).all() and fmap.std() > 0  # after ReLU
    assert not np.array_equal(fmap[0], fmap[1])


def test_data_info_reads_the_output(toy224):
    res = subprocess.run(
        [CREST, "data", "info", str(toy224)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "2048 channels on a 7x7 grid (49 regions), float32" in res.stdout
    assert "source      extract (features are not real image features)" in res.stdout


def test_448_gives_a_14x14_grid_through_the_cli_parser(tiny, tmp_path):
    """The `extract` subparser in a stand-in `crest data` parser."""
    parser = argparse.ArgumentParser()
    extract_cmd.register(parser.add_subparsers(dest="data_command", required=True))
    out = tmp_path / "tiny448.h5"
    args = parser.parse_args(
        [
            "extract",
            "--xlsa17",
            str(tiny.xlsa17),
            "--attributes",
            str(tiny.attributes.parent),  # the attributes root works too
            "--remap",
            tiny.remap,
            "--weights",
            "none",
            "--seed",
            "3",
            "--batch-size",
            "4",
            "--workers",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert args.size == 448
    assert args.func(args) == 0
    bench = read_benchmark(out)
    assert bench.feature_shape == (2048, 14, 14) and bench.feature_dtype == "float32"
    assert bench.meta["grid"] == [14, 14] and bench.meta["weights_seed"] == 3
    assert bench.meta["features_real"] is False
    assert np.isfinite(features(out)).all()


def test_idempotent_rerun_and_changed_settings(toy, toy224, tmp_path):
    before = toy224.stat().st_mtime_ns
    assert extract(toy, toy224, ExtractSettings(size=224, batch_size=8, **FAST)) == toy224
    assert toy224.stat().st_mtime_ns == before
    with pytest.raises(DataError, match=r"dtype 'float32' → 'float16'.*--overwrite"):
        extract(toy, toy224, ExtractSettings(size=224, dtype="float16", **FAST))
    # a partial of other settings is refused, not silently mixed with new rows
    other = tmp_path / "other.h5"
    shutil.copy(toy224, tmp_path / "other.h5.partial")
    with pytest.raises(DataError, match=r"unfinished extraction.*seed 0 → 5.*--restart"):
        extract(toy, other, ExtractSettings(size=224, seed=5, **FAST))
    # a complete partial of the same settings is just renamed
    extract(toy, other, ExtractSettings(size=224, **FAST))
    assert other.exists() and not (tmp_path / "other.h5.partial").exists()


def test_float16_storage(small, tmp_path):
    """float16 files are preallocated as such; values beyond float16 are an error, never inf."""
    images = read_image_list(small.images_csv)
    bench = build_benchmark(
        images, small.xlsa17, ExtractSettings(dtype="float16"), attributes=small.attributes
    )
    create_partial(tmp_path / "half.h5.partial", bench, {"source": "extract"})
    with h5py.File(tmp_path / "half.h5.partial", "r") as f:
        assert f["feature_map"].dtype == np.float16 and int(f.attrs["rows_done"]) == 0
        assert f["feature_map"].shape == (len(small.entries), 2048, 14, 14)
    stored = to_storage(torch.full((1, 2048, 7, 7), 3.5), "float16", tmp_path)
    assert stored.dtype == np.float16 and float(stored.max()) == 3.5
    # random weights reach 1e5: beyond float16
    with pytest.raises(DataError, match=r"features up to 1e\+05 do not fit float16"):
        to_storage(torch.full((1, 4), 1e5), "float16", tmp_path)


# ---- train on it ------------------------------------------------------------------------------


def test_one_training_epoch_on_extracted_features(toy224, tmp_path):
    from crest.config import load_config
    from crest.engine.train import train

    cfg = load_config(
        None,
        [
            f"data.path={toy224}",
            "train.epochs=1",
            "model.d=16",
            "model.d_ff=32",
            "model.bank_size=8",
            "model.bank_dim=4",
            "train.batch_size=8",
        ],
    )
    train(cfg, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics


# ---- kill and resume --------------------------------------------------------------------------


def _rows_done(partial: Path) -> int | None:
    try:
        with h5py.File(partial, "r", locking=False) as f:
            return int(f.attrs["rows_done"])
    except (OSError, KeyError):
        return None


def test_killed_run_resumes_to_identical_features(small, small224, tmp_path):
    out = tmp_path / "killed.h5"
    partial = tmp_path / "killed.h5.partial"
    code = textwrap.dedent(
        f"""
        from crest.data.extraction.run import extract_benchmark
        from crest.data.extraction.settings import ExtractSettings
        extract_benchmark({str(small.images_csv)!r}, {str(small.xlsa17)!r}, {str(out)!r},
            settings=ExtractSettings(size=224, batch_size=2, weights="none", workers=0),
            attributes={str(small.attributes)!r}, remap=[{small.remap!r}], progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    n = len(small.entries)
    done = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = _rows_done(partial) if partial.exists() else None
            if done:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert done is not None and 0 < done < n
    assert not out.exists()
    with h5py.File(partial, "r") as f:  # still a valid HDF5 file
        killed_at = int(f.attrs["rows_done"])
        assert 0 < killed_at < n and f["feature_map"].shape == (n, 2048, 7, 7)
    extract(small, out, SMALL_SETTINGS)
    assert out.exists() and not partial.exists()
    assert read_benchmark(out).num_images == n
    assert np.array_equal(features(out), features(small224))


# ---- the real command line ----------------------------------------------------------------------


def test_python_m_crest_data_extract_from_res101_mat(tiny, tmp_path):
    """Needs `extract` registered under `crest data` (crest.cli.data_cmds.register)."""
    mat = write_res101_mat(tmp_path / "res101.mat", tiny.entries, tiny.labels)
    out = tmp_path / "cli.h5"
    cmd = [sys.executable, "-m", "crest", "data", "extract", "--images", str(mat)]
    cmd += ["--xlsa17", str(tiny.xlsa17), "--attributes", str(tiny.attributes)]
    cmd += ["--remap", tiny.remap, "--size", "224", "--weights", "none", "--workers", "0"]
    cmd += ["--batch-size", "4", "--no-progress", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "7x7 grid" in res.stdout and "not real image features" in res.stdout
    bench = read_benchmark(out)
    assert bench.image_files == tiny.entries and bench.meta["image_list"] == str(mat)
    assert features(out).shape == (4, 2048, 7, 7)


# ---- bad inputs (all caught before the model is built) ------------------------------------------


@pytest.fixture
def scratch(tmp_path) -> ToyDataset:
    return make_toy_dataset(tmp_path / "bad", classes=4, unseen=1, per_class=2)


def test_missing_image_names_the_first_missing_file(scratch, tmp_path):
    gone = scratch.images / scratch.entries[3].removeprefix(PREFIX + "/")
    gone.unlink()
    (scratch.images / scratch.entries[5].removeprefix(PREFIX + "/")).unlink()
    with pytest.raises(DataError) as err:
        extract(scratch, tmp_path / "o.h5", SMALL_SETTINGS)
    assert err.value.path == gone
    assert "image file not found (row 4" in str(err.value) and "2 of 8 images missing" in str(
        err.value
    )
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.h5.partial").exists()


def test_unmapped_prefix_hints_at_the_options(scratch, tmp_path):
    with pytest.raises(DataError, match=r"/original/server/path.*--image-root DIR"):
        extract(scratch, tmp_path / "o.h5", SMALL_SETTINGS, remap=[])


def test_list_with_a_different_image_count_is_refused(scratch, tmp_path):
    lines = scratch.images_csv.read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=r"7 images listed, but .*att_splits.mat indexes 8"):
        extract(scratch, tmp_path / "o.h5", SMALL_SETTINGS, images=short)


def test_list_with_labels_out_of_range_or_reordered_is_refused(scratch, tmp_path):
    lines = scratch.images_csv.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:-1], lines[-1].rsplit(",", 1)[0] + ",9"]) + "\n")
    with pytest.raises(DataError, match=r"row 8 has label 9; expected 1-based labels in \[1, 4\]"):
        extract(scratch, tmp_path / "o.h5", SMALL_SETTINGS, images=bad)
    swapped = [lines[0], lines[3], lines[2], lines[1], *lines[4:]]  # rows 1 and 3 swap classes
    bad.write_text("\n".join(swapped) + "\n")
    with pytest.raises(DataError, match=r"row 1 has label 2 but the images.csv"):
        extract(scratch, tmp_path / "o.h5", SMALL_SETTINGS, images=bad)


def test_unreadable_image_is_named(scratch, tmp_path):
    broken = scratch.images / scratch.entries[0].removeprefix(PREFIX + "/")
    broken.write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read image") as err:
        extract(scratch, tmp_path / "o.h5", SMALL_SETTINGS)
    assert err.value.path == broken
    assert not (tmp_path / "o.h5").exists()
    with h5py.File(tmp_path / "o.h5.partial", "r") as f:  # an error mid-run leaves it valid
        assert int(f.attrs["rows_done"]) == 0


def test_bad_options_are_config_errors(scratch, tmp_path):
    for settings in (
        ExtractSettings(size=300, **FAST),
        ExtractSettings(dtype="int8", **FAST),
    ):
        with pytest.raises(ConfigError):
            extract(scratch, tmp_path / "o.h5", settings)
    with pytest.raises(ConfigError, match="OLD=NEW"):
        extract(scratch, tmp_path / "o.h5", SMALL_SETTINGS, remap=["no-equals-sign"])
    with pytest.raises(DataError, match="file not found; expected imagenet"):
        extract(scratch, tmp_path / "o.h5", ExtractSettings(weights=str(tmp_path / "nope.pt")))


# ---- pieces -------------------------------------------------------------------------------------


def test_res101_mat_and_images_csv_read_alike(small, tmp_path):
    mat = read_image_list(write_res101_mat(tmp_path / "res101.mat", small.entries, small.labels))
    csv = read_image_list(small.images_csv)
    assert mat.entries == csv.entries == small.entries
    np.testing.assert_array_equal(mat.labels, csv.labels)
    np.testing.assert_array_equal(csv.labels, small.labels - 1)


def test_path_resolution():
    remap = [("/srv/old/", "/data/new/"), ("/srv/", "/other/")]
    assert resolve_image_path("/srv/old/a/b.jpg", None, remap) == Path("/data/new/a/b.jpg")
    assert resolve_image_path("/srv/x.jpg", Path("/r"), remap) == Path("/other/x.jpg")
    assert resolve_image_path("CUB/x.jpg", Path("/r"), remap) == Path("/r/CUB/x.jpg")
    assert resolve_image_path("AWA2//JPEG/x.jpg", Path("/r"), []) == Path("/r/AWA2/JPEG/x.jpg")


def test_weights_from_a_state_dict_file(tmp_path):
    import torchvision

    torch.manual_seed(5)
    state = torchvision.models.resnet101(weights=None).state_dict()
    path = tmp_path / "r101.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    trunk = build_backbone(str(path), seed=0)
    assert torch.equal(trunk[0].weight, state["conv1.weight"])
    assert torch.equal(trunk[0].weight, build_backbone("none", seed=5)[0].weight)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(DataError, match="not a torchvision ResNet-101 state_dict"):
        build_backbone(str(tmp_path / "wrong.pt"), seed=0)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable torch file"):
        build_backbone(str(tmp_path / "junk.pt"), seed=0)


def test_name_is_the_xlsa17_folder(toy224):
    assert read_benchmark(toy224).meta["dataset"] == NAME


def test_word_vectors_without_an_attributes_folder(small, tmp_path, monkeypatch):
    images = read_image_list(small.images_csv)
    npy = small.attributes / f"{NAME}_attribute.npy"
    bench = build_benchmark(images, small.xlsa17, ExtractSettings(size=224), w2v=npy)
    assert bench.w2v_att.shape == (small.num_attributes, 8)
    assert bench.attribute_names[0] == "attribute_0" and bench.feature_shape == (2048, 7, 7)
    monkeypatch.setenv("CREST_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"no attributes folder; pass --attributes DIR"):
        build_benchmark(images, small.xlsa17, ExtractSettings())
