#!/usr/bin/env bash
# GPU smoke test: two epochs of CREST on a --like CUB world with 2048-d 14x14 features in bf16,
# then the training and evaluation throughput, then `crest bench` in bf16 and fp32. Needs the
# package installed (make setup, or pip install -e .) and the real class side of CUB
# ($CREST_DATA, default ../shared/data).
#   bash scripts/gpu_smoke.sh            # defaults: 20 images per class, output in /tmp/crest-gpu-smoke
#   CAP=60 OUT=/scratch/smoke bash scripts/gpu_smoke.sh
set -euo pipefail
CREST=${CREST:-crest}
OUT=${OUT:-/tmp/crest-gpu-smoke}
CAP=${CAP:-20}
mkdir -p "$OUT"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
"$CREST" data synth --like CUB --feature-dim 2048 --grid 14 --image-cap "$CAP" --dtype float16 \
  --out "$OUT/cub_like_2048x14x14.h5"
"$CREST" train --config cub --set data.path="$OUT/cub_like_2048x14x14.h5" --set train.epochs=2 \
  --set train.precision=bf16 --set data.num_workers=4 --set train.selection=final --out "$OUT/run"
python - "$OUT/run/metrics.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    print(f"epoch {e['epoch']}: {e['samples_per_s']:.0f} training samples/s, {e['train_seconds']:.1f} s, "
          f"CZSL {100 * e['czsl_acc']:.1f} H {100 * e['gzsl_h']:.1f} (γ={e['gamma']})")
PY
# one training step at the CUB shape, bf16 and fp32: time, FLOPs, MFU against the measured
# matmul peak, memory, inference, streaming from the file above, and the top operators
"$CREST" bench --shape cub --precision bf16 --steps 10 --profile 10 --data "$OUT/cub_like_2048x14x14.h5" \
  --json-out "$OUT/bench_bf16.json"
"$CREST" bench --shape cub --precision fp32 --steps 10 --json-out "$OUT/bench_fp32.json"
