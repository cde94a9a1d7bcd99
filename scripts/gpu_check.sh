#!/usr/bin/env bash
# GPU checks for revsnn, for a machine with a CUDA GPU; finishes in under 8 minutes (the step
# limits below add up to 460 s).
#
#   1. the CUDA-only tests (pytest -m cuda tests): among them the compiled Triton kernels against
#      PyTorch's CUDA path, bit for bit (tests/test_kernels.py)
#   2. the node benchmark, every node preset, each reversible/binary preset on the PyTorch loops and
#      on the Triton kernels side by side, fp32 and bf16, T = 8 and 32, batch 64, 8192 neurons,
#      with SpikingJelly's LIFNode on its default CUDA implementation; saved bytes, CUDA peak
#      memory and CUDA-event times (MemTracker off: the CUDA peak is the GPU's memory figure)
#      ->  $OUT/node_bench_<gpu>.csv (+ .txt, the printed tables)
#   3. SpikingJelly's LIFNode on its Triton implementation (SJ_LIF_CUDA_IMPLEMENTATION=triton, which
#      SpikingJelly reads at import, hence a run of its own) next to ours on Triton
#      ->  $OUT/node_bench_sj_triton_<gpu>.csv
#   4. one VGG-11 training step (32x32, T = 8, batch 16), every network preset  ->
#      $OUT/network_bench_<gpu>.csv
# Every row names the GPU (device_name) and what ran the node loops (backend: torch, triton, or
# spikingjelly:<its implementation>).
#
# Usage:  scripts/gpu_check.sh            (from anywhere; runs in the repository root)
# Environment:
#   OUT     folder for the outputs (default: data/results)
#   PYTHON  interpreter with torch (CUDA build), triton and the test dependencies
#           (default: .venv/bin/python when present, else python3)
# Exit status: 0 all passed; 1 a step failed or timed out; 3 no CUDA GPU; 4 no usable python/torch.

set -u -o pipefail

cd "$(dirname "$0")/.." || exit 4
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUT_DIR="${OUT:-data/results}"
# the kernels must compile for the GPU here, not run under the CPU interpreter
unset TRITON_INTERPRET
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# Step budgets (seconds); their sum (460) stays under 8 minutes.
CHECK_S=30
PYTEST_S=110
BENCH_S=130
SJ_TRITON_S=50
NETWORK_S=140

die() { echo "gpu_check: $2" >&2; exit "$1"; }

command -v timeout >/dev/null 2>&1 || die 4 "the 'timeout' command (coreutils) is required"
command -v "$PYTHON" >/dev/null 2>&1 || die 4 "python interpreter '$PYTHON' not found (set PYTHON)"

probe=$(timeout "$CHECK_S" "$PYTHON" - <<'PY' 2>&1
import re, sys
try:
    import torch
except Exception as exc:  # report, do not trace
    print(f"cannot import torch: {exc}")
    sys.exit(4)
if not torch.cuda.is_available():
    build = torch.version.cuda or "none (CPU-only build)"
    print(f"no CUDA GPU: torch.cuda.is_available() is False (torch {torch.__version__}, "
          f"CUDA build {build})")
    sys.exit(3)
name = torch.cuda.get_device_name(0)
print(re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu", name, sep="\t")
PY
)
status=$?
case $status in
    0) ;;
    3) die 3 "${probe##*$'\n'}; this script needs a CUDA GPU" ;;
    124) die 4 "probing torch/CUDA took more than ${CHECK_S}s" ;;
    *) die 4 "${probe##*$'\n'}" ;;
esac
probe="${probe##*$'\n'}"
slug="${probe%%$'\t'*}"
gpu="${probe#*$'\t'}"

mkdir -p "$OUT_DIR" || die 4 "cannot create output folder $OUT_DIR"
echo "gpu_check: $gpu (slug $slug); outputs in $OUT_DIR"
failed=()

echo "== [1/4] CUDA tests: pytest -m cuda tests (limit ${PYTEST_S}s)"
timeout "$PYTEST_S" "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider tests 2>&1 \
    | tee "$OUT_DIR/gpu_pytest_${slug}.log"
rc=${PIPESTATUS[0]}
case $rc in
    0) ;;
    5) failed+=("pytest: no CUDA tests were collected") ;;
    124) failed+=("pytest: timed out after ${PYTEST_S}s") ;;
    *) failed+=("pytest: exit status $rc") ;;
esac

# run_bench NAME LIMIT ARGS...: one benchmark with its CSV and printed table in $OUT_DIR
run_bench() {
    local name=$1 limit=$2
    shift 2
    local csv="$OUT_DIR/${name}_${slug}.csv"
    echo "== $name on $gpu -> $csv (limit ${limit}s)"
    timeout "$limit" "$PYTHON" -m revsnn bench "$@" --out "$csv" 2>&1 \
        | tee "$OUT_DIR/${name}_${slug}.txt"
    local rc=${PIPESTATUS[0]}
    case $rc in
        0) ;;
        124) failed+=("$name: timed out after ${limit}s (the CSV holds the blocks finished)") ;;
        *) failed+=("$name: exit status $rc") ;;
    esac
}

NODE_MODES="spikingjelly bptt checkpoint autograd revnet fused binary binary_replay"
echo "== [2/4] node benchmark, PyTorch loops and Triton kernels side by side"
run_bench node_bench "$BENCH_S" nodes --device cuda --dtype float32 bfloat16 --T 8 32 \
    --batch 64 --neurons 8192 --modes $NODE_MODES --backend torch triton \
    --repeats 20 --warmup 3 --no-track-memory

echo "== [3/4] SpikingJelly's LIFNode on its Triton implementation"
export SJ_LIF_CUDA_IMPLEMENTATION=triton
run_bench node_bench_sj_triton "$SJ_TRITON_S" nodes \
    --device cuda --dtype float32 bfloat16 --T 8 --batch 64 --neurons 8192 \
    --modes spikingjelly fused binary --backend triton --repeats 20 --warmup 3 --no-track-memory
unset SJ_LIF_CUDA_IMPLEMENTATION

echo "== [4/4] VGG-11 training step, every network preset (nodes on Triton where they have kernels)"
run_bench network_bench "$NETWORK_S" network --device cuda --arch vgg11 --T 8 --batch 16 \
    --image-size 32 --modes spikingjelly spikingjelly_memopt bptt checkpoint revnet fused \
    fused_nobn binary binary_replay temporal --repeats 3 --warmup 1

if [ ${#failed[@]} -gt 0 ]; then
    printf 'gpu_check: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "gpu_check: all passed (tables in $OUT_DIR, named after $slug)"
