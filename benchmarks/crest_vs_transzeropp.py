"""Issue 29's CUB-shape bar: CREST's training step and inference against the TransZero++
authors' (the model CREST's paper builds on), same threads, processes alternating.

The authors' released model (patched only to run on a CPU, in a folder outside the repository,
never committed) is timed by its ``time_step.py`` runner: the median of N training steps (their
CUB config, their full loss and Adam) at batch 64 and of N inference forwards at batch 256, on
random (B, 2048, 14, 14) features. CREST is timed by ``crest perf --shape cub`` (its `cub`
recipe, the same batch sizes and shape).

    python benchmarks/crest_vs_transzeropp.py --reference /work/ref/transzeropp --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from crest.atomic import write_text_atomic
from crest.markdown import md_table

RESULTS = Path(__file__).parent / "results"


def authors(reference: Path, steps: int, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tzpp.json"
        cmd = [sys.executable, str(reference / "time_step.py"), "--batch", "64", "--steps"]
        cmd += [str(steps), "--threads", str(threads), "--inference-batch", "256"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        subprocess.run([*cmd, "--out", str(out)], check=True, env=env)
        return dict(json.loads(out.read_text()))


def crest(steps: int, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "crest.json"
        exe = str(Path(sys.executable).with_name("crest"))
        cmd = [exe, "perf", "--shape", "cub", "--steps", str(steps), "--json-out", str(out)]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        return dict(json.loads(out.read_text()))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reference", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS / "crest_vs_transzeropp.json")
    args = p.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"authors": [], "crest": []}
    for _ in range(args.rounds):
        runs["authors"].append(authors(args.reference, args.steps, args.threads))
        runs["crest"].append(crest(args.steps, args.threads))
        print(runs["authors"][-1], {k: runs["crest"][-1][k] for k in ("step_ms_median", "mfu")})
    write_text_atomic(args.out, json.dumps(runs, indent=1))
    a_step = statistics.median(r["train_step_ms"] for r in runs["authors"])
    a_inf = statistics.median(r["inference_samples_per_s"] for r in runs["authors"])
    c_step = statistics.median(r["step_ms_median"] for r in runs["crest"])
    c_inf = statistics.median(r["inference_samples_per_s"] for r in runs["crest"])
    c_mfu = statistics.median(r["mfu"] for r in runs["crest"])
    rows = [
        [
            "training step, batch 64 (ms)",
            f"{a_step:.0f}",
            f"{c_step:.0f}",
            f"{a_step / c_step:.2f}×",
        ],
        [
            "inference, batch 256 (samples/s)",
            f"{a_inf:.1f}",
            f"{c_inf:.1f}",
            f"{c_inf / a_inf:.2f}×",
        ],
    ]
    md = (
        "# CREST against the TransZero++ authors' code at the CUB shape (issue 29)\n\n"
        f"`benchmarks/crest_vs_transzeropp.py`: {args.threads} threads, {args.rounds} rounds of "
        "alternating processes, medians; the authors' model "
        f"(`{runs['authors'][0].get('source')}`, patched only to run on a CPU, never committed) "
        "with their CUB config, full loss and Adam, on random (B, 2048, 14, 14) features; CREST "
        f"by `crest perf --shape cub` (its `cub` recipe; MFU {100 * c_mfu:.1f} %). The bar: "
        "step ≥ 3.5×, inference ≥ 6×.\n\n"
        + md_table(["", "TransZero++ (authors)", "CREST (crest)", "CREST's speed-up"], rows)
        + "\n"
    )
    write_text_atomic(args.out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    main()
