"""bf16 autocast on the CPU against fp32: speed of the CUB-shape step (`crest bench`, processes
alternated in one session) and accuracy on the default world (same seeds, same config).

    python benchmarks/cpu_bf16.py                      # 2 bench processes per precision, 3 seeds
    python benchmarks/cpu_bf16.py --rounds 3 --seeds 0 1 2 3

Run it with nothing else on the CPU. Writes benchmarks/results/cpu_bf16.md and a JSON beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CREST = str(Path(sys.executable).with_name("crest"))
PRECISIONS = ("fp32", "bf16")


def bench_once(precision: str, steps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [CREST, "bench", "--shape", "cub", "--precision", precision, "--steps", str(steps)]
        subprocess.run([*cmd, "--json-out", str(out)], check=True, capture_output=True)
        return json.loads(out.read_text())


def train_once(precision: str, seed: int, out: Path) -> dict[str, Any]:
    folder = out / f"{precision}-seed{seed}"
    if not (folder / "metrics.json").exists():
        sets = [f"train.precision={precision}", f"train.seed={seed}"]
        cmd = [CREST, "train", "--config", "synthetic", "--out", str(folder)]
        for s in sets:
            cmd += ["--set", s]
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        (folder / "wall_seconds.txt").write_text(f"{time.perf_counter() - started:.1f}\n")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["wall_seconds"] = float((folder / "wall_seconds.txt").read_text())
    return metrics


def _ms(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    v = [scale * x for x in values]
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=2, help="bench processes per precision")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=Path("runs/cpu_bf16"))
    p.add_argument("--table", type=Path, default=ROOT / "benchmarks/results/cpu_bf16.md")
    args = p.parse_args()

    benches: dict[str, list[dict[str, Any]]] = {k: [] for k in PRECISIONS}
    for _ in range(args.rounds):
        for precision in PRECISIONS:  # alternated: drift of the machine moves both alike
            benches[precision].append(bench_once(precision, args.steps))
            print(precision, f"{benches[precision][-1]['step_ms_median']:.0f} ms", flush=True)
    runs = {k: [train_once(k, s, args.out) for s in args.seeds] for k in PRECISIONS}

    def med(k: str, field: str) -> float:
        return statistics.median(b[field] for b in benches[k])

    speed = [
        "| | fp32 | bf16 | bf16 ÷ fp32 |",
        "|---|---|---|---|",
    ]
    for field, label in (
        ("step_ms_median", "train step, ms"),
        ("train_samples_per_s", "train samples/s"),
        ("matmul_peak_tflops", "matmul peak, TFLOP/s"),
        ("inference_samples_per_s", "inference samples/s (batch 256)"),
        ("peak_memory_mb", "peak RSS, training, MB"),
    ):
        a, b = med("fp32", field), med("bf16", field)
        speed.append(f"| {label} | {a:.3g} | {b:.3g} | {b / a:.2f} |")
    acc = [
        "| precision | seeds | CZSL | U | S | H | wall s per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in PRECISIONS:
        r = runs[k]
        acc.append(
            f"| {k} | {len(r)} | "
            + " | ".join(
                _ms([m[f] for m in r], 100) for f in ("czsl_acc", "gzsl_u", "gzsl_s", "gzsl_h")
            )
            + f" | {_ms([m['wall_seconds'] for m in r], digits=0)} |"
        )
    selection = runs["fp32"][0].get("selection_detail", runs["fp32"][0].get("selection"))
    text = "\n".join(
        [
            "# bf16 autocast on the CPU against fp32",
            "",
            f"`crest bench --shape cub --steps {args.steps}` (B = 64, 14 × 14 × 2048, d = 300), "
            f"{args.rounds} processes per precision alternated, medians:",
            "",
            *speed,
            "",
            f"`crest train --config synthetic` on the default world, seeds {args.seeds}, "
            f"mean ± std (selection: {selection}):",
            "",
            *acc,
            "",
        ]
    )
    args.table.write_text(text)
    args.table.with_suffix(".json").write_text(
        json.dumps({"bench": benches, "runs": runs}, indent=2, default=str)
    )
    print(text)


if __name__ == "__main__":
    main()
