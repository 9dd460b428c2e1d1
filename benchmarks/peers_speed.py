"""Issue 29, item 4: crest's DAZLE, MSDN and TransZero against their authors' code, on speed.

The authors' released training code, patched only to run on a CPU (in a folder outside the
repository, never committed; each copy has a ``time_epochs.py`` runner writing per-epoch
``train_seconds`` and ``eval_seconds``), and crest's model with the same recipe (its `cub`
recipe is the authors' CUB recipe) train on the same like-CUB file with the same threads, one
process each, authors and crest alternating. Both read the whole file into memory first (the
authors' loader always does; crest with ``data.cache=ram``), so neither epoch reads the disk.

    python benchmarks/peers_speed.py --reference /work/ref --epochs 3 --rounds 2

An epoch is not the same set of images on both sides: the authors draw ``ntrain // 50`` batches
of 50 rows at random (with repeats), crest makes one shuffled pass. So the table compares
training images per second, and evaluated images per second, beside the epoch times.
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

MODELS = ["dazle", "msdn", "transzero"]
RESULTS = Path(__file__).parent / "results"

CREST_SIDE = """
import json, sys
from crest.models.registry import recipe
from crest.perf.epochs import time_epochs
model, data, epochs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = time_epochs(data, ["ram"], epochs, "cub", [*recipe(model, "cub"), "train.device=cpu"])
r = rows[0]
json.dump({"train_seconds": r.train_seconds, "eval_seconds": r.eval_seconds,
           "train_images": r.train_images, "eval_images": r.eval_images}, open(out, "w"))
"""


def run_authors(reference: Path, model: str, data: Path, epochs: int, threads: int) -> dict:
    """The authors' runner; the median over epochs after the first (which carries warm-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "authors.json"
        cmd = [sys.executable, str(reference / model / "time_epochs.py"), "--data", str(data)]
        cmd += ["--epochs", str(epochs), "--threads", str(threads), "--out", str(out)]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        got = json.loads(out.read_text())
    later = got["epochs"][1:] or got["epochs"]
    return {
        "train_seconds": statistics.median(e["train_seconds"] for e in later),
        "eval_seconds": statistics.median(e["eval_seconds"] for e in later),
        "train_images": later[0]["images"],
        "eval_images": None,
        "source": got.get("source"),
    }


def run_crest(model: str, data: Path, epochs: int, threads: int) -> dict:
    """crest's trainer, its `cub` recipe for ``model``: the last epoch's times."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "crest.json"
        cmd = [sys.executable, "-c", CREST_SIDE, model, str(data), str(epochs), str(out)]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        return dict(json.loads(out.read_text()))


def table(results: dict[str, Any]) -> str:
    rows = []
    for model in MODELS:
        r = results.get(model)
        if not r:
            continue
        a = r["authors"]
        c = r["crest"]
        a_rate = statistics.median(x["train_images"] / x["train_seconds"] for x in a)
        c_rate = statistics.median(x["train_images"] / x["train_seconds"] for x in c)
        rows.append(
            [
                model,
                f"{statistics.median(x['train_seconds'] for x in a):.2f} ({a[0]['train_images']})",
                f"{statistics.median(x['train_seconds'] for x in c):.2f} ({c[0]['train_images']})",
                f"{a_rate:.0f}",
                f"{c_rate:.0f}",
                f"{c_rate / a_rate:.2f}×",
                f"{statistics.median(x['eval_seconds'] for x in a):.2f}",
                f"{statistics.median(x['eval_seconds'] for x in c):.2f}",
            ]
        )
    header = [
        "model",
        "authors: epoch training s (images)",
        "crest: epoch training s (images)",
        "authors: train images/s",
        "crest: train images/s",
        "crest ÷ authors",
        "authors: evaluation s",
        "crest: evaluation s",
    ]
    return md_table(header, rows)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reference", type=Path, required=True, help="folder of the patched code")
    p.add_argument("--data", type=Path, help="like-CUB file (default: peers.world_file('CUB'))")
    p.add_argument("--models", nargs="*", default=MODELS)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS / "peers_speed.json")
    args = p.parse_args()
    if args.data is None:
        from peers import world_file

        args.data = world_file("CUB")
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    for model in args.models:
        runs: dict[str, list[dict]] = {"authors": [], "crest": []}
        for _ in range(args.rounds):
            runs["authors"].append(
                run_authors(args.reference, model, args.data, args.epochs, args.threads)
            )
            runs["crest"].append(run_crest(model, args.data, args.epochs, args.threads))
            print(model, runs["authors"][-1], runs["crest"][-1], flush=True)
        results[model] = {**runs, "epochs": args.epochs, "threads": args.threads}
        write_text_atomic(args.out, json.dumps(results, indent=1))
    md = (
        "# crest's peers against their authors' code, on speed (issue 29, item 4)\n\n"
        f"`benchmarks/peers_speed.py`: the like-CUB file (`{Path(str(args.data)).name}`), "
        f"{args.threads} threads, each side in its own process, authors and crest alternating, "
        "features in memory on both sides. Epoch times are medians over rounds of the median "
        "epoch after the first (authors) or of the last epoch (crest). The authors' epoch is "
        "their `ntrain // 50` random batches of 50; crest's is one shuffled pass over trainval, "
        "so compare images per second. crest's evaluation computes more than the authors' "
        "(a γ sweep, AUSUC, calibration and the reported opinion).\n\n" + table(results) + "\n"
    )
    write_text_atomic(args.out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    main()
