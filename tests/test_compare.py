"""`crest compare` through the real CLI: models × selections × seeds on one file, a Table-1-shaped
report with val and labelled test-oracle rows, convergence, figures; resumable."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL_MODEL, TINY
from crest.compare import compare_config, epochs_to_reach
from crest.data.synthetic.generator import generate_default_world

CREST = str(Path(sys.executable).with_name("crest"))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    spec = replace(TINY, seed=7, images_min=10, images_max=12, grid=3)
    return generate_default_world(tmp_path_factory.mktemp("cmp") / "world.h5", spec)


def test_compare_writes_a_table_with_val_and_labelled_oracle_rows(world, tmp_path):
    out = tmp_path / "cmp"
    sets = []
    for item in [f"data.path={world}", *SMALL_MODEL, "train.epochs=1", "train.batch_size=16"]:
        sets += ["--set", item]
    args = [
        CREST,
        "compare",
        *sets,
        "--models",
        "dazle",
        "msdn",
        "--seeds",
        "0",
        "--out",
        str(out),
    ]
    res = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    report = (out / "report.md").read_text()
    for model in ("dazle", "msdn"):
        assert f"| {model} | val | 1 |" in report
        assert f"| {model} | test-oracle (best on test: not fair) | 1 |" in report
        for selection in ("val", "test-oracle"):
            assert (out / model / selection / "seed0" / "metrics.json").is_file()
    assert "## What best-on-test selection adds to H" in report
    assert "epochs to 95 % of final H" in report
    for figure in ("h_over_epochs.png", "seen_unseen.png"):
        assert (out / "figures" / figure).stat().st_size > 0
    # resumable: a second call trains nothing and gives the same table
    done = out / "dazle" / "val" / "seed0" / "metrics.json"
    stamp = done.stat().st_mtime_ns
    again = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert done.stat().st_mtime_ns == stamp
    assert (out / "table.md").read_text().strip() in again.stdout


def test_compare_applies_each_models_recipe_for_the_dataset_then_the_users_overrides():
    cfg = compare_config("cub", "dazle", "val", 2, ["train.lr=0.5"])
    assert cfg.model.name == "dazle" and cfg.train.optimizer == "rmsprop"
    assert cfg.train.lr == 0.5 and cfg.train.seed == 2 and cfg.train.selection == "val"
    crest_cfg = compare_config("cub", "crest", "test-oracle", 0, [])
    assert crest_cfg.model.name == "crest" and crest_cfg.train.optimizer == "adam"
    assert crest_cfg.train.selection == "test-oracle"
    # a -paper config takes the same peers' recipes as its dataset
    paper = compare_config("cub-paper", "dazle", "val", 0, [])
    assert paper.train.optimizer == "rmsprop" and paper.name == "cub-paper"


def test_compare_refuses_validation_only_runs(tmp_path):
    from crest.compare import compare

    with pytest.raises(ValueError, match="validation_only"):
        compare(None, ["dazle"], tmp_path, [0], ["train.validation_only=true"])
    assert not any(tmp_path.iterdir())


def test_epochs_to_reach_95_percent_of_final_h():
    assert epochs_to_reach(np.array([0.1, 0.5, 0.9, 0.96, 1.0])) == 4
    assert epochs_to_reach(np.array([0.2, 0.2])) == 1
