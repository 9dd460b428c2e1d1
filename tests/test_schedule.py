"""train.warmup_steps and train.patience: the rate each step trains with, and where a phase stops."""

from __future__ import annotations

import json

import pytest
import torch

from crest.cli import main
from crest.config import load_config
from crest.engine.optimizers import warmup_factor
from crest.engine.selection import epochs_without_improvement, val_score
from crest.errors import ConfigError
from test_train import sets


def test_warmup_factor_rises_linearly_then_stays():
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_training_steps_follow_the_warmup_across_epochs(train_world, tmp_path, monkeypatch):
    rates: list[float] = []
    original = torch.optim.Adam.step

    def recording(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording)
    args = sets(
        train_world,
        "train.epochs=2",
        "train.max_steps_per_epoch=3",
        "train.batch_size=8",
        "train.warmup_steps=4",
    )
    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 0
    lr = 0.003  # test_train's SMALL recipe
    # epoch 2 goes on with the schedule where epoch 1 left it
    assert rates == pytest.approx([lr / 4, lr / 2, 3 * lr / 4, lr, lr, lr])


def _history(run) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_patience_stops_the_validation_phase_and_compare_reads_where(train_world, tmp_path):
    # a rate of 1e-12 leaves the model as it started: validation H never improves after
    # epoch 1, so patience 2 stops the validation phase at epoch 3 of 8
    run = tmp_path / "val"
    args = sets(
        train_world,
        "train.epochs=8",
        "train.lr=1e-12",
        "train.selection=val",
        "train.patience=2",
    )
    assert main(["train", *args, "--out", str(run)]) == 0
    phases = [e["phase"] for e in _history(run)]
    metrics = json.loads((run / "metrics.json").read_text())
    assert phases == ["val"] * 3 + ["final"] * metrics["epoch"]
    assert metrics["epochs_trained"] == {"val": 3, "final": metrics["epoch"]}

    from crest.compare import CompareRun, stopped_epoch

    row = CompareRun("crest", "val", 0, run, metrics, _history(run), 0, 0.0)
    assert stopped_epoch(row) == 3


def test_patience_under_test_oracle_stops_the_final_phase(train_world, tmp_path):
    run = tmp_path / "oracle"
    args = sets(
        train_world,
        "train.epochs=8",
        "train.lr=1e-12",
        "train.selection=test-oracle",
        "train.patience=1",
    )
    assert main(["train", *args, "--out", str(run)]) == 0
    assert [e["epoch"] for e in _history(run)] == [1, 2]
    assert json.loads((run / "metrics.json").read_text())["epochs_trained"] == {"final": 2}


def test_patience_counts_epochs_since_the_best_one_ties_to_the_earlier():
    def entry(epoch, h):
        return {"phase": "val", "epoch": epoch, "czsl_acc": 0.5, "best_gamma_h": h}

    history = [entry(1, 0.2), entry(2, 0.4), entry(3, 0.4), entry(4, 0.3)]
    assert epochs_without_improvement(history, "val", val_score) == 2
    assert epochs_without_improvement(history[:2], "val", val_score) == 0
    assert epochs_without_improvement([], "val", val_score) == 0


def test_patience_needs_a_selection_score():
    with pytest.raises(ConfigError, match=r"train\.patience"):
        load_config(None, ["train.patience=3"])  # selection final has nothing to watch
    with pytest.raises(ConfigError, match=r"train\.warmup_steps"):
        load_config(None, ["train.warmup_steps=-1"])


def test_compare_with_patience_reports_where_each_run_stopped(train_world, tmp_path, capsys):
    out = tmp_path / "compare"
    args = [
        "compare",
        "--models",
        "dazle",
        "--seeds",
        "0",
        "--selections",
        "val",
        "--patience",
        "1",
        "--set",
        f"data.path={train_world}",
        "--set",
        "train.epochs=6",
        "--set",
        "train.lr=1e-12",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    table = (out / "table.md").read_text()
    assert "stopped at epoch" in table
    row = next(line for line in table.splitlines() if line.startswith("| dazle"))
    assert row.rstrip(" |").endswith("| 2")  # the validation phase stopped at epoch 2 of 6


def test_phase_batch_shrinks_only_where_an_epoch_would_be_too_short():
    from crest.engine.distributed import phase_batch

    assert phase_batch(32, 697, 0, 1) == 32  # off
    assert phase_batch(32, 697, 40, 1) == 17  # like AWA2's validation task: 41 steps, not 21
    assert phase_batch(32, 1279, 40, 1) == 31
    assert phase_batch(32, 7057, 40, 1) == 32  # a real-scale phase keeps its batch
    assert phase_batch(32, 697, 40, 2) == 16  # a multiple of the ranks
    assert phase_batch(32, 10, 40, 2) == 2  # at least one sample a rank


def test_min_steps_per_epoch_gives_every_epoch_its_steps(train_world, tmp_path, monkeypatch):
    steps = 0
    original = torch.optim.Adam.step

    def counting(self, *args, **kwargs):
        nonlocal steps
        steps += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counting)
    args = sets(train_world, "train.epochs=1", "train.batch_size=64", "train.min_steps_per_epoch=9")
    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 0
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert rows["selection"] == "final" and steps >= 9  # at batch 64 this world is one or two steps
