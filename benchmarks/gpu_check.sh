#!/usr/bin/env bash
# The GPU checks, as ONE call of the device tool (docs/PERFORMANCE.md, "GPU"): at most 9 minutes on
# one GPU, at most 8 files under $OUT. Also a CPU dry run of the same steps at small sizes.
#
#   benchmarks/gpu_check.sh                    # on the GPU machine: PYTHON=python3, OUT from the device tool
#   PYTHON=/tmp/py312/bin/python OUT=/tmp/dry benchmarks/gpu_check.sh --device cpu   # dry run here
#
# 0. environment: installs the bundle (.device_bundle/ray-optuna-cp312.tar.xz, made by
#    benchmarks/device_bundle.sh) into a temporary folder on PYTHONPATH, unless ray and optuna
#    import already; prints versions and checks the bundled packages' requirements against the image;
# a. training throughput and a profile of one epoch, vectorised vs the per-utterance reference,
#    fp32 and --precision bf16, peak GPU memory per trial (python -m benchmarks --sections
#    training,profile), autofusion first; the hierarchical fusion and a profiled epoch with
#    self_pool_chunk=256 (against the default 16) run after b and c, in the time that is left;
# b. fractional packing: 4 real trials at --gpus-per-trial 0.25 (tune/search.py), every trial
#    process's GPU memory sampled by nvidia-smi once a second;
# c. search throughput at 1, 2, 4 and 8 trials per GPU on IEMOCAP-size synthetic data (the real
#    Tuner of tune/search.py, ASHA inert): trials per GPU-hour, GPU utilisation and memory sampled
#    by nvidia-smi every 0.5 s.
# Each part runs under its own `timeout` (SIGINT first: Tune stops cleanly); the parts' budgets add up
# to 94% of the whole run's deadline (GPU_CHECK_SECONDS, 540 s on cuda), and a part gets no more than
# what is left of it. The bundle is unpacked with xz, or Python's lzma where xz is missing.
#
# Files under $OUT (8): environment.log, training.json, training.log, packing.log,
# packing_nvidia_smi.csv, throughput.json, throughput.log, throughput_nvidia_smi.csv.
#
# --device cpu: the same steps on CPU at small sizes (quick training section, small synthetic data,
# search throughput on a logical GPU that Ray schedules but the trials do not use); nvidia-smi
# sampling is skipped where nvidia-smi is absent, with a line saying so.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DEVICE=cuda
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check.sh: --device cuda or cpu" >&2; exit 2 ;; esac

PY=${PYTHON:-python3}  # the GPU image's python3 (/opt/torch/.venv/bin/python3); it has no .venv
OUT=${OUT:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
BUNDLE=${BUNDLE:-$REPO/.device_bundle/ray-optuna-cp312.tar.xz}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu_check_work.XXXXXX)  # bundle, data and Ray experiments; only figures go to $OUT
SMI=""
trap 'if [ -n "$SMI" ]; then kill "$SMI" 2>/dev/null; fi; rm -rf "$WORK"' EXIT

START=$(date +%s)
# The whole run's deadline, GPU_CHECK_SECONDS after the start (default 540 on cuda, 1800 on cpu); the
# parts' budgets are shares of it (94% together): a autofusion + profile 25%, b 17%, c 32%,
# a hierarchical 14%, a chunk-256 profile 6%.
if [ "$DEVICE" = cuda ]; then TOTAL=${GPU_CHECK_SECONDS:-540}; else TOTAL=${GPU_CHECK_SECONDS:-1800}; fi
DEADLINE=$((START + TOTAL))
BUDGET_A=$((TOTAL * 250 / 1000)); BUDGET_B=$((TOTAL * 170 / 1000)); BUDGET_C=$((TOTAL * 320 / 1000))
BUDGET_A2=$((TOTAL * 140 / 1000)); BUDGET_A3=$((TOTAL * 60 / 1000))
if [ "$DEVICE" = cuda ]; then
    BENCH_SIZE=(); DATA_SIZE=(--scale 1.0)  # IEMOCAP-4 size, the default dims (a100 t768 v512)
    EPOCHS=2; PACK_GPUS=0.25; PACK_CPUS=2
else
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
    BENCH_SIZE=(--quick); DATA_SIZE=(--scale 0.1 --dims a=16,t=64,v=32)
    EPOCHS=1; PACK_GPUS=0; PACK_CPUS=1  # no GPU to share on CPU: the same 4 trials, 4 at a time
fi
HAVE_SMI=0
if command -v nvidia-smi > /dev/null 2>&1; then HAVE_SMI=1; fi

# seconds a part may run: its budget, or what is left before the deadline (less 10 s), if less
allow() {
    local left=$((DEADLINE - $(date +%s) - 10))
    if [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}
# run a part under its time limit; SIGINT first so that Tune saves and stops, SIGKILL 20 s later
limited() {
    local seconds=$1; shift
    if [ "$seconds" -le 5 ]; then echo "skipped: no time left before the deadline"; return 124; fi
    timeout -s INT -k 20 "$seconds" "$@"
    local status=$?
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then echo "TIMED OUT after $seconds s: $*"; fi
    return "$status"
}
elapsed() { echo "$(( $(date +%s) - START )) s"; }

say() { echo "$*" | tee -a "$OUT/environment.log"; }
say "== 0. environment ($DEVICE), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if "$PY" -c "import ray, optuna" > /dev/null 2>&1; then
    say "ray and optuna already import with $PY; the bundle is not unpacked"
elif [ -f "$BUNDLE" ]; then
    t0=$(date +%s%N)
    mkdir -p "$WORK/site"
    if command -v xz > /dev/null 2>&1; then
        tar -xJf "$BUNDLE" -C "$WORK/site" || { say "cannot unpack $BUNDLE"; exit 1; }
    else  # no xz program: Python's own lzma
        "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' \
            "$BUNDLE" "$WORK/site" || { say "cannot unpack $BUNDLE"; exit 1; }
    fi
    export PYTHONPATH="$WORK/site"
    say "bundle $BUNDLE ($(stat -c %s "$BUNDLE") bytes) unpacked in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
else
    say "no ray/optuna for $PY and no bundle at $BUNDLE (run benchmarks/device_bundle.sh where PyPI is reachable)"
    exit 1
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$REPO"
"$PY" - "$DEVICE" "$WORK/site" <<'EOF' 2>&1 | tee -a "$OUT/environment.log"
import os, platform, sys
from importlib import metadata
import optuna, ray, torch
print(f"python {platform.python_version()} ({sys.executable}), {os.cpu_count()} CPUs")
print(f"torch {torch.__version__}, ray {ray.__version__} ({os.path.dirname(ray.__file__)}), optuna {optuna.__version__}")
if sys.argv[1] == "cuda":
    assert torch.cuda.is_available(), "no CUDA device visible"
    p = torch.cuda.get_device_properties(0)
    print(f"CUDA {torch.version.cuda}, {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs")
else:
    print(f"CPU dry run (torch.cuda.is_available() = {torch.cuda.is_available()})")
# The bundled packages' own requirements, checked against what this Python has (the image's versions).
site = sys.argv[2]
if os.path.isdir(site):
    from packaging.requirements import Requirement
    env = {"extra": ""}
    bundled = sorted(d[:-len(".dist-info")] for d in os.listdir(site) if d.endswith(".dist-info"))
    problems = []
    for folder in bundled:
        dist = metadata.distribution(folder.rsplit("-", 1)[0])
        for text in dist.requires or []:
            req = Requirement(text)
            extras = {"tune"} if dist.metadata["Name"] == "ray" else set()
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            try:
                have = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{dist.metadata['Name']} needs {req}: missing")
                continue
            if req.specifier and not req.specifier.contains(have, prereleases=True):
                problems.append(f"{dist.metadata['Name']} needs {req}: have {have}")
    print(f"bundled: {', '.join(bundled)}")
    print("requirements: " + ("all met" if not problems else "NOT MET: " + "; ".join(problems)))
for name in ("numpy", "pandas", "pyarrow", "protobuf", "packaging", "typing-extensions", "torch-geometric"):
    try:
        print(f"  {name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"  {name}: not installed")
EOF
[ "${PIPESTATUS[0]}" = 0 ] || { say "environment check failed"; exit 1; }
if [ "$HAVE_SMI" = 1 ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee -a "$OUT/environment.log"
else
    echo "nvidia-smi not found: no GPU memory or utilisation sampling in this run" | tee -a "$OUT/environment.log"
fi
echo "[$(elapsed)] environment done"

echo "== a. training throughput and profile ($DEVICE): autofusion"
limited "$(allow $BUDGET_A)" "$PY" -m benchmarks "${BENCH_SIZE[@]}" --sections training,profile --fusions autofusion \
    --device "$DEVICE" --json "$WORK/training_autofusion.json" 2>&1 | tee "$OUT/training.log"
echo "[$(elapsed)] a (autofusion) done"

echo "== b. fractional packing: 4 trials at --gpus-per-trial $PACK_GPUS"
"$PY" -m joyful.data.synthetic --out "$WORK/search_data.pkl" "${DATA_SIZE[@]}" > /dev/null
{
    echo "data: synthetic ${DATA_SIZE[*]}, $(stat -c %s "$WORK/search_data.pkl") bytes"
    if [ "$DEVICE" = cpu ]; then echo "cpu dry run: --gpus-per-trial 0 (Ray sees no GPU here)"; fi
    if [ "$HAVE_SMI" = 1 ]; then
        nvidia-smi --query-compute-apps=timestamp,pid,used_memory --format=csv -l 1 > "$OUT/packing_nvidia_smi.csv" &
        SMI=$!
    else
        echo "nvidia-smi not found: no per-process GPU memory sampling"
    fi
    t0=$(date +%s)
    limited "$(allow $BUDGET_B)" "$PY" tune/search.py --dataset synthetic --data "$WORK/search_data.pkl" \
        --space benchmarks/spaces/iemocap_size.yaml --num-samples 4 --max-epochs "$EPOCHS" --grace-period "$EPOCHS" \
        --cpus-per-trial "$PACK_CPUS" --gpus-per-trial "$PACK_GPUS" --max-concurrent 4 --no-rerun --confirm-top 0 \
        --storage-path "$WORK/ray" --name packing --results-dir "$WORK/results" --quiet 2>&1 | tail -20
    echo "search wall time (with Ray start): $(( $(date +%s) - t0 )) s"
    if [ -n "$SMI" ]; then kill "$SMI" 2>/dev/null; wait "$SMI" 2>/dev/null; SMI=""; fi
    if [ -f "$OUT/packing_nvidia_smi.csv" ]; then
        "$PY" - "$OUT/packing_nvidia_smi.csv" <<'EOF'
import csv, sys
peaks = {}
for row in csv.reader(open(sys.argv[1])):
    used = row[2].split() if len(row) >= 3 else []  # e.g. " 1234 MiB"; the header says "used_memory [MiB]"
    if used and used[0].isdigit():
        peaks[row[1].strip()] = max(peaks.get(row[1].strip(), 0), int(used[0]))
print(f"peak GPU memory per process (MiB): {peaks}; processes seen at once is what packing allows")
EOF
    fi
} | tee "$OUT/packing.log"
echo "[$(elapsed)] b done"

echo "== c. search throughput at 1, 2, 4 and 8 trials per GPU"
C_SECONDS=$(allow $BUDGET_C)
limited "$C_SECONDS" "$PY" - "$DEVICE" "$WORK/search_data.pkl" "$WORK/ray" "$OUT" "$EPOCHS" "$(( $(date +%s) + C_SECONDS ))" \
    <<'EOF' 2>&1 | tee "$OUT/throughput.log"
"""Trials per GPU-hour at k = 1, 2, 4, 8 trials per GPU: k*2 trials, k at a time, each with 1/k GPU.

One private Ray instance for all four levels; every level is a fresh Tuner built by the search's
build_tuner (the arm searcher, FIFO scheduler: no trial stops early).
Wall time is Tuner.fit; trials per GPU-hour = 3600 * trials / wall (one GPU). GPU utilisation and
memory come from nvidia-smi every 0.5 s, averaged over each level's window.
"""
import json, os, shutil, subprocess, sys, threading, time

device, data, storage, out, epochs, deadline = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
LEVELS, PER_SLOT = (1, 2, 4, 8), 2
cpus = max(1, min(2, (os.cpu_count() or 1) // max(LEVELS)))
space = "benchmarks/spaces/iemocap_size.yaml"


class GpuSampler:
    def __init__(self, path):
        self.rows, self.proc = [], None
        if shutil.which("nvidia-smi") is None:
            print("nvidia-smi not found: no GPU utilisation sampling")
            return
        self.file = open(path, "w")
        self.file.write("unix_time,utilization_gpu_pct,memory_used_mib\n")
        self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                      "--format=csv,noheader,nounits", "-lms", "500"],
                                     stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                row = (time.time(), int(parts[0]), int(parts[1]))
                self.rows.append(row)
                self.file.write("%.2f,%d,%d\n" % row)
                self.file.flush()

    def window(self, t0, t1):
        rows = [r for r in self.rows if t0 <= r[0] <= t1]
        if not rows:
            return {}
        util = [r[1] for r in rows]
        return {"samples": len(rows), "gpu_util_mean_pct": sum(util) / len(util), "gpu_util_max_pct": max(util),
                "gpu_util_busy_share": sum(u > 0 for u in util) / len(util),
                "gpu_memory_max_mib": max(r[2] for r in rows)}

    def stop(self):
        if self.proc:
            self.proc.terminate()


import ray
from tune.runner.cluster import check_trial_fits
from pathlib import Path
from benchmarks.searches import plan_search
from tune.runner.tuner import build_tuner
from tune.study.opening import open_study

os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
extra = {} if device == "cuda" else {"num_gpus": 1}  # cpu dry run: a logical GPU, trials train on CPU
ray.init(address="local", num_cpus=max(os.cpu_count() or 1, cpus * max(LEVELS)), include_dashboard=False,
         logging_level="WARNING", log_to_driver=False, configure_logging=True, **extra)
print(f"Ray resources: {ray.cluster_resources()}; {cpus} CPU(s) per trial, {PER_SLOT} trials per slot, "
      f"{epochs} epoch(s) per trial")
sampler = GpuSampler(os.path.join(out, "throughput_nvidia_smi.csv"))
result = {"device": device, "epochs_per_trial": epochs, "cpus_per_trial": cpus, "trials_per_slot": PER_SLOT,
          "data": data, "data_bytes": os.path.getsize(data), "levels": {}}
last_wall = 20.0
try:
    for k in LEVELS:
        left = deadline - time.time() - 15
        if left < 1.5 * last_wall * (1 if k == 1 else 1.3):
            print(f"k={k}: skipped, {left:.0f} s left of this part's budget (the last level took {last_wall:.0f} s)")
            result["levels"][str(k)] = {"skipped": f"{left:.0f} s left"}
            continue
        n, gpus = PER_SLOT * k, 1.0 / k
        plan = plan_search(data, Path(space), Path(storage), f"throughput-k{k}", num_samples=n, max_epochs=epochs,
                           grace_period=epochs, reduction_factor=2, concurrency=k, cpus_per_trial=cpus,
                           gpus_per_trial=gpus, scheduler="fifo")
        check_trial_fits(cpus, gpus)
        open_study(plan)
        tuner, _ = build_tuner(plan, k)
        t0 = time.time()
        grid = tuner.fit()
        t1 = time.time()
        wall = last_wall = t1 - t0
        trials, errors = [], 0
        for r in grid:
            frame = r.metrics_dataframe
            if r.error or frame is None or not len(frame):
                errors += 1
                continue
            trials.append({"epochs": int(frame["epoch"].max()), "train_seconds": float(frame["train_seconds"].sum()),
                           "trial_seconds": float(frame["time_total_s"].max())})
        done = len(trials)
        level = {"trials": n, "finished": done, "errored": errors, "gpus_per_trial": gpus, "wall_seconds": wall,
                 "trials_per_gpu_hour": 3600 * done / wall,
                 "mean_trial_seconds": sum(t["trial_seconds"] for t in trials) / max(done, 1),
                 "mean_train_seconds_per_epoch": sum(t["train_seconds"] for t in trials) / max(1, sum(t["epochs"] for t in trials)),
                 "training_share_of_slots": sum(t["train_seconds"] for t in trials) / (k * wall),
                 **sampler.window(t0, t1)}
        result["levels"][str(k)] = level
        util = (f", GPU busy {level['gpu_util_mean_pct']:.0f}% mean / {level['gpu_util_max_pct']}% max, "
                f"{level['gpu_memory_max_mib']:,} MiB max") if "gpu_util_mean_pct" in level else ""
        print(f"k={k}: {done}/{n} trials in {wall:.1f} s -> {level['trials_per_gpu_hour']:.0f} trials/GPU-hour; "
              f"trial {level['mean_trial_seconds']:.1f} s, epoch train {level['mean_train_seconds_per_epoch']:.2f} s, "
              f"training share {level['training_share_of_slots']:.2f}{util}")
        with open(os.path.join(out, "throughput.json"), "w") as f:
            json.dump(result, f, indent=1)
finally:
    sampler.stop()
    ray.shutdown()
    with open(os.path.join(out, "throughput.json"), "w") as f:
        json.dump(result, f, indent=1)
EOF
echo "[$(elapsed)] c done"

echo "== a, continued: hierarchical fusion, then self-pooling chunk 256 (the profile above used 16)"
{
    limited "$(allow $BUDGET_A2)" "$PY" -m benchmarks "${BENCH_SIZE[@]}" --sections training --fusions hierarchical \
        --device "$DEVICE" --json "$WORK/training_hierarchical.json" 2>&1
    limited "$(allow $BUDGET_A3)" "$PY" -m benchmarks "${BENCH_SIZE[@]}" --sections profile --device "$DEVICE" \
        --set self_pool_chunk=256 --json "$WORK/profile_chunk256.json" > "$WORK/profile_chunk256.log" 2>&1 \
        || tail -5 "$WORK/profile_chunk256.log"
    # One training.json: the autofusion run's, with the hierarchical run's training section and the
    # chunk-256 profile added (each run's own meta kept under "runs").
    "$PY" - "$OUT/training.json" "$DEVICE" "$WORK/training_autofusion.json" "$WORK/training_hierarchical.json" \
        "$WORK/profile_chunk256.json" <<'EOF'
import json, os, sys
out, device, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = {name: json.load(open(path)) for name, path in zip(("autofusion", "hierarchical", "chunk256"), paths)
        if os.path.exists(path)}
merged = {"training": {}, "runs": {name: r.get("meta", {}) for name, r in runs.items()}}
for name in ("autofusion", "hierarchical"):
    merged["training"].update(runs.get(name, {}).get("training", {}))
if "profile" in runs.get("autofusion", {}):
    merged["profile"] = runs["autofusion"]["profile"]
if "chunk256" in runs:
    merged["profile_self_pool_chunk_256"] = runs["chunk256"]["profile"]
json.dump(merged, open(out, "w"), indent=1)
print(f"wrote {out}: training of {', '.join(merged['training']) or 'no fusion'}, "
      f"profile {'yes' if 'profile' in merged else 'no'}, chunk-256 profile {'yes' if 'chunk256' in runs else 'no'}")
total = None
if device == "cuda":
    import torch
    total = torch.cuda.get_device_properties(0).total_memory / 2**20
for fusion, r in merged["training"].items():
    vec, bf16 = r["vectorised"], r.get("bf16") or {}
    line = (f"{fusion}: vectorised {vec['epoch_utterances_per_s']:,.0f} utt/s, train speed-up over the reference "
            f"{r['train_epoch_speedup']:.1f}x")
    if bf16:
        line += (f"; bf16 {bf16['epoch_utterances_per_s']:,.0f} utt/s ({bf16['train_epoch_speedup_over_fp32']:.2f}x fp32, "
                 f"loss rel. diff {bf16['loss_rel_diff_vs_fp32']:.1e})")
    print(line)
    if total:
        peak = vec["cuda_peak_reserved_mib"]
        verdict = "fits" if peak <= total / 4 else "does NOT fit"
        print(f"{fusion}: one trial reserves at most {peak:,.0f} MiB of {total:,.0f} MiB "
              f"(allocated {vec['cuda_peak_allocated_mib']:,.0f}); {int(total // peak)} trials would fit by memory; "
              f"gpus_per_trial 0.25 {verdict}")
for label, key in (("chunk 16 (default)", "profile"), ("chunk 256", "profile_self_pool_chunk_256")):
    if key in merged:
        p = merged[key]
        print(f"{label}: profiled epoch {p['epoch_seconds_profiled']:.2f} s, self-pooling forward "
              f"{p['self_pool_seconds']['forward']:.3f} s, backward {p['self_pool_seconds']['backward']:.3f} s")
EOF
} 2>&1 | tee -a "$OUT/training.log"
echo "[$(elapsed)] a (hierarchical, chunk 256) done"
echo "== summary ($DEVICE, $(elapsed))"
grep -hE "^(requirements|CUDA|torch )" "$OUT/environment.log"
grep -hE "utt/s|trials would fit|^chunk|TIMED OUT|skipped" "$OUT/training.log"
grep -hE "trials - |wall time|peak GPU memory|TIMED OUT|skipped" "$OUT/packing.log"
grep -hE "^k=|TIMED OUT|Error" "$OUT/throughput.log"
missing=""
for fusion in autofusion hierarchical; do grep -q "^$fusion: vectorised" "$OUT/training.log" || missing+=" training($fusion)"; done
grep -q "^chunk 256: " "$OUT/training.log" || missing+=" profile(chunk 256)"
grep -q "4 trials - 4 completed" "$OUT/packing.log" || missing+=" packing(4 completed trials)"
for k in 1 2 4 8; do grep -qE "^k=$k: [0-9]+/" "$OUT/throughput.log" || missing+=" throughput(k=$k)"; done
if [ -n "$missing" ]; then echo "INCOMPLETE:$missing"; exit 1; fi
echo "complete: every part finished"
echo "done: $OUT ($(ls "$OUT" | wc -l) files: $(ls "$OUT" | tr '\n' ' '))"
