"""Looking inside a run: localization score, figures, report, ablation and sweep groups."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL_MODEL
from crest.config import load_config
from crest.data.synthetic.generator import WorldSpec, generate_default_world
from crest.engine.train import train
from crest.explain.localization import localization_score

CREST = str(Path(sys.executable).with_name("crest"))
SMALL = [
    *SMALL_MODEL,
    "train.batch_size=16",
    "train.lr=0.003",
    "loss.ce_over=all",
]
PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 1000


def test_localization_by_hand():
    # 1 image, 2 attributes on parts 0 and 1, 4 regions; part 0 = regions {0, 1}, part 1 = region {3}
    masks = np.array([[[1, 1, 0, 0], [0, 0, 0, 1]]], dtype=bool)
    attention = np.array([[[0.1, 0.6, 0.2, 0.1], [0.5, 0.1, 0.1, 0.3]]])
    present = np.array([[True, True]])
    loc = localization_score(attention, present, masks, np.array([0, 1]))
    assert loc.score == 0.5  # attribute 0 hits (region 1), attribute 1 misses (region 0)
    assert loc.uniform == pytest.approx((2 / 4 + 1 / 4) / 2)
    absent = localization_score(attention, np.array([[True, False]]), masks, np.array([0, 1]))
    assert absent.score == 1.0 and absent.pairs == 1


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    spec = WorldSpec(
        seed=2,
        classes=14,
        unseen=4,
        val_classes=2,
        parts=3,
        values=4,
        families=3,
        images_min=14,
        images_max=18,
        grid=4,
        feature_dim=16,
        word_dim=20,
    )
    world = generate_default_world(tmp_path_factory.mktemp("w") / "w.h5", spec)
    run = tmp_path_factory.mktemp("runs") / "run"
    train(load_config(None, [f"data.path={world}", "train.epochs=3", *SMALL]), run)
    return world, run


def test_explain_writes_figures_numbers_and_report(trained_run):
    _, run = trained_run
    res = subprocess.run(
        [CREST, "explain", str(run), "--images", "2", "--top-k", "3"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    expected = {
        "attention_maps",
        "gamma_curve",
        "reliability",
        "accuracy_coverage",
        "vacuity_density",
        "reliability_p_unseen",
        "p_unseen",
        "risk_coverage",
        "tsne",
        "branch_curves",
    }
    found = {p.stem for p in (run / "figures").glob("*.png")}
    assert expected <= found
    assert all(is_png(p) for p in (run / "figures").glob("*.png"))
    report = (run / "report.md").read_text()
    for name in expected:
        assert f"](figures/{name}.png)" in report
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("czsl_acc", "gzsl_u", "gzsl_s", "gzsl_h"):
        assert f"{100 * metrics[key]:.1f}" in report
    assert "How the epoch and γ were chosen:" in report
    loc = metrics["localization"]
    assert 0 <= loc["uniform_reference"] < 1 and loc["pairs"] > 0
    assert re.search(r"localization: attention [\d.]+%\s+uniform reference", res.stdout)
    assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["auroc_unseen"] <= 1
    assert 0 <= metrics["auroc_error"] <= 1 and 0 <= metrics["aurc"] <= 1
    assert 0 <= metrics["ece_p_unseen"] <= 1 and 0 <= metrics["auroc_unseen_vacuity"] <= 1
    assert "confidence: AUROC, wrong vs. right GZSL decisions" in report
    assert "p_unseen: AUROC, unseen vs. seen test images" in report
    assert "uncertainty" not in metrics and "uncertainty_seen" not in metrics


def test_ablate_table_and_resume(trained_run, tmp_path):
    world, _ = trained_run
    args = [
        CREST,
        "ablate",
        "--rows",
        "full",
        "no_vgt",
        "--seeds",
        "0",
        "1",
        "--out",
        str(tmp_path / "abl"),
    ]
    for item in [f"data.path={world}", "train.epochs=1", *SMALL]:
        args += ["--set", item]
    res = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    table = (tmp_path / "abl" / "table.md").read_text()
    assert re.search(r"\| full \| 2 \| [\d.]+ ± [\d.]+ \|", table) and "| no_vgt | 2 |" in table
    stamp = (tmp_path / "abl" / "full" / "seed0" / "metrics.json").stat().st_mtime_ns
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("|") > 0
    assert (
        tmp_path / "abl" / "full" / "seed0" / "metrics.json"
    ).stat().st_mtime_ns == stamp  # not rerun


def test_sweep_plot(trained_run, tmp_path):
    world, _ = trained_run
    args = [
        CREST,
        "sweep",
        "--param",
        "loss.lambda_cal",
        "--values",
        "0",
        "0.2",
        "--out",
        str(tmp_path / "sw"),
    ]
    for item in [f"data.path={world}", "train.epochs=1", *SMALL]:
        args += ["--set", item]
    res = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    folder = tmp_path / "sw" / "loss.lambda_cal"
    assert is_png(folder / "sweep.png")
    assert "![sweep](sweep.png)" in (folder / "report.md").read_text()
