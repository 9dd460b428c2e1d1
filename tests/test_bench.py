"""`crest bench`: the real CLI at a small shape, FLOP counting, the profile, streaming."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crest.perf.bench import run_bench

CREST = str(Path(sys.executable).with_name("crest"))
SMALL = ["model.d=32", "model.d_ff=64", "model.bank_size=8", "model.bank_dim=8"]


def crest_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real `crest` entry point, output captured."""
    return subprocess.run([CREST, *args], capture_output=True, text=True, timeout=300)


def test_bench_cli_reports_every_figure(tiny_world, tmp_path):
    out = tmp_path / "bench.json"
    sets = [a for item in SMALL for a in ("--set", item)]
    shape = ["--shape", "cub7", "--batch", "8", "--inference-batch", "16", "--steps", "2"]
    extras = ["--profile", "4", "--data", str(tiny_world), "--json-out", str(out)]
    res = crest_cli("perf", *shape, *extras, *sets)
    assert res.returncode == 0, res.stderr
    for label in ("model-FLOPs utilisation", "inference samples/s (batch 16)", "top 4 operators"):
        assert label in res.stdout
    r = json.loads(out.read_text())
    assert r["shape"] == "cub7" and r["regions"] == 49 and r["d"] == 32 and r["rounds"] == 2
    assert r["flops_per_step"] > 0 and r["matmul_peak_tflops"] > 0
    assert r["mfu"] == pytest.approx(
        r["flops_per_step"] / (r["step_ms_median"] / 1000) / (r["matmul_peak_tflops"] * 1e12),
        rel=1e-6,
    )
    assert r["train_samples_per_s"] == pytest.approx(8 / (r["step_ms_median"] / 1000), rel=1e-6)
    assert r["inference_samples_per_s"] > 0 and r["stream_samples_per_s"] > 0
    assert len(r["profile"]) == 4 and 0 < sum(p["share"] for p in r["profile"]) <= 1
    assert all(p["self_ms"] > 0 and p["calls"] >= 1 for p in r["profile"])


def test_flops_grow_with_the_batch_and_cover_the_region_projection():
    small = run_bench("cub7", batch=4, steps=1, warmup=1, inference_batch=4, model_overrides=SMALL)
    large = run_bench("cub7", batch=8, steps=1, warmup=1, inference_batch=4, model_overrides=SMALL)
    per_four_samples = large.flops_per_step - small.flops_per_step
    once_per_step = small.flops_per_step - per_four_samples  # the attribute side
    assert 0 < once_per_step < small.flops_per_step
    # four samples' forward and weight gradient of the region projection: 2 × (2·4·R·D_v·d)
    projection = 2 * 2 * 4 * 49 * 2048 * 32
    assert projection < per_four_samples < 10 * projection


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error():
    from crest.device import choose_device
    from crest.errors import ConfigError

    with pytest.raises(ConfigError, match=r"device 'cuda:1': CUDA is not available"):
        choose_device("cuda:1")


def small_perf_on(data, out, *extra):
    """`crest perf` of a small model at the cub7 shape, one round, reading ``data``."""
    sets = [a for item in SMALL for a in ("--set", item)]
    common = ["--shape", "cub7", "--batch", "8", "--inference-batch", "16", "--steps", "1"]
    return crest_cli("perf", *common, "--data", str(data), *extra, "--json-out", str(out), *sets)


def test_bench_epochs_times_each_cache_mode_and_projects_a_full_run(tiny_world, tmp_path):
    out = tmp_path / "bench.json"
    res = small_perf_on(tiny_world, out, "--epochs", "2", "--cache", "stream", "device")
    assert res.returncode == 0, res.stderr
    assert "2 epochs on" in res.stdout and "| data.cache |" in res.stdout
    rows = json.loads(out.read_text())["epochs"]
    assert [r["mode"] for r in rows] == ["stream", "device"]
    stream, device = rows
    assert stream["cache_seconds"] == 0 and device["cache_seconds"] > 0
    for r in rows:
        assert r["epochs"] == 2 and r["train_images"] > 0 and r["eval_images"] > 0
        assert r["train_seconds"] > 0 and r["eval_seconds"] > 0
        per_image = r["train_seconds"] / r["train_images"]
        assert r["projected_full_run_minutes"] >= 200 * per_image * 7057 / 60 * 0.99


def test_perf_split_accounts_for_a_whole_val_protocol_run(tiny_world, tmp_path):
    out = tmp_path / "split.json"
    res = small_perf_on(tiny_world, out, "--split", "2")
    assert res.returncode == 0, res.stderr
    assert "one val-protocol run of 2 validation epochs" in res.stdout
    r = json.loads(out.read_text())["split"]
    # 2 validation epochs, then the final phase retrained up to the epoch validation chose
    assert 3 <= r["epochs"] <= 4
    for key in ("steps_seconds", "eval_seconds", "checkpoint_seconds", "opinion_seconds"):
        assert r[key] > 0, key
    parts = sum(
        v
        for k, v in r.items()
        if k.endswith("_seconds") and isinstance(v, float) and k != "total_seconds"
    )
    assert parts <= r["total_seconds"] * 1.01
    assert 0 < r["around_steps_share"] < 1 and 0 < r["epoch_around_steps_share"] < 1
    assert set(r["epoch_seconds"]) == {"steps", "data", "eval", "checkpoint", "opinion"}


def test_bench_epochs_without_data_is_a_clear_error():
    res = crest_cli(
        "bench",
        "--shape",
        "cub7",
        "--steps",
        "1",
        "--epochs",
        "1",
        "--set",
        "model.d=16",
        "--set",
        "model.d_ff=16",
        "--set",
        "model.bank_dim=8",
    )
    assert res.returncode != 0 and "--epochs needs --data" in res.stderr


def test_flop_breakdown_adds_up_to_the_step_and_names_crests_parts():
    r = run_bench(
        "cub7", batch=4, steps=1, warmup=1, inference_batch=4, model_overrides=SMALL, breakdown=True
    )
    parts = r.flops_breakdown
    assert parts is not None and r.model == "crest"
    assert {"forward: vgt", "forward: agt", "forward: bank", "loss", "backward"} <= set(parts)
    assert sum(v for k, v in parts.items() if k != "total") == pytest.approx(parts["total"])
    assert parts["total"] == pytest.approx(r.flops_per_step, rel=1e-6)  # the same step, counted
    # CREST's own operators hold both fronts' region projections, 2·B·R·D_v·d each
    assert parts["forward: (own operators)"] >= 2 * (2 * 4 * 49 * 2048 * 32)
    forward = sum(v for k, v in parts.items() if k.startswith("forward"))
    assert forward < parts["backward"] < 3 * forward


@pytest.mark.parametrize("name", ["dazle", "msdn", "transzero"])
def test_perf_times_a_peer_at_the_like_shape_with_its_recipe(name, tmp_path):
    out = tmp_path / "perf.json"
    small = ["--batch", "4", "--inference-batch", "4", "--steps", "1"]
    res = crest_cli(
        "perf", "--model", name, "--shape", "like", *small, "--flops", "--json-out", str(out)
    )
    assert res.returncode == 0, res.stderr
    r = json.loads(out.read_text())
    assert r["model"] == name and r["feature_dim"] == 128 and r["regions"] == 49
    assert r["flops_per_step"] > 0 and "FLOPs of one training step by part" in res.stdout
    assert r["flops_breakdown"]["total"] == pytest.approx(r["flops_per_step"], rel=1e-6)
