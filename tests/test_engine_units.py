"""Engine pieces: samplers, selection labels, bf16 autocast, the run report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crest.config import load_config
from crest.engine.samplers import EpochShuffle, PKBatchSampler
from crest.engine.selection import choose_val_epoch, final_metrics
from crest.engine.train import train


def test_epoch_shuffle_is_seeded_per_epoch_and_sharded():
    s = EpochShuffle(10, seed=3)
    s.set_epoch(1)
    a = list(s)
    s.set_epoch(2)
    b = list(s)
    s.set_epoch(1)
    assert list(s) == a and a != b and sorted(a) == list(range(10))
    shards = []
    for rank in range(3):
        r = EpochShuffle(10, seed=3, rank=rank, world_size=3)
        r.set_epoch(1)
        shards.append(list(r))
    flat = [i for sh in shards for i in sh]
    assert len(flat) == len(set(flat)) == 9 and all(len(sh) == 3 for sh in shards)


def test_pk_sampler_gives_p_classes_of_k_images():
    labels = np.repeat(np.arange(10), 6)
    sampler = PKBatchSampler(labels, batch_size=12, images_per_class=4, seed=0)
    for batch in sampler:
        classes, counts = np.unique(labels[batch], return_counts=True)
        assert len(classes) == 3 and (counts == 4).all()


def _entry(epoch, h, czsl, phase="final", best_h=None, best_gamma=0.0):
    return {
        "phase": phase,
        "epoch": epoch,
        "czsl_acc": czsl,
        "gzsl_u": h,
        "gzsl_s": h,
        "gzsl_h": h,
        "gamma": 2.0,
        "ausuc": 0.1,
        "best_gamma_h": best_h if best_h is not None else h,
        "best_gamma": best_gamma,
    }


def test_selection_labels():
    history = [_entry(1, 0.3, 0.5), _entry(2, 0.5, 0.4), _entry(3, 0.4, 0.45)]
    final = final_metrics(history, "final", 2.0)
    assert (
        final["epoch"] == 3
        and final["gzsl_h"] == 0.4
        and "no selection" in final["selection_detail"]
    )
    oracle = final_metrics(history, "test-oracle", 2.0)
    assert (oracle["epoch"], oracle["epoch_czsl"], oracle["gzsl_h"], oracle["czsl_acc"]) == (
        2,
        1,
        0.5,
        0.5,
    )
    assert oracle["selection_detail"].startswith("TEST-ORACLE")
    val = [_entry(1, 0.2, 0.3, "val", 0.6, 1.5), _entry(2, 0.3, 0.3, "val", 0.5, 0.5)]
    assert choose_val_epoch(val) == (1, 1.5, 0.6)


def _bf16_config(tiny_world):
    return load_config(
        None,
        [
            f"data.path={tiny_world}",
            "train.epochs=1",
            "train.precision=bf16",
            "model.d=16",
            "model.d_ff=32",
            "model.bank_size=8",
            "model.bank_dim=4",
            "train.batch_size=16",
        ],
    )


def test_bf16_autocast_trains_on_cpu(tiny_world, tmp_path, monkeypatch):
    monkeypatch.setenv("CREST_CPU_BF16", "force")  # bf16 even on a CPU without bf16 units
    metrics = train(_bf16_config(tiny_world), tmp_path / "run")
    assert np.isfinite(metrics["czsl_acc"]) and metrics["precision"] == "bf16"
    report = (tmp_path / "run" / "report.md").read_text()
    assert "How the epoch and γ were chosen:" in report and "bf16" in report
    assert f"{100 * metrics['czsl_acc']:.1f}" in report
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["selection"] == "final"


def test_batch_size_must_split_across_ranks():
    from crest.engine.distributed import DistInfo, per_rank_batch

    assert per_rank_batch(64, DistInfo(rank=0, world_size=4)) == 16
    with pytest.raises(ValueError, match="not divisible by the 3 ranks"):
        per_rank_batch(64, DistInfo(rank=0, world_size=3))


def test_bf16_falls_back_to_fp32_where_the_cpu_makes_it_slow(
    tiny_world, tmp_path, monkeypatch, caplog
):
    import torch

    import crest.device as device

    monkeypatch.delenv("CREST_CPU_BF16", raising=False)
    monkeypatch.setitem(device._measured, "ratio", 24.0)  # as on a CPU without bf16 units
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    with caplog.at_level("WARNING", logger="crest.device"):
        assert device.effective_precision(cpu, "bf16") == "fp32"
    assert "24.0x the time of an fp32 one" in caplog.text and "CREST_CPU_BF16=force" in caplog.text
    assert device.effective_precision(cuda, "bf16") == "bf16"  # a GPU is never second-guessed
    assert device.effective_precision(cpu, "fp32") == "fp32"
    metrics = train(_bf16_config(tiny_world), tmp_path / "run")
    assert metrics["precision"] == "fp32"  # the run says what it computed in
    monkeypatch.setitem(device._measured, "ratio", 0.6)  # AVX512-BF16 or AMX: bf16 pays
    assert device.effective_precision(cpu, "bf16") == "bf16"


def test_the_bf16_slowdown_is_measured_once_per_process(monkeypatch):
    import crest.device as device

    monkeypatch.setattr(device, "_measured", {})
    ratio = device.cpu_bf16_slowdown(size=64, repeats=1)
    assert ratio > 0 and device._measured == {"ratio": ratio}
    assert device.cpu_bf16_slowdown() == ratio
