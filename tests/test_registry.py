"""Every registered model through the same doors: build, train, resume bit-identically, evaluate,
export, predict with the training file gone, explain (attention figures only where it has them).
Adding a model to the registry adds it here."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import crest
from conftest import SMALL_MODEL, TINY
from crest.config import load_config
from crest.data.synthetic.generator import generate_default_world
from crest.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from crest.engine.evaluate import evaluate_checkpoint
from crest.engine.export import export_state
from crest.engine.selection import best_entry, improves, oracle_score
from crest.engine.train import train
from crest.errors import DataError
from crest.models import ArrayInputs, ModelOutput, ZSLModel, create_loss, create_model
from crest.models.registry import REGISTRY, recipe

MODELS = list(REGISTRY)
SMALL = [*SMALL_MODEL, "train.batch_size=16", "eval.batch_size=64", "train.lr=0.003"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    spec = replace(TINY, seed=5, images_min=10, images_max=12, grid=3)
    return generate_default_world(tmp_path_factory.mktemp("reg") / "world.h5", spec)


def _cfg(model: str, world: Path, *extra: str):
    return load_config(
        "synthetic", [*recipe(model, "synthetic"), f"data.path={world}", *SMALL, *extra]
    )


@pytest.mark.parametrize("name", MODELS)
def test_every_model_fills_the_contract_forward_and_backward(name: str) -> None:
    rng = np.random.default_rng(0)
    inputs = ArrayInputs(8, rng.normal(size=(6, 10)), np.abs(rng.normal(size=(5, 6))), grid=(2, 3))
    cfg = _cfg(name, Path("unused.h5"))
    torch.manual_seed(0)
    model = create_model(cfg, inputs)
    assert isinstance(model, ZSLModel) and model.name == name
    x = torch.randn(4, 8, 2, 3)
    out = model(x)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (4, 5) and out.embedding.shape == (4, 6)
    for branch in out.branches.values():
        assert branch.shape == (4, 5)
    loss_fn = create_loss(cfg, torch.tensor([0, 1, 2]), torch.tensor([3, 4]))
    total, terms = loss_fn(out, torch.tensor([0, 1, 2, 0]), 0)
    assert torch.isfinite(total) and terms
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # new classes at prediction time, and attention where the model has it
    model.eval()
    with torch.no_grad():
        other = model(x, class_matrix=torch.rand(7, 6), return_attention=True)
    assert other.logits.shape == (4, 7)
    if other.attention is not None:
        assert other.attention.shape == (4, 6, 6) and other.attention_scores is not None
        assert other.attention_scores.shape == (4, 6)
    else:
        assert not type(model).has_attention or name == "crest"


@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_resumes_evaluates_exports_and_predicts(name, world, tmp_path):
    # a copy of the world, deleted after training: nothing below may need it
    data = tmp_path / "train.h5"
    shutil.copy(world, data)
    cfg = _cfg(name, data, "train.epochs=2", "train.selection=test-oracle", "train.seed=1")
    run = tmp_path / "run"
    metrics = train(cfg, run)
    assert metrics["selection"] == "test-oracle" and 0 <= metrics["gzsl_h"] <= 1
    oracle = load_checkpoint(run / "checkpoints" / "best_h_test_oracle.pt")
    assert oracle["epoch"] == metrics["epoch"]
    assert oracle["config"]["model"]["name"] == name and "class_side" in oracle

    # resume: one epoch, then on to two, bit-identical to two in one go
    cut = tmp_path / "cut"
    train(_cfg(name, data, "train.epochs=1", "train.selection=test-oracle", "train.seed=1"), cut)
    resumed = train(
        _cfg(name, data, "train.epochs=2", "train.selection=test-oracle", "train.seed=1"),
        cut,
        resume=True,
    )
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt")["model"] for r in (run, cut))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["gzsl_h"] == metrics["gzsl_h"]

    # evaluate reproduces the run's numbers
    last = run / "checkpoints" / "last.pt"
    ev = evaluate_checkpoint(last, device="cpu")
    final = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()][
        -1
    ]
    assert ev["gzsl_h"] == pytest.approx(final["gzsl_h"], abs=1e-9)

    # the training file goes away: export, predict, evaluate and explain with another copy
    export = export_state(load_checkpoint(last), tmp_path / "export")
    keep = tmp_path / "elsewhere.h5"
    shutil.move(data, keep)
    with h5py.File(keep) as f:
        rows = np.sort(f["test_unseen_loc"][()][:5])
        x = f["feature_map"][rows]
    for source in (last, export):
        predictor = crest.load(source, device="cpu")
        pred = predictor.predict(x)
        assert len(pred.top) == 5 and np.isfinite(pred.confidence).all()
        assert predictor.class_names and predictor.attribute_names
        assert np.isnan(pred.vacuity).all() == (name != "crest")
    with pytest.raises(DataError, match="pass --data"):
        evaluate_checkpoint(export, device="cpu")
    assert evaluate_checkpoint(export, data=keep, device="cpu")["gzsl_h"] == pytest.approx(
        final["gzsl_h"], abs=1e-9
    )
    from crest.explain.run import explain_run

    numbers = explain_run(run, data=keep, images=2, localization_images=4, tsne_classes=2)
    has_attention = (run / "figures" / "attention_maps.png").exists()
    assert has_attention == create_model(cfg, load_model(last, data=keep).bench).has_attention
    assert ("attention" in numbers) != has_attention


def test_a_checkpoint_saved_before_class_sides_still_loads(world, tmp_path):
    run = tmp_path / "run"
    train(_cfg("crest", world, "train.epochs=1", "train.selection=final"), run)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    state.pop("class_side")
    state["config"]["model"].pop("name")  # configs of earlier releases had no model.name
    old = tmp_path / "old.pt"
    save_checkpoint(old, state)
    restored = load_model(old)  # reads its training file, as before
    assert restored.data_path == world and restored.cfg.model.name == "crest"
    assert crest.load(old).class_names == restored.bench.class_names


@pytest.mark.parametrize(
    "h", [[0.3, 0.5, 0.5, 0.4], [0.5, 0.5, 0.5], [0.1, 0.2, 0.2, 0.3, 0.3], [0.4, 0.2, 0.4]]
)
def test_the_kept_checkpoint_and_the_reported_epoch_follow_one_rule_ties_included(h):
    entries = [{"epoch": i + 1, "gzsl_h": v} for i, v in enumerate(h)]
    kept = None
    for i, e in enumerate(entries):  # what the trainer keeps, epoch by epoch
        if improves(e, entries[:i], oracle_score("h")):
            kept = e["epoch"]
    assert kept == best_entry(entries, oracle_score("h"))["epoch"]
    assert kept == min(e["epoch"] for e in entries if e["gzsl_h"] == max(h))
