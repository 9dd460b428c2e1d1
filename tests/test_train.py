"""Training end to end through the real CLI: run folder, checkpoints, resume after a kill, selection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import SMALL_MODEL
from crest.engine.checkpoint import load_checkpoint

CREST = str(Path(sys.executable).with_name("crest"))
SMALL = [
    *SMALL_MODEL,
    "model.dropout=0.1",
    "train.batch_size=16",
    "eval.batch_size=64",
    "train.lr=0.003",
]


def crest(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([CREST, *args], capture_output=True, text=True, timeout=600, **kw)


def sets(world: Path, *extra: str) -> list[str]:
    out = []
    for item in [f"data.path={world}", *SMALL, *extra]:
        out += ["--set", item]
    return out


def test_train_writes_a_complete_run_folder(train_world, tmp_path):
    run = tmp_path / "run"
    res = crest("train", *sets(train_world, "train.epochs=2"), "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert "| CZSL |" in res.stdout and "final epoch (2), no selection; γ fixed at 2" in res.stdout
    for name in ("config.yaml", "env.json", "metrics.jsonl", "metrics.json", "checkpoints/last.pt"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"czsl_acc", "gzsl_u", "gzsl_s", "gzsl_h", "gamma", "selection", "epoch"} <= set(metrics)
    assert metrics["selection"] == "final" and metrics["epoch"] == 2 and metrics["gamma"] == 2.0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [1, 2]
    for e in lines:
        assert {"ce", "sc", "vicl", "digs", "edl", "total"} <= set(e["loss"])
        assert {
            "czsl_acc",
            "gzsl_u",
            "gzsl_s",
            "gzsl_h",
            "vacuity_seen",
            "vacuity_unseen",
        } <= set(e)
    env = json.loads((run / "env.json").read_text())
    assert {"crest_version", "git_commit", "torch_version", "device"} <= set(env)
    state = load_checkpoint(run / "checkpoints" / "last.pt")  # weights_only=True inside
    assert state["epoch"] == 2 and state["config"]["train"]["epochs"] == 2
    assert "train:" in (run / "config.yaml").read_text()
    # crest eval reproduces the run's final numbers from the checkpoint
    ev = crest("eval", str(run / "checkpoints" / "last.pt"), "--json")
    assert ev.returncode == 0, ev.stderr
    got = json.loads(ev.stdout)
    for key in ("czsl_acc", "gzsl_u", "gzsl_s", "gzsl_h"):
        assert got[key] == pytest.approx(metrics[key], abs=1e-9)
    ev0 = crest("eval", str(run / "checkpoints" / "last.pt"), "--gamma", "0")
    assert ev0.returncode == 0 and "γ given on the command line (0)" in ev0.stdout


def test_resume_after_kill_matches_uninterrupted_run(train_world, tmp_path):
    args = sets(train_world, "train.epochs=6", "train.batch_size=8")
    full = tmp_path / "full"
    assert crest("train", *args, "--deterministic", "--out", str(full)).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [CREST, "train", *args, "--deterministic", "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    history = killed / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (
        history.exists() and history.read_text().count("\n") >= 1
    ):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it could be killed"
    done = load_checkpoint(killed / "checkpoints" / "last.pt")["epoch"]
    assert 1 <= done < 6
    res = crest("train", "--resume", "--out", str(killed))
    assert res.returncode == 0, res.stderr
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    for key in ("czsl_acc", "gzsl_u", "gzsl_s", "gzsl_h", "epoch"):
        assert a[key] == b[key], key
    lines = [json.loads(x)["epoch"] for x in history.read_text().splitlines()]
    assert lines == [1, 2, 3, 4, 5, 6]


def test_val_selection_chooses_on_validation_then_retrains(train_world, tmp_path):
    run = tmp_path / "val"
    res = crest(
        "train", *sets(train_world, "train.epochs=3", "train.selection=val"), "--out", str(run)
    )
    assert res.returncode == 0, res.stderr
    chosen = json.loads((run / "val_selection.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["selection"] == "val" and metrics["epoch"] == chosen["val_epoch"]
    assert metrics["gamma"] == pytest.approx(chosen["val_gamma"])
    assert "chosen on the validation classes" in metrics["selection_detail"]
    phases = [json.loads(x)["phase"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert phases == ["val"] * 3 + ["final"] * chosen["val_epoch"]
    val_entries = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][:3]
    assert all(e["eval_split"] == "validation" for e in val_entries)
    # μ is chosen with the epoch and γ on validation; the final model trains with it
    assert all(len(e["mu_curve"]) == 11 for e in val_entries)
    best = max(p["best_gamma_h"] for e in val_entries for p in e["mu_curve"])
    assert chosen["val_h"] == pytest.approx(best)
    assert (
        metrics["mu"] == chosen["val_mu"]
        and f"μ={chosen['val_mu']:g}" in metrics["selection_detail"]
    )
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["score_mu"] == pytest.approx(chosen["val_mu"])
    assert saved["model"]["mu"] == 0.3  # training μ as in the validation phase
    # each direction is scored alone at every evaluation, and the report shows it
    assert set(metrics["branches"]) == {"vgt", "agt"}
    for key in ("auroc_error", "auroc_unseen", "aurc", "ece", "ece_p_unseen", "ece_dirichlet"):
        assert key in metrics
    # the reported opinion was fitted on the validation classes, and the run says so
    opinion = chosen["opinion"]
    assert opinion["source"] == "validation" and opinion["temperature"] > 0
    assert len(opinion["val_confidence"]) == len(opinion["val_correct"]) > 0
    assert "fitted on the validation classes" in metrics["opinion"]
    report = (run / "report.md").read_text()
    assert "VGT alone (s^V)" in report and "confidence: AUROC, wrong vs. right" in report
    assert (
        "T and b fitted on the validation classes" in report
    )  # listed as reported beyond the paper
    best_val = torch.load(run / "checkpoints" / "best_val.pt", weights_only=True)
    assert best_val["epoch"] == chosen["val_epoch"]  # the epoch validation chose


def test_validation_only_stops_before_the_test_split(train_world, tmp_path, monkeypatch):
    from crest.cli import main
    from crest.data.schema.hdf5 import read_benchmark
    from crest.engine.train import Trainer

    cached: list[int] = []  # every row the run reads features of goes through the cache
    original = Trainer._feature_cache

    def recording(self, tasks):
        for t in tasks:
            cached.extend(int(r) for r in [*t.train_rows, *t.eval_seen, *t.eval_unseen])
        return original(self, tasks)

    monkeypatch.setattr(Trainer, "_feature_cache", recording)
    run = tmp_path / "valonly"
    args = sets(train_world, "train.epochs=2", "train.selection=val", "train.validation_only=true")
    assert main(["train", *args, "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    entries = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # only the validation phase ran; what it chose is reported as validation scores
    assert [e["phase"] for e in entries] == ["val", "val"]
    assert all(e["eval_split"] == "validation" for e in entries)
    assert metrics["validation_only"] is True and "gzsl_h" not in metrics
    best = max(entries, key=lambda e: (max(p["best_gamma_h"] for p in e["mu_curve"]), -e["epoch"]))
    point = next(p for p in best["mu_curve"] if p["mu"] == metrics["val_mu"])
    assert metrics["val_epoch"] == best["epoch"]
    assert metrics["val_h"] == pytest.approx(point["best_gamma_h"])
    assert metrics["val_czsl"] == pytest.approx(point["czsl_acc"])  # CZSL at the same μ
    assert "VALIDATION ONLY" in metrics["selection_detail"]
    assert "Validation only" in (run / "report.md").read_text()
    splits = read_benchmark(train_world).splits
    test_rows = {*splits["test_seen"].tolist(), *splits["test_unseen"].tolist()}
    assert cached and not test_rows & set(cached)
    # it has no reported model: explain and export refuse it, naming why
    assert main(["explain", str(run)]) != 0
    assert main(["export", str(run), "--out", str(tmp_path / "exported")]) != 0
    assert not (tmp_path / "exported").exists()
    # and a grid that finds it where a full run was asked for refuses to read it as one
    from crest.config import load_config
    from crest.experiments import run_once

    with pytest.raises(ValueError, match="other kind"):
        run_once(load_config(None, ["train.selection=val"]), run)
    # it needs the validation protocol
    refused = [
        "train",
        *sets(train_world, "train.validation_only=true"),
        "--out",
        str(tmp_path / "x"),
    ]
    assert main(refused) != 0 and not (tmp_path / "x").exists()


@pytest.mark.parametrize("curve", [False, True])
def test_val_reads_the_test_split_once_unless_a_curve_is_asked_for(
    train_world, tmp_path, monkeypatch, curve
):
    import dataclasses

    import crest.engine.train as train_module
    from crest.cli import main

    chosen = train_module.choose_val_setting

    def third_epoch(history, mu):  # validation "chooses" epoch 3, so the final phase has 3
        return dataclasses.replace(chosen(history, mu), epoch=3)

    monkeypatch.setattr(train_module, "choose_val_setting", third_epoch)
    run = tmp_path / "run"
    extra = ("train.epochs=3", "train.selection=val", f"train.test_curve={str(curve).lower()}")
    assert main(["train", *sets(train_world, *extra), "--out", str(run)]) == 0
    entries = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    final = [e for e in entries if e["phase"] == "final"]
    assert [e["epoch"] for e in final] == [1, 2, 3]
    # validation scores every epoch; the test split only after the chosen epoch, or every epoch
    assert all("gzsl_h" in e for e in entries if e["phase"] == "val")
    assert ["gzsl_h" in e for e in final] == [curve, curve, True]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 3 and metrics["gzsl_h"] == final[-1]["gzsl_h"]
    assert ("| final | 1 |" in (run / "report.md").read_text()) == curve


def test_test_oracle_is_labelled(train_world, tmp_path):
    run = tmp_path / "oracle"
    res = crest(
        "train",
        *sets(train_world, "train.epochs=3", "train.selection=test-oracle"),
        "--out",
        str(run),
    )
    assert res.returncode == 0, res.stderr
    assert "TEST-ORACLE" in res.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["selection"] == "test-oracle" and "epoch_czsl" in metrics
    assert (run / "checkpoints" / "best_h_test_oracle.pt").exists()
    history = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics["gzsl_h"] == max(e["gzsl_h"] for e in history)


def test_checkpoint_never_runs_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil(), "config": {}, "epoch": 1}, path)
    from crest.errors import DataError

    with pytest.raises(DataError, match="refused: it holds Python objects"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_compiled_training_trains_and_checkpoints_an_eager_model(train_world, tmp_path):
    """train.compile=true: the step runs through torch.compile, the checkpoint is the plain model.

    The aot_eager backend traces forward and backward graphs as inductor does but generates no
    kernels, which keeps this test to seconds; inductor itself is timed by `crest bench --compile`.
    """
    run = tmp_path / "compiled"
    extra = ("train.epochs=2", "train.compile=true", "train.compile_backend=aot_eager")
    res = crest(
        "train",
        *sets(train_world, *extra),
        "--out",
        str(run),
    )
    assert res.returncode == 0, res.stderr
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["loss"]["total"] < history[0]["loss"]["total"]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert not any(k.startswith("_orig_mod.") for k in ckpt["model"])  # no compile wrapper names
    res = crest("eval", str(run / "checkpoints" / "last.pt"), "--json")
    assert res.returncode == 0, res.stderr
    evaluated = json.loads(res.stdout)
    metrics = json.loads((run / "metrics.json").read_text())
    assert evaluated["czsl_acc"] == pytest.approx(metrics["czsl_acc"], abs=1e-6)
