#!/usr/bin/env bash
# GPU checks that no session has run yet (see docs/PERFORMANCE.md, "GPU"). Run from anywhere on a
# CUDA machine with the project's virtual environment; about 5-8 minutes on one GPU.
#
#   benchmarks/gpu_check.sh                 # writes benchmarks/gpu/*.json, *.log and results/
#   OUT=/tmp/gpu PYTHON=.venv/bin/python benchmarks/gpu_check.sh
#
# 1. training throughput on cuda, vectorised vs the per-utterance reference, IEMOCAP-4 size
#    (reference on 1 train batch), with the same-results check and peak GPU memory per trial;
#    plus a torch.profiler profile of one cuda epoch (CPU-side times);
# 2. fractional packing: 4 real Ray trials at --gpus-per-trial 0.25 on one GPU, with the GPU
#    memory of every trial process sampled by nvidia-smi once a second;
# 3. the self-pooling chunk on GPU: a profiled epoch with self_pool_chunk 256 against the default 16;
# 4. bf16: the training section also runs the vectorised path with --precision bf16 (speed-up over
#    fp32 and the relative loss difference), so step 1 covers it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-benchmarks/gpu}
mkdir -p "$OUT"
WORK=$(mktemp -d)  # data and Ray experiments (large); only logs and figures go to $OUT
SMI=""
trap 'if [ -n "$SMI" ]; then kill "$SMI" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'EOF' | tee "$OUT/environment.log"
import torch
assert torch.cuda.is_available(), "no CUDA device visible"
p = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {p.name}, {p.total_memory / 2**30:.0f} GiB")
EOF

echo "== 1. training throughput and profile on cuda"
"$PY" -m benchmarks --sections training,profile --device cuda --json "$OUT/training_cuda.json" \
    2> "$OUT/training_cuda.stderr" | tee "$OUT/training_cuda.log"
"$PY" - "$OUT/training_cuda.json" <<'EOF' | tee -a "$OUT/training_cuda.log"
import json, sys
import torch
results = json.load(open(sys.argv[1]))
total = torch.cuda.get_device_properties(0).total_memory / 2**20
for fusion, r in results["training"].items():
    peak = r["vectorised"]["cuda_peak_reserved_mib"]
    verdict = "fits" if peak <= total / 4 else "does NOT fit"
    print(f"{fusion}: one trial reserves at most {peak:,.0f} MiB of {total:,.0f} MiB; "
          f"{int(total // peak)} trials would fit by memory; gpus_per_trial 0.25 {verdict}")
EOF

echo "== 2. fractional packing: 4 trials at 0.25 GPU each"
"$PY" -m joyful.data.synthetic --out "$WORK/iemocap_size.pkl" --scale 1.0
nvidia-smi --query-compute-apps=timestamp,pid,used_memory --format=csv -l 1 > "$OUT/packing_nvidia_smi.csv" &
SMI=$!
"$PY" tune/search.py --dataset synthetic --data "$WORK/iemocap_size.pkl" --space benchmarks/spaces/iemocap_size.yaml \
    --num-samples 4 --max-epochs 2 --grace-period 2 --cpus-per-trial 2 --gpus-per-trial 0.25 --max-concurrent 4 \
    --no-rerun --storage-path "$WORK/ray" --name packing --results-dir "$OUT/results" --quiet \
    2>&1 | tail -20 | tee "$OUT/packing.log"
kill "$SMI" 2>/dev/null || true
"$PY" - "$OUT/packing_nvidia_smi.csv" <<'EOF' | tee -a "$OUT/packing.log"
import csv, sys
peaks = {}
for row in csv.reader(open(sys.argv[1])):
    used = row[2].split() if len(row) >= 3 else []  # e.g. " 1234 MiB"; the header says "used_memory [MiB]"
    if not used or not used[0].isdigit():
        continue
    peaks[row[1].strip()] = max(peaks.get(row[1].strip(), 0), int(used[0]))
print(f"peak GPU memory per process (MiB): {peaks}")
EOF
echo "== 3. self-pooling chunk 256 on cuda (compare epoch_seconds_profiled with training_cuda.json's profile)"
"$PY" -m benchmarks --sections profile --device cuda --set self_pool_chunk=256 --json "$OUT/profile_chunk256.json" \
    2> "$OUT/profile_chunk256.stderr" | tee "$OUT/profile_chunk256.log"
echo "done: $OUT"
