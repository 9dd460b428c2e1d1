"""Predicting classes nobody trained on: `crest predict`, the Python API, and bad inputs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import crest
from crest.class_files import read_class_file
from crest.config import load_config
from crest.data.schema.dataset import FeatureDataset
from crest.data.schema.hdf5 import read_benchmark
from crest.data.schema.subset import remove_classes
from crest.data.synthetic.generator import WorldSpec, generate_default_world
from crest.engine.train import train
from crest.errors import DataError

CREST = str(Path(sys.executable).with_name("crest"))


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """A default-style world; a model trained with 3 unseen classes removed from it entirely."""
    tmp = tmp_path_factory.mktemp("predict")
    spec = WorldSpec(
        seed=7,
        classes=20,
        unseen=6,
        val_classes=3,
        images_min=20,
        images_max=26,
        grid=5,
        feature_dim=32,
    )
    world = generate_default_world(tmp / "world.h5", spec)
    full = read_benchmark(world)
    removed = full.unseen_classes[:3].tolist()
    reduced = remove_classes(world, removed, tmp / "reduced.h5")
    cfg = load_config(
        None,
        [
            f"data.path={reduced}",
            "train.epochs=8",
            "model.d=64",
            "model.d_ff=128",
            "model.dropout=0.1",
            "model.mu=0.3",
            "loss.ce_over=all",
            "train.lr=0.002",
            "train.batch_size=32",
        ],
    )
    train(cfg, tmp / "run")
    classes_csv = tmp / "new_classes.csv"
    with classes_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["class", *full.attribute_names])
        for c in removed:
            w.writerow([full.class_names[c], *full.original_att[c].tolist()])
    return world, full, removed, tmp / "run" / "checkpoints" / "last.pt", classes_csv


def test_removed_classes_are_recognised_from_a_class_file(held_out, tmp_path):
    world, full, removed, ckpt, classes_csv = held_out
    rows = np.flatnonzero(np.isin(full.labels, removed))
    out = tmp_path / "pred.json"
    res = subprocess.run(
        [
            CREST,
            "predict",
            str(ckpt),
            "--benchmark",
            str(world),
            "--rows",
            *map(str, rows),
            "--classes",
            str(classes_csv),
            "--json",
            str(out),
            "--csv",
            str(tmp_path / "p.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    records = json.loads(out.read_text())
    top1 = [r["top"][0]["class"] for r in records]
    truth = [full.class_names[c] for c in full.labels[rows]]
    per_class = [
        np.mean([p == t for p, t in zip(top1, truth, strict=True) if t == full.class_names[c]])
        for c in removed
    ]
    accuracy, chance = float(np.mean(per_class)), 1.0 / (full.num_classes)
    # among all 20 classes, the run's γ: well above chance (0.18 and 0.27 with one and two
    # threads, whose sums round differently; chance 0.05)
    assert accuracy > 2.5 * chance, f"accuracy {accuracy:.2f} vs chance {chance:.2f}"
    assert all(len(r["top_attributes"]) == 5 for r in records)
    # ranked among the new classes alone (--replace): the attribute rows alone tell them apart
    alone = tmp_path / "alone.json"
    res = subprocess.run(
        [
            *(CREST, "predict", str(ckpt), "--benchmark", str(world), "--rows", *map(str, rows)),
            *("--classes", str(classes_csv), "--replace", "--json", str(alone)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    among_new = [r["top"][0]["class"] for r in json.loads(alone.read_text())]
    assert set(among_new) <= {full.class_names[c] for c in removed}
    per_new_class = [
        np.mean([p == t for p, t in zip(among_new, truth, strict=True) if t == full.class_names[c]])
        for c in removed
    ]
    assert float(np.mean(per_new_class)) > 1.5 / len(removed)  # 0.62 measured; chance 0.33
    for r in records:  # the three answers, each in its range
        assert 0 <= r["confidence"] <= 1 and 0 <= r["p_unseen"] <= 1 and 0 < r["vacuity"] <= 1
        assert "uncertainty" not in r
    assert (tmp_path / "p.csv").read_text().startswith("input,rank,class,score")

    # the same predictions as evaluating with the classes present (as unseen) in the class matrix
    model = crest.load(ckpt)
    x = FeatureDataset(world, rows, labels=full.labels).read_rows(np.arange(len(rows)))
    z = torch.as_tensor(full.class_matrix())
    with torch.no_grad():
        logits = model.model(torch.as_tensor(x), class_matrix=z).logits.numpy()
    unseen = np.isin(np.arange(full.num_classes), full.unseen_classes)
    expected = [full.class_names[j] for j in np.argmax(logits + model.gamma * unseen, axis=1)]
    assert top1 == expected


def test_python_api(held_out):
    world, full, removed, ckpt, classes_csv = held_out
    model = crest.load(ckpt)
    table = crest.read_class_file(classes_csv, model.attribute_names)
    x = FeatureDataset(world, full.splits["test_seen"][:4], labels=full.labels).read_rows(
        np.arange(4)
    )
    pred = model.predict(x, classes=table, top_k=3)
    assert pred.top.shape == (4, 3) and len(pred.class_names) == full.num_classes
    only_new = model.predict(x, classes=table, mode="replace", top_k=2)
    assert set(only_new.class_names) == {full.class_names[c] for c in removed}
    maps = model.explain(x[:2], top_attributes=3)
    assert maps[0]["attention"].shape == (3, 5, 5) and len(maps[0]["attributes"]) == 3
    with pytest.raises(DataError, match=r"expected \(N, 32, h, w\)"):
        model.predict(np.zeros((2, 31, 5, 5), dtype=np.float32))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "class,{a0},{a1}\nfoo,1,2\n",
            r"expected each of the model's \d+ attributes once \(missing",
        ),
        ("class,{all}\nfoo,{ones}\nbar,{short}\n", r"line 3.: \d+ attribute values; expected"),
        ("class,{all},zzz_unknown\nfoo,{ones},1\n", "unknown attribute name 'zzz_unknown'"),
        ("foo: {a0}; not_an_attribute\n", "line 1.: unknown attribute name .not_an_attribute."),
        ("class,{all}\nfoo,{nan}\n", "class 'foo'.*NaN"),
        ("foo: {a0}\nfoo: {a1}\n", "class 'foo'.*appears twice"),
    ],
)
def test_bad_class_files(held_out, tmp_path, text, message):
    *_, ckpt, _ = held_out
    names = crest.load(ckpt).attribute_names
    a = len(names)
    filled = text.format(
        a0=names[0],
        a1=names[1],
        all=",".join(names),
        ones=",".join(["1"] * a),
        short=",".join(["1"] * (a - 1)),
        nan=",".join(["nan"] + ["1"] * (a - 1)),
    )
    path = tmp_path / "classes.csv"
    path.write_text(filled)
    with pytest.raises(DataError, match=message):
        read_class_file(path, names)


def test_bad_inputs_through_the_cli(held_out, tmp_path):
    *_, ckpt, _ = held_out
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 7, 5, 5), dtype=np.float32))
    res = subprocess.run(
        [CREST, "predict", str(ckpt), "--features", str(bad)], capture_output=True, text=True
    )
    assert (
        res.returncode == 2
        and "bad.npy: field 'features': shape (2, 7, 5, 5); expected (N, 32, h, w)" in res.stderr
    )
    broken = tmp_path / "broken.csv"
    broken.write_text("class,nope\nfoo,1\n")
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((1, 32, 5, 5), dtype=np.float32))
    res = subprocess.run(
        [CREST, "predict", str(ckpt), "--features", str(good), "--classes", str(broken)],
        capture_output=True,
        text=True,
    )
    assert (
        res.returncode == 2
        and "broken.csv: field 'header': unknown attribute name 'nope'" in res.stderr
    )
