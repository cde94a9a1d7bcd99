"""Long sequences, time-major: train the row-sequence digits task at T = 1024 and print one
training step's activation peak next to the same network at T = 8 (and under plain autograd).

Usage: python scripts/long_sequence.py [--T 1024] [--epochs 3] [--out data/results/long_sequence_cpu.csv]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time

import torch

from revsnn.bench.long_sequence import LONG_COLUMNS, long_sequence_run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=1024)
    parser.add_argument("--T-short", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N digits")
    parser.add_argument("--out", default=None, help="CSV to write (columns: LONG_COLUMNS)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = long_sequence_run(args.T, args.T_short, epochs=args.epochs, batch=args.batch,
                             seed=args.seed, limit=args.limit)
    for r in rows:
        peak = r["peak_bytes"]
        peak = "" if isinstance(peak, float) and math.isnan(peak) else f"{peak / 2**20:8.2f} MiB"
        acc = r["test_acc"]
        acc = "" if isinstance(acc, float) and math.isnan(acc) else f"test acc {acc:.3f}"
        print(f"{r['kind']:9s} T={r['T']:<5d} {r['strategy']:9s} {peak} {acc} {r['status']}")
    mem = {(r["T"], r["strategy"]): r.get("peak_bytes") for r in rows if r["kind"] == "memory"}
    long_, short = mem.get((args.T, "temporal")), mem.get((args.T_short, "temporal"))
    bptt = mem.get((args.T, "bptt"))
    if long_ and short:
        print(f"time-major peak at T={args.T} / at T={args.T_short}: {long_ / short:.2f}x")
    if long_ and bptt:
        print(f"plain autograd / time-major at T={args.T}: {bptt / long_:.2f}x")
    print(f"{time.perf_counter() - start:.0f} s, torch {torch.__version__}")
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, LONG_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
