"""`crest bench`: one CREST training step at a benchmark's shape, measured on the current device.

Reports the median step time, samples/s, FLOPs per step (``torch.utils.flop_counter``), the
device's matmul peak measured in the same process, model-FLOPs utilisation (achieved ÷ peak),
peak memory, inference samples/s and, given a benchmark file, feature streaming samples/s.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from crest.config import Config, ModelConfig, load_config
from crest.device import autocast, choose_device
from crest.markdown import md_table
from crest.models import ArrayInputs, ZSLModel, create_loss, create_model
from crest.models.contract import ModelLoss
from crest.models.registry import recipe
from crest.perf.flops import flop_breakdown


@dataclass(frozen=True)
class Shape:
    """The input and class-side sizes of a timed step, and the config it trains with."""

    side: int  # grid side: R = side² regions
    feature_dim: int  # D_v
    attributes: int
    classes: int
    seen: int
    config: str  # the dataset config; a ``--model`` adds its recipe for it


SHAPES: dict[str, Shape] = {
    "cub": Shape(14, 2048, 312, 200, 150, "cub"),
    "cub7": Shape(7, 2048, 312, 200, 150, "cub"),
    "sun": Shape(14, 2048, 102, 717, 645, "sun"),
    "awa2": Shape(14, 2048, 85, 50, 40, "awa2"),
    # the like worlds (`crest data synth --like CUB`): 128 channels on 7 × 7, `synthetic` recipes
    "like": Shape(7, 128, 312, 200, 150, "synthetic"),
}


@dataclass
class BenchResult:
    shape: str
    model: str
    device: str
    precision: str
    batch: int
    regions: int
    feature_dim: int
    attributes: int
    classes: int
    d: int
    step_ms_median: float
    train_samples_per_s: float
    flops_per_step: float
    achieved_tflops: float
    matmul_peak_tflops: float
    mfu: float
    peak_memory_mb: float
    inference_batch: int
    inference_samples_per_s: float
    inference_peak_memory_mb: float
    stream_samples_per_s: float | None = None
    compiled: bool = False
    rounds: int = 0  # timed rounds of (inference, training step, matmul peak); medians reported
    compile_seconds: float | None = None
    profile: list[dict[str, Any]] | None = None
    flops_breakdown: dict[str, float] | None = None  # GFLOP by part (crest.perf.flops)


def _median_time(fn: Callable[[], Any], device: torch.device, steps: int, warmup: int) -> float:
    """Seconds per call of ``fn`` over ``steps`` calls after ``warmup`` (torch.utils.benchmark:
    it synchronises CUDA around the timed calls; all of torch's threads are kept)."""
    for _ in range(warmup):
        fn()
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(timer.timeit(steps).median)


def matmul_peak(device: torch.device, precision: str, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of a square matmul on this device in this process, in the precision the step runs
    in: bf16 operands for ``bf16`` (CUDA or a CPU with bf16 units, e.g. AMX), else fp32. MFU is
    measured against this peak, so it compares across machines and precisions."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    if device.type == "cuda":
        n = 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    _median_time(lambda: torch.mm(a, b), device, 1, 2)
    # the fastest of ``reps`` products: a peak is what the device can do, and a slower sample
    # (a hiccup of a shared host) would inflate every MFU measured against it
    seconds = min(_median_time(lambda: torch.mm(a, b), device, 1, 0) for _ in range(reps))
    return 2.0 * n**3 / seconds


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def model_at_shape(
    shape: str, model_name: str | None = None, overrides: list[str] | None = None
) -> tuple[Config, ZSLModel, ModelLoss]:
    """The config, a seeded model (random class side of the shape's sizes) and its loss for one
    step at ``shape``: ``model_name`` with its recipe for the shape's config (default: the
    config's own model, CREST), then ``overrides``."""
    spec = SHAPES[shape]
    chosen = list(recipe(model_name, spec.config)) if model_name else []
    cfg = load_config(spec.config, [*chosen, *(overrides or [])])
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    shape_only = ArrayInputs(
        spec.feature_dim,
        rng.normal(size=(spec.attributes, 300)),
        np.abs(rng.normal(size=(spec.classes, spec.attributes))),
    )
    model = create_model(cfg, shape_only)
    loss_fn = create_loss(cfg, torch.arange(spec.seen), torch.arange(spec.seen, spec.classes))
    return cfg, model, loss_fn


def run_bench(
    shape: str = "cub",
    precision: str = "fp32",
    batch: int = 64,
    steps: int = 5,
    warmup: int = 2,
    inference_batch: int = 256,
    device: str = "auto",
    data: str | Path | None = None,
    model_overrides: list[str] | None = None,
    compile: bool = False,
    profile_rows: int = 0,
    model_name: str | None = None,
    breakdown: bool = False,
) -> BenchResult:
    """Measure inference first, then training; ``compile`` runs both through ``torch.compile``
    (compilation happens in the warm-up calls and is reported, not timed); ``profile_rows`` > 0
    adds the top operators of one profiled training step. ``model_name`` times that registered
    model with its recipe for the shape's config (default: the config's own model, CREST);
    ``breakdown`` adds the step's FLOPs by part."""
    spec = SHAPES[shape]
    side, classes, seen = spec.side, spec.classes, spec.seen
    dev = choose_device(device)
    cfg, model, loss_fn = model_at_shape(shape, model_name, model_overrides)
    mcfg: ModelConfig = cfg.model
    model.to(dev)
    loss_fn = loss_fn.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = y = torch.empty(0)  # the training batch is made after the inference measurement
    net: Callable[[torch.Tensor], Any] = torch.compile(model) if compile else model

    def train_step(module: Callable[[torch.Tensor], Any] = net) -> None:
        with autocast(dev, precision):
            out = module(x)
        loss, _ = loss_fn(out, y, 5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # inference first: on the CPU peak memory (ru_maxrss) only grows, so this order keeps the
    # inference figure free of training's activations
    model.eval()
    xi = torch.rand(inference_batch, spec.feature_dim, side, side, device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    @torch.no_grad()
    def infer() -> None:
        with autocast(dev, precision):
            net(xi)

    compile_s = 0.0
    t0 = time.perf_counter()
    infer()  # warm-up (and, with compile, compilation: kept out of the timings)
    compile_s += time.perf_counter() - t0
    infer_mem = _memory_mb(dev)
    x = torch.rand(batch, spec.feature_dim, side, side, device=dev)
    y = torch.randint(0, seen, (batch,), device=dev)
    model.train()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    train_step()
    compile_s += time.perf_counter() - t0
    with FlopCounterMode(display=False) as counter:
        train_step(model)  # the eager model: a compiled graph hides its operators from the counter
    flops = float(counter.get_total_flops())
    parts = None
    if breakdown:
        with autocast(dev, precision):
            parts = flop_breakdown(model, loss_fn, x, y)
        opt.zero_grad(set_to_none=True)
    for _ in range(max(0, warmup - 1)):
        train_step()
    train_mem = _memory_mb(dev)
    # timed rounds: inference, a training step and the matmul peak take turns, so a machine
    # whose speed drifts (shared hosts do, by ±20% over minutes) moves all three alike and the
    # ratios between them (MFU, inference ÷ training) stay meaningful
    infer_times, step_times, peaks = [], [], []
    for _ in range(steps):
        model.eval()
        infer_times.append(_median_time(infer, dev, 1, 0))
        model.train()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        step_times.append(_median_time(train_step, dev, 1, 0))
        train_mem = max(train_mem, _memory_mb(dev))
        peaks.append(matmul_peak(dev, precision, reps=3))
    infer_s, step, peak = (statistics.median(v) for v in (infer_times, step_times, peaks))
    top = profile_step(train_step, dev, profile_rows) if profile_rows > 0 else None

    stream = stream_rate(data) if data else None
    return BenchResult(
        shape=shape,
        model=mcfg.name,
        device=str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        precision=precision,
        batch=batch,
        regions=side * side,
        feature_dim=spec.feature_dim,
        attributes=spec.attributes,
        classes=classes,
        d=mcfg.d,
        step_ms_median=1000 * step,
        train_samples_per_s=batch / step,
        flops_per_step=flops,
        achieved_tflops=flops / step / 1e12,
        matmul_peak_tflops=peak / 1e12,
        mfu=(flops / step) / peak,
        peak_memory_mb=train_mem,
        inference_batch=inference_batch,
        inference_samples_per_s=inference_batch / infer_s,
        inference_peak_memory_mb=infer_mem,
        stream_samples_per_s=stream,
        compiled=compile,
        compile_seconds=compile_s if compile else None,
        rounds=steps,
        profile=top,
        flops_breakdown=parts,
    )


def profile_step(step: Callable[[], Any], device: torch.device, rows: int) -> list[dict[str, Any]]:
    """The ``rows`` operators with the most self time in one step, with their input shapes."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True) as prof:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    events = prof.key_averages(group_by_input_shape=True)
    on_device = device.type == "cuda"

    def self_us(e: Any) -> float:
        return float(e.self_device_time_total if on_device else e.self_cpu_time_total)

    total = sum(self_us(e) for e in events) or 1.0
    ranked = sorted(events, key=self_us, reverse=True)[:rows]
    return [
        {
            "op": e.key,
            "input_shapes": str(e.input_shapes),
            "calls": int(e.count),
            "self_ms": round(self_us(e) / 1000, 2),
            "share": round(self_us(e) / total, 4),
        }
        for e in ranked
    ]


def profile_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`profile_step` rows."""
    cells = [
        [
            r["op"],
            r["input_shapes"].replace("|", "/"),
            r["calls"],
            f"{r['self_ms']:.1f}",
            f"{100 * r['share']:.1f}%",
        ]
        for r in rows
    ]
    return md_table(["op", "input shapes", "calls", "self ms", "share"], cells)


def stream_rate(path: str | Path, batch: int = 64, limit: int = 2048) -> float:
    """Samples/s of reading feature maps from a benchmark file in training order (shuffled)."""
    from crest.data.schema.dataset import FeatureDataset, feature_loader
    from crest.data.schema.hdf5 import read_benchmark

    bench = read_benchmark(path)
    rows = np.random.default_rng(0).permutation(bench.num_images)[:limit]
    loader = feature_loader(
        FeatureDataset(path, rows, labels=bench.labels), batch_size=batch, shuffle=False
    )
    t0 = time.perf_counter()
    n = 0
    for xb, _ in loader:
        n += len(xb)
    return n / (time.perf_counter() - t0)


def as_table(r: BenchResult) -> str:
    rows = [
        (
            "shape",
            f"{r.model} at {r.shape}: B={r.batch}, R={r.regions}, D_v={r.feature_dim}, "
            f"A={r.attributes}, C={r.classes}, d={r.d}",
        ),
        (
            "device / precision",
            f"{r.device} / {r.precision}" + (" / compiled" if r.compiled else ""),
        ),
        ("timed rounds (medians)", str(r.rounds)),
        ("train step (median)", f"{r.step_ms_median:.1f} ms"),
        ("train samples/s", f"{r.train_samples_per_s:.1f}"),
        ("FLOPs per step", f"{r.flops_per_step / 1e9:.1f} GFLOP"),
        ("achieved", f"{1000 * r.achieved_tflops:.1f} GFLOP/s"),
        (
            f"matmul peak (same process, {r.precision} operands)",
            f"{1000 * r.matmul_peak_tflops:.1f} GFLOP/s",
        ),
        (f"model-FLOPs utilisation (of the {r.precision} peak)", f"{100 * r.mfu:.1f}%"),
        ("peak memory (train)", f"{r.peak_memory_mb:.0f} MB"),
        (f"inference samples/s (batch {r.inference_batch})", f"{r.inference_samples_per_s:.1f}"),
        ("peak memory (inference)", f"{r.inference_peak_memory_mb:.0f} MB"),
    ]
    if r.stream_samples_per_s is not None:
        rows.append(("feature streaming samples/s", f"{r.stream_samples_per_s:.1f}"))
    if r.compile_seconds is not None:
        rows.append(("compile time (not in timings)", f"{r.compile_seconds:.1f} s"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def to_dict(r: BenchResult) -> dict[str, Any]:
    return asdict(r)
