#!/usr/bin/env bash
# GPU checks for revsnn, for a machine with a CUDA GPU; finishes in under 8 minutes.
#
#   1. the CUDA-only tests:      pytest -m cuda tests
#   2. the node benchmark on the GPU, fp32 and bf16, every mode side by side:
#      python -m revsnn bench nodes --device cuda ...  ->  $OUT/node_bench_<gpu-name-slug>.csv
#      (rows carry the GPU's name in device_name; the printed table goes to the .txt next to it)
#
# Usage:  scripts/gpu_check.sh            (from anywhere; runs in the repository root)
# Environment:
#   OUT     folder for the outputs (default: data)
#   PYTHON  interpreter with torch (CUDA build) and the test dependencies
#           (default: .venv/bin/python when present, else python3)
# Exit status: 0 all passed; 1 a step failed or timed out; 3 no CUDA GPU; 4 no usable python/torch.

set -u -o pipefail

cd "$(dirname "$0")/.." || exit 4
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUT_DIR="${OUT:-data}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# Step budgets (seconds); their sum stays under 8 minutes.
CHECK_S=45
PYTEST_S=150
BENCH_S=270

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

echo "== [1/2] CUDA tests: pytest -m cuda tests (limit ${PYTEST_S}s)"
timeout "$PYTEST_S" "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider tests 2>&1 \
    | tee "$OUT_DIR/gpu_pytest_${slug}.log"
rc=${PIPESTATUS[0]}
case $rc in
    0) ;;
    5) failed+=("pytest: no CUDA tests were collected") ;;
    124) failed+=("pytest: timed out after ${PYTEST_S}s") ;;
    *) failed+=("pytest: exit status $rc") ;;
esac

csv="$OUT_DIR/node_bench_${slug}.csv"
echo "== [2/2] node benchmark on $gpu -> $csv (limit ${BENCH_S}s)"
timeout "$BENCH_S" "$PYTHON" -m revsnn bench nodes --device cuda --dtype float32 bfloat16 \
    --T 4 8 32 128 --batch 64 256 --neurons 8192 --repeats 20 --warmup 3 --out "$csv" 2>&1 \
    | tee "$OUT_DIR/node_bench_${slug}.txt"
rc=${PIPESTATUS[0]}
case $rc in
    0) ;;
    124) failed+=("bench nodes: timed out after ${BENCH_S}s (the CSV holds the blocks finished)") ;;
    *) failed+=("bench nodes: exit status $rc") ;;
esac

if [ ${#failed[@]} -gt 0 ]; then
    printf 'gpu_check: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "gpu_check: all passed ($csv)"
