"""``train.ema_decay``: the averaged weights are what a run evaluates, keeps and reports, and a
resumed run goes on with both the weights and their average exactly."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import SMALL_MODEL, tiny_crest
from crest.cli import main
from crest.engine.checkpoint import load_checkpoint
from crest.engine.weight_average import WeightAverage


def test_the_average_follows_the_formula_and_copies_buffers():
    model = tiny_crest()
    average = WeightAverage(model, decay=0.5)
    start = [p.detach().clone() for p in average.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average.update(model)  # n = 1: d = min(0.5, 2/11)
    d = 2.0 / 11.0
    for kept, s, p in zip(average.module.parameters(), start, model.parameters(), strict=True):
        torch.testing.assert_close(kept, d * s + (1 - d) * p.detach())
        assert not kept.requires_grad
    for kept, current in zip(average.module.buffers(), model.buffers(), strict=True):
        assert torch.equal(kept, current)
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(model, decay=1.0)


def _train(world, run, *extra):
    args = [f"data.path={world}", *SMALL_MODEL, "train.batch_size=8", "train.ema_decay=0.9"]
    sets = [a for item in [*args, *extra] for a in ("--set", item)]
    return main(["train", *sets, "--deterministic", "--out", str(run)])


def test_a_run_reports_the_average_and_resumes_it_exactly(train_world, tmp_path, capsys):
    full = tmp_path / "full"
    assert _train(train_world, full, "train.epochs=2") == 0
    capsys.readouterr()
    state = load_checkpoint(full / "checkpoints" / "last.pt")
    assert state["weight_average"]["updates"] > 0
    trained, averaged = state["trained_model"], state["model"]
    assert any(not torch.equal(trained[k], averaged[k]) for k in averaged)
    # the reported numbers are those of the averaged weights (crest eval scores "model")
    metrics = json.loads((full / "metrics.json").read_text())
    assert main(["eval", str(full / "checkpoints" / "last.pt"), "--json"]) == 0
    out = capsys.readouterr().out
    got = json.loads(out[out.index("{") :])
    for key in ("czsl_acc", "gzsl_h"):
        assert got[key] == pytest.approx(metrics[key], abs=1e-9)
    # one epoch, then resumed to two: the same run as two epochs at once
    part = tmp_path / "part"
    assert _train(train_world, part, "train.epochs=1") == 0
    resumed = ["train", "--resume", "--out", str(part), "--set", "train.epochs=2"]
    assert main(resumed) == 0
    again = load_checkpoint(part / "checkpoints" / "last.pt")
    assert again["weight_average"] == state["weight_average"]
    for k in averaged:
        assert torch.equal(again["model"][k], averaged[k]), k
        assert torch.equal(again["trained_model"][k], trained[k]), k
    assert json.loads((part / "metrics.json").read_text())["gzsl_h"] == metrics["gzsl_h"]
