#!/usr/bin/env bash
# GPU smoke test and speed record (≤ 8 minutes on one H100/H200), in four parts:
#   1. a --like CUB world with 2048×14×14 float16 features (CAP images per class);
#   2. `crest bench` in bf16: one training step (time, FLOPs, MFU against the bf16 matmul peak
#      measured in the same process, memory, the top operators), then EPOCHS real epochs on the
#      world under each data.cache mode (stream, ram, device) with the projected 200-epoch
#      CUB run (7,057 trainval + 4,731 test images);
#   3. the same step in bf16 under torch.compile, and in fp32;
#   4. $OUT/gpu_smoke.json (everything) and $OUT/gpu_smoke.md (the table for docs/performance.md).
# Needs the package installed (make setup, or pip install -e .) and CUB's class side
# ($CREST_DATA, default ../shared/data). Runs unchanged on the CPU for a dry run:
#   CAP=2 GRID=7 SHAPE=cub7 STEPS=1 EPOCHS=1 bash scripts/gpu_smoke.sh
set -euo pipefail
CREST=${CREST:-crest}
PYTHON=${PYTHON:-python}
OUT=${OUT:-/tmp/crest-gpu-smoke}
CAP=${CAP:-16}        # images per class: 3,200 images, 2.5 GB of float16 features at 14×14
GRID=${GRID:-14}
SHAPE=${SHAPE:-cub}   # crest bench shape of the step measurements (cub = 14×14)
STEPS=${STEPS:-10}
EPOCHS=${EPOCHS:-3}
mkdir -p "$OUT"
started=$(date +%s)
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

WORLD="$OUT/cub_like_2048x${GRID}x${GRID}_cap${CAP}.h5"
[ -f "$WORLD" ] || "$CREST" data synth --like CUB --feature-dim 2048 --grid "$GRID" \
  --image-cap "$CAP" --dtype float16 --out "$WORLD"
echo "world ready after $(( $(date +%s) - started )) s"

"$CREST" bench --shape "$SHAPE" --precision bf16 --steps "$STEPS" --profile 10 \
  --data "$WORLD" --epochs "$EPOCHS" --cache stream ram device --json-out "$OUT/bench_bf16.json"
"$CREST" bench --shape "$SHAPE" --precision bf16 --steps "$STEPS" --compile \
  --json-out "$OUT/bench_bf16_compiled.json"
"$CREST" bench --shape "$SHAPE" --precision fp32 --steps "$STEPS" --json-out "$OUT/bench_fp32.json"

"$PYTHON" - "$OUT" "$(( $(date +%s) - started ))" <<'PY'
import json, sys
from pathlib import Path
out, wall = Path(sys.argv[1]), int(sys.argv[2])
runs = {name: json.loads((out / f"bench_{name}.json").read_text())
        for name in ("bf16", "bf16_compiled", "fp32")}
lines = [f"Device: {runs['bf16']['device']}; shape {runs['bf16']['shape']} "
         f"({runs['bf16']['regions']} regions), training batch {runs['bf16']['batch']}.", "",
         "| step | ms (median) | samples/s | achieved TFLOP/s | matmul peak TFLOP/s | MFU | peak memory MB |",
         "|---|---|---|---|---|---|---|"]
for name, r in runs.items():
    lines.append(f"| {name} | {r['step_ms_median']:.2f} | {r['train_samples_per_s']:.0f} | "
                 f"{r['achieved_tflops']:.1f} | {r['matmul_peak_tflops']:.1f} | "
                 f"{100 * r['mfu']:.1f} % | {r['peak_memory_mb']:.0f} |")
epochs = runs["bf16"].get("epochs", [])
lines += ["", "| data.cache | images trained / scored | cache fill s | epoch: train s | epoch: eval s "
          "| train samples/s | projected 200-epoch CUB run (min) | ≤ 10 min? |",
          "|---|---|---|---|---|---|---|---|"]
for e in epochs:
    ok = "yes" if e["projected_full_run_minutes"] <= 10 else "no"
    lines.append(f"| {e['mode']} | {e['train_images']} / {e['eval_images']} | {e['cache_seconds']:.1f} | "
                 f"{e['train_seconds']:.2f} | {e['eval_seconds']:.2f} | {e['train_samples_per_s']:.0f} | "
                 f"{e['projected_full_run_minutes']:.1f} | {ok} |")
lines += ["", f"Whole script: {wall} s."]
(out / "gpu_smoke.md").write_text("\n".join(lines) + "\n")
(out / "gpu_smoke.json").write_text(json.dumps({"runs": runs, "wall_seconds": wall}, indent=2))
print("\n".join(lines))
PY
