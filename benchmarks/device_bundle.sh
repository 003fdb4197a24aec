#!/usr/bin/env bash
# Build the offline bundle of Ray Tune + Optuna for the lent GPU machine (docs/PERFORMANCE.md, "GPU").
#
# The GPU machine has Python 3.12, torch and most of the project's needs, but no ray, no optuna and
# no network. This script, run HERE (it needs PyPI), makes one archive of the cp312 manylinux x86_64
# wheels of ray[tune]==2.60.0 and optuna==5.0.0 plus every dependency of theirs that the GPU
# image lacks, unpacked into one tree, less the parts of Ray a headless Tune search never opens
# (PRUNE below), re-compressed with xz:
#
#   benchmarks/device_bundle.sh                        # -> .device_bundle/ray-optuna-cp312.tar.xz
#   benchmarks/device_bundle.sh --verify /tmp/py312/bin/python
#
# --verify PY: PY is a Python 3.12 with the GPU image's packages (torch, numpy, pandas, pyarrow, ...)
# but no ray/optuna. Before pruning, it runs a 2-trial search (tune/search.py, synthetic data, CPU)
# on the whole unpacked tree with every file's access time set to 2000-01-01, lists the files whose
# access time moved (any open, read, mmap or exec by any process: the driver, Ray's gcs_server,
# raylet, agents and workers), and refuses to build if a pruned path is among them. After
# building, it unpacks the archive into a fresh folder and runs the same search from it.
#
# On the GPU machine (the device tool runs in the repository root; .device_bundle travels as carry):
#   S=$(mktemp -d) && tar -xJf .device_bundle/ray-optuna-cp312.tar.xz -C "$S" && export PYTHONPATH="$S:$PWD"
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

RAY_VERSION=2.60.0
OPTUNA_VERSION=5.0.0
PY=${PYTHON:-python3}  # any Python with pip, used only to resolve and download (network)
DEST=.device_bundle
ARCHIVE=ray-optuna-cp312.tar.xz
VERIFY_PY=""
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --verify) VERIFY_PY=$2; shift 2 ;;
        --out) DEST=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "device_bundle.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

# The GPU image's Python packages, as /work/.library/device/KINDS.md lists them ("Python packages
# already there", read on a machine running the image on 2026-11-17). These are never bundled.
IMAGE_HAS="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas
nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile
nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless
optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip
pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server
tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq
torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp"

# Parts of the Ray wheel that a headless Tune search never opens (checked by --verify, see above):
PRUNE=(
    ray/jars                     # ray_dist.jar: Java workers and cross-language calls (34 MB)
    ray/dashboard/client/build   # the dashboard's web front end; only the dashboard head serves it, and
                                 # tune/runner/cluster.py starts Ray with include_dashboard=False
    ray/rllib                    # reinforcement learning library
    ray/serve                    # model serving
    ray/llm                      # LLM serving/batch inference
)

PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 "${PLATFORMS[@]}")

WORK=$(mktemp -d /tmp/device-bundle.XXXXXX)
cleanup() { if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
mkdir -p "$DEST" "$WORK/wheels" "$WORK/site"

echo "== resolving ray[tune]==$RAY_VERSION optuna==$OPTUNA_VERSION for cp312 manylinux x86_64"
"$PY" -m pip install --quiet --dry-run --ignore-installed --target "$WORK/never" "${TARGET[@]}" \
    --report "$WORK/report.json" "ray[tune]==$RAY_VERSION" "optuna==$OPTUNA_VERSION" 2> >(grep -v "is ignored" >&2)

# What to bundle: from the two roots, follow the requirements (markers for CPython 3.12 on Linux,
# ray's "tune" extra) of every package the image lacks; a package the image has, and whatever it
# needs in turn, is the image's business.
IMAGE_HAS="$IMAGE_HAS" "$PY" - "$WORK/report.json" > "$WORK/bundle.txt" <<'EOF'
import json, os, re, sys
try:
    from packaging.requirements import Requirement
except ImportError:  # pip's own copy
    from pip._vendor.packaging.requirements import Requirement

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

image = {norm(n) for n in os.environ["IMAGE_HAS"].split()}
found = {norm(item["metadata"]["name"]): item["metadata"] for item in json.load(open(sys.argv[1]))["install"]}
env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
       "implementation_name": "cpython", "platform_python_implementation": "CPython"}
todo, chosen = [("ray", {"tune"}), ("optuna", set())], {}
while todo:
    name, extras = todo.pop()
    if name in image or name in chosen:
        continue
    meta = found[name]
    chosen[name] = meta["version"]
    for text in meta.get("requires_dist", []):
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in (extras or {""})):
            todo.append((norm(req.name), set(req.extras)))
for name in sorted(chosen):
    print(f"{name}=={chosen[name]}")
EOF
echo "bundling: $(tr '\n' ' ' < "$WORK/bundle.txt")"

echo "== downloading the wheels"
"$PY" -m pip download --quiet --no-deps "${TARGET[@]}" -d "$WORK/wheels" -r "$WORK/bundle.txt" \
    2> >(grep -v "is ignored" >&2)
for wheel in "$WORK"/wheels/*.whl; do
    unzip -q -o "$wheel" -d "$WORK/site"
done
if ls -d "$WORK"/site/*.data >/dev/null 2>&1; then
    echo "device_bundle.sh: a wheel has a .data folder; unpacking it is not handled" >&2
    ls -d "$WORK"/site/*.data >&2
    exit 1
fi
echo "unpacked: $(du -sm "$WORK/site" | cut -f1) MiB"

# One search, run with PYTHONPATH=$1, its data and outputs under $2.
search() {
    local site=$1 out=$2
    mkdir -p "$out"
    env PYTHONPATH="$site:$REPO" OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1 \
        "$VERIFY_PY" -c "import ray, optuna, ray.tune; print('ray', ray.__version__, 'optuna', optuna.__version__)"
    env PYTHONPATH="$site:$REPO" OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1 \
        "$VERIFY_PY" -m joyful.data.synthetic --out "$out/syn.pkl" --scale 0.2 > /dev/null
    env PYTHONPATH="$site:$REPO" OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1 \
        "$VERIFY_PY" tune/search.py --dataset synthetic --data "$out/syn.pkl" --num-samples 2 --max-epochs 1 \
        --grace-period 1 --no-rerun --confirm-top 0 --storage-path "$out/ray" --results-dir "$out/results" \
        --quiet > "$out/search.log" 2>&1 || { tail -30 "$out/search.log" >&2; return 1; }
    grep -E "^(Ray:|== synthetic|synthetic:)" "$out/search.log" || true
}

if [ -n "$VERIFY_PY" ]; then
    echo "== verify: a 2-trial search on the whole tree, recording which files any process opens"
    find "$WORK/site" -type f -exec touch -a -h -d 2000-01-01T00:00:00 {} +
    search "$WORK/site" "$WORK/verify-full"
    (cd "$WORK/site" && find . -type f -newerat 2000-01-02 | sed 's|^\./||' | sort) > "$DEST/opened_files.txt"
    echo "files opened during the search: $(wc -l < "$DEST/opened_files.txt") of $(find "$WORK/site" -type f | wc -l)"
    if ! grep -q '^ray/_raylet.so$' "$DEST/opened_files.txt"; then
        echo "device_bundle.sh: access times are not recorded here (ray/_raylet.so not seen); cannot verify" >&2
        exit 1
    fi
    bad=0
    for path in "${PRUNE[@]}"; do
        hits=$(grep -c "^$path/" "$DEST/opened_files.txt" || true)
        echo "  $path: $hits file(s) opened"
        if [ "$hits" != 0 ]; then bad=1; grep "^$path/" "$DEST/opened_files.txt" | head -5; fi
    done
    [ "$bad" = 0 ] || { echo "device_bundle.sh: a pruned path was opened; not building" >&2; exit 1; }
fi

echo "== pruning"
for path in "${PRUNE[@]}"; do
    echo "  $path: $(du -sm "$WORK/site/$path" | cut -f1) MiB"
    rm -rf "${WORK:?}/site/$path"
done
find "$WORK/site" -name __pycache__ -type d -prune -exec rm -rf {} +
{
    echo "ray-optuna bundle for CPython 3.12 manylinux x86_64, built $(date -u +%Y-%m-%dT%H:%M:%SZ) by benchmarks/device_bundle.sh"
    echo "packages:"; sed 's/^/  /' "$WORK/bundle.txt"
    echo "left out of ray:"; printf '  %s\n' "${PRUNE[@]}"
} > "$WORK/site/BUNDLE_MANIFEST.txt"
cp "$WORK/site/BUNDLE_MANIFEST.txt" "$DEST/MANIFEST.txt"
echo "pruned tree: $(du -sm "$WORK/site" | cut -f1) MiB"

echo "== compressing (xz -9, one thread)"
tar -C "$WORK/site" --owner=0 --group=0 --sort=name -cf - . | xz -9 -T1 > "$WORK/$ARCHIVE"
mv "$WORK/$ARCHIVE" "$DEST/$ARCHIVE"
bundle=$(stat -c %s "$DEST/$ARCHIVE")
# (files deleted in the working tree but still tracked are skipped)
tracked=$(git ls-files -z | xargs -0 du -cb 2> /dev/null | tail -1 | cut -f1 || true)
echo "bundle: $DEST/$ARCHIVE, $bundle bytes ($(( bundle / 1048576 )) MiB), sha256 $(sha256sum "$DEST/$ARCHIVE" | cut -c1-16)"
echo "tracked tree: $tracked bytes; together $(( (bundle + tracked) / 1048576 )) MiB (target <= 60 MiB)"

if [ -n "$VERIFY_PY" ]; then
    echo "== verify: the same search from the unpacked archive"
    mkdir -p "$WORK/unpacked"
    start=$(date +%s%N)
    tar -xJf "$DEST/$ARCHIVE" -C "$WORK/unpacked"
    echo "unpacked in $(( ($(date +%s%N) - start) / 1000000 )) ms"
    search "$WORK/unpacked" "$WORK/verify-pruned"
    echo "verify: OK"
fi
