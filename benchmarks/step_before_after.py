"""Before/after of the fast training step: `crest bench` on an older commit and on this tree,
alternated in one session on one machine, plus a profile of one training step of each.

    python benchmarks/step_before_after.py            # before = e663460, 2 processes per tree
    python benchmarks/step_before_after.py --before REV --processes 3 --rounds 5 --compile

The older commit is exported with `git archive` into a temporary folder and imported from
there in a child process; each measurement is its own process, so nothing is shared between
them but the machine. Run it with nothing else on the CPU: two torch jobs at once on two cores
slow each other several-fold. Writes benchmarks/results/fast_step.md and a JSON beside it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: the last commit before the fast-step work (folded region matmul, Bernoulli dropout,
#: explicit VGT attention in training, whole-batch inference)
DEFAULT_BEFORE = "e663460"


def worker(src: str, rounds: int, profile_rows: int, compile: bool) -> dict[str, Any]:
    """Runs inside a child process whose sys.path starts with ``src``.

    One harness for both trees, built on the API they share (load_config, the model factory,
    CrestLoss), so only the model code differs. As in `crest bench`: inference is warmed up and
    its peak RSS read before any training; then each round times one inference batch (256), one
    training step (64) and a 2048² matmul in turn, so drift of the machine's speed moves all
    three alike.
    """
    sys.path.insert(0, src)
    import resource
    import statistics

    import numpy as np
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    import crest
    from crest import models
    from crest.config import load_config
    from crest.models.crest import CrestLoss

    if not Path(crest.__file__).resolve().is_relative_to(Path(src).resolve()):
        raise SystemExit(f"imported crest from {crest.__file__}, not from {src}")

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def timed(fn: Any) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    cfg = load_config("cub", [])
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    vectors, z = rng.normal(size=(312, 300)), np.abs(rng.normal(size=(200, 312)))
    if hasattr(models, "create_model"):  # this tree: the one factory
        model = models.create_model(cfg.model, models.ArrayInputs(2048, vectors, z))
    else:  # older trees
        model = models.build_model(cfg.model, 2048, vectors, z)  # type: ignore[attr-defined]
    loss_fn = CrestLoss(cfg.loss, torch.arange(150), torch.arange(150, 200), cfg.model.fusion)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    net: Any = torch.compile(model) if compile else model
    xi = torch.rand(256, 2048, 14, 14)

    @torch.no_grad()
    def infer() -> None:
        model.eval()
        net(xi)

    # older trees pass the model to the loss (for its bank and class matrix); this one does not
    extra = (model,) if "model" in inspect.signature(loss_fn.__call__).parameters else ()

    def step() -> None:
        model.train()
        loss, _ = loss_fn(net(x), y, 5, *extra)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    compile_s = timed(infer)
    infer_rss = rss_mb()
    x, y = torch.rand(64, 2048, 14, 14), torch.randint(0, 150, (64,))
    compile_s += timed(step)
    with FlopCounterMode(display=False) as counter:
        eager, net = net, model
        step()
        net = eager
    flops = float(counter.get_total_flops())
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    t_inf, t_step, peaks = [], [], []
    for _ in range(rounds):
        t_inf.append(timed(infer))
        t_step.append(timed(step))
        peaks.append(
            2 * 2048**3 / statistics.median(timed(lambda: torch.mm(a, b)) for _ in range(3))
        )
    step_s, peak = statistics.median(t_step), statistics.median(peaks)
    result: dict[str, Any] = {
        "step_ms_median": 1000 * step_s,
        "train_samples_per_s": 64 / step_s,
        "flops_per_step": flops,
        "matmul_peak_tflops": peak / 1e12,
        "mfu": flops / step_s / peak,
        "peak_memory_mb": rss_mb(),
        "inference_samples_per_s": 256 / statistics.median(t_inf),
        "inference_peak_memory_mb": infer_rss,
        "compile_seconds": compile_s,
        "rounds": rounds,
    }
    if profile_rows:
        net = model
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            step()
        events = prof.key_averages(group_by_input_shape=True)
        total = sum(e.self_cpu_time_total for e in events)
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:profile_rows]
        result["profile"] = [
            {
                "op": e.key,
                "input_shapes": str(e.input_shapes),
                "calls": int(e.count),
                "self_ms": e.self_cpu_time_total / 1000,
                "share": e.self_cpu_time_total / total,
            }
            for e in top
        ]
        result["profile_total_ms"] = total / 1000
    return result


def run_child(src: Path, rounds: int, profile_rows: int, compile: bool = False) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        str(src),
        "--rounds",
        str(rounds),
        "--profile",
        str(profile_rows),
        "--json-out",
        str(out),
    ] + (["--compile"] if compile else [])
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return result


def export_tree(rev: str, dest: Path) -> Path:
    archive = dest / "tree.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", rev, "src"], check=True, cwd=ROOT, stdout=f)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = (
        "step_ms_median",
        "train_samples_per_s",
        "flops_per_step",
        "matmul_peak_tflops",
        "mfu",
        "peak_memory_mb",
        "inference_samples_per_s",
        "inference_peak_memory_mb",
    )
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def report(
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    compiled: dict[str, Any] | None,
    rev: str,
    seconds: float,
) -> str:
    # imported here, in the parent only: a worker must import crest from the tree it measures
    from crest.perf.bench import profile_table

    b, a = summarise(before), summarise(after)
    rows = [
        ("train step (median)", "step_ms_median", "{:.0f} ms"),
        ("train samples/s", "train_samples_per_s", "{:.1f}"),
        ("FLOPs per step", "flops_per_step", "{:.3g}"),
        ("matmul peak (same process)", "matmul_peak_tflops", "{:.4f} TFLOP/s"),
        ("model-FLOPs utilisation", "mfu", "{:.1%}"),
        ("peak RSS, training", "peak_memory_mb", "{:.0f} MB"),
        ("inference samples/s (batch 256)", "inference_samples_per_s", "{:.1f}"),
        ("peak RSS, inference", "inference_peak_memory_mb", "{:.0f} MB"),
    ]
    header = "| | before | after |" + (" after + torch.compile |" if compiled else "")
    lines = [
        "# The fast training step: before and after (CUB shape, fp32, 2-core CPU)",
        "",
        f"`python benchmarks/step_before_after.py` — before = `{rev}`, after = this tree; "
        f"{len(before)} processes per tree, alternating before/after, each timing "
        f"{before[0]['rounds']} rounds of (inference batch, training step, matmul peak) in turn; "
        f"medians over rounds, then over processes; {seconds / 60:.0f} min in all.",
        "Peak RSS includes about 545 MB for importing torch. Inference is measured before "
        "training in each process, so its RSS excludes training's activations.",
        "",
        header,
        "|---|---|---|" + ("---|" if compiled else ""),
    ]
    for label, key, fmt in rows:
        line = f"| {label} | {fmt.format(b[key])} | {fmt.format(a[key])} |"
        if compiled:
            line += f" {fmt.format(compiled[key])} |"
        lines.append(line)
    ratio_b = b["inference_samples_per_s"] / b["train_samples_per_s"]
    ratio_a = a["inference_samples_per_s"] / a["train_samples_per_s"]
    line = f"| inference ÷ training samples/s | {ratio_b:.2f}× | {ratio_a:.2f}× |"
    if compiled:
        rc = compiled["inference_samples_per_s"] / compiled["train_samples_per_s"]
        line += f" {rc:.2f}× |"
    lines.append(line)
    if compiled:
        lines += [
            "",
            f"torch.compile (inductor) took {compiled['compile_seconds']:.0f} s to compile.",
        ]
    lines += ["", "Every process:", "", "| process | tree | step ms | MFU | inference samples/s |"]
    lines.append("|---|---|---|---|---|")
    for i, (rb, ra) in enumerate(zip(before, after, strict=True), 1):
        for name, r in (("before", rb), ("after", ra)):
            lines.append(
                f"| {i} | {name} | {r['step_ms_median']:.0f} | {r['mfu']:.1%} | "
                f"{r['inference_samples_per_s']:.1f} |"
            )
    for name, runs in (("before", before), ("after", after)):
        prof = runs[0].get("profile")
        if prof:
            lines += [
                "",
                f"## Profile of one training step, {name} (top {len(prof)} operators by self CPU time; "
                f"total {runs[0]['profile_total_ms']:.0f} ms under the profiler)",
                "",
                profile_table(prof),
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--before", default=DEFAULT_BEFORE)
    p.add_argument("--processes", type=int, default=2, help="processes per tree, alternating")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds in each process")
    p.add_argument("--profile", type=int, default=12)
    p.add_argument("--compile", action="store_true", help="also time this tree with torch.compile")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fast_step.md")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        result = worker(args.worker, args.rounds, args.profile, args.compile)
        args.json_out.write_text(json.dumps(result))
        return
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        old = export_tree(args.before, Path(tmp))
        new = ROOT / "src"
        before, after = [], []
        for i in range(args.processes):
            # the profile is taken once per tree, in the first process
            rows = args.profile if i == 0 else 0
            print(f"process {i + 1}/{args.processes}: before", flush=True)
            before.append(run_child(old, args.rounds, rows))
            print(f"process {i + 1}/{args.processes}: after", flush=True)
            after.append(run_child(new, args.rounds, rows))
        compiled = None
        if args.compile:
            print("after + torch.compile", flush=True)
            compiled = run_child(new, args.rounds, 0, compile=True)
    text = report(before, after, compiled, args.before, time.perf_counter() - t0)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"before": before, "after": after, "compiled": compiled}, indent=2)
    )
    print(text)


if __name__ == "__main__":
    main()
