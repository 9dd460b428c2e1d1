"""Full CREST, every Table 2 row and the baseline on the default world (and full CREST on a
--like CUB world), mean ± std over seeds, selection `final`. Resumable; writes a markdown table.

    python benchmarks/crest_vs_baseline.py --out runs/bench --seeds 0 1 2
    python benchmarks/crest_vs_baseline.py --skip-like      # the default world only
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from crest.atomic import write_text_atomic
from crest.baseline import run_baseline
from crest.config import load_config
from crest.data.synthetic.generator import WorldSpec
from crest.data.synthetic.worlds import build_world, default_world
from crest.experiments import ablate, summary_table


def baseline_line(path: Path, label: str) -> str:
    r = run_baseline(path)
    cells = " | ".join(f"{100 * v:.1f}" for v in (r.czsl_acc, r.gzsl_u, r.gzsl_s, r.gzsl_h))
    return f"| {label} | – | {cells} | γ={r.gamma:.3f} on validation classes |\n"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--rows", nargs="*", help="Table 2 rows (default: all)")
    p.add_argument("--skip-like", action="store_true", help="skip the --like CUB world")
    p.add_argument(
        "--like-cap", type=int, default=20, help="images per class of the --like CUB world"
    )
    p.add_argument("--like-epochs", type=int, default=10, help="epochs on the --like CUB world")
    p.add_argument("--table", type=Path, default=Path("benchmarks/results/crest_vs_baseline.md"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    start = time.time()
    world = default_world()
    cfg = load_config("synthetic", [f"train.epochs={args.epochs}"])
    results = ablate(cfg, args.out / "default", rows=args.rows, seeds=args.seeds)
    text = "# CREST vs. the baseline\n\n"
    text += f"Default world ({world.name}), config `synthetic`, {args.epochs} epochs, selection `final` "
    text += (
        "(last epoch, γ fixed at 2.0). Mean ± std over seeds "
        + ", ".join(map(str, args.seeds))
        + ".\n\n"
    )
    text += summary_table(results) + baseline_line(world, "baseline (ridge)")
    if not args.skip_like:
        spec = WorldSpec(image_cap=args.like_cap, parts=8)
        like = build_world(spec, like="CUB")
        like_results = ablate(
            load_config("synthetic", [f"data.path={like}", f"train.epochs={args.like_epochs}"]),
            args.out / f"like_cub_{args.like_epochs}epochs",
            rows=["full"],
            seeds=args.seeds,
        )
        text += (
            f"\n## --like CUB world (real CUB class side, {args.like_cap} images per class, synthetic "
            f"features), config `synthetic`, {args.like_epochs} epochs, selection `final`\n\n"
        )
        text += summary_table(like_results) + baseline_line(like, "baseline (ridge)")
    text += f"\nChance CZSL: default world 10.0%, CUB 2.0%. Wall time: {(time.time() - start) / 60:.1f} min.\n"
    write_text_atomic(args.table, text)
    print(text)


if __name__ == "__main__":
    main()
