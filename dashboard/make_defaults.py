"""Regenerate the tables the dashboard opens with: ``data/results/defaults/<kind>.csv``.

    .venv/bin/python dashboard/make_defaults.py            # every table
    .venv/bin/python dashboard/make_defaults.py nodes drift

Sizes are small on purpose (a 2-core CPU makes them in a few minutes); the dashboard's *Measure
now* and ``python -m revsnn bench …`` measure larger ones. Every table is made by the library:

- ``nodes.csv``: :func:`revsnn.analysis.measure.measure_nodes`, rows with the columns of
  :data:`revsnn.analysis.measure.COLUMNS` (bytes in B, times in ms).
- ``drift.csv``: :func:`revsnn.drift_table` (errors in the dtype's units; ``flipped_spikes`` is -1
  where not counted, for the naive coupling).
- ``network.csv``: :func:`revsnn.bench.network.measure_network` rows (the node columns plus
  image_size, num_classes, predicted_saved_bytes and ratios against SpikingJelly).
- ``budget.csv``: :func:`revsnn.bench.budget.budget_search` rows (largest batch at T = 4 and
  largest T at batch 4 within 256 MiB, per mode).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "data" / "results" / "defaults"

NODE_T = (4, 8, 16, 32)
NODE_BATCH = (16, 64)
NODE_NEURONS = 1024


def make_nodes():
    from revsnn import strategy
    from revsnn.analysis.measure import measure_nodes, to_frame

    rows = measure_nodes(strategy.defaults("nodes"), Ts=NODE_T, batches=NODE_BATCH, neurons=NODE_NEURONS, repeats=7,
                         warmup=1, on_row=lambda r: print(f"  {r['label']:<26} T={r['T']:<3} "
                                                          f"batch={r['batch']:<3} {r['status']}"))
    return to_frame(rows)


def make_drift():
    from revsnn import drift_table
    return drift_table()


NETWORK_ARCHS = ("vgg11", "resnet18")
NETWORK_T = (2, 4)
NETWORK_BATCH = 8
NETWORK_IMAGE = 32


def make_network():
    import pandas as pd

    from revsnn import strategy
    from revsnn.bench.network import measure_network

    rows = []
    for arch in NETWORK_ARCHS:
        for T in NETWORK_T:
            rows += measure_network(arch, strategy.defaults("network", arch), T=T, batch=NETWORK_BATCH,
                                    image_size=NETWORK_IMAGE, num_classes=10, dtype="float32",
                                    device="cpu", repeats=5, warmup=1,
                                    on_row=lambda r: print(f"  {r['arch']:<9} T={r['T']:<2} "
                                                           f"{r['label']:<26} {r['status']}"))
    return pd.DataFrame(rows)


BUDGET_ARCH = "vgg11"
BUDGET_BYTES = 2 ** 28  # 256 MiB
BUDGET_T = 4
BUDGET_BATCH = 4


def make_budget():
    import pandas as pd

    from revsnn import strategy
    from revsnn.bench.budget import budget_search

    rows = budget_search(BUDGET_ARCH, strategy.defaults("budget", BUDGET_ARCH), BUDGET_BYTES, T=BUDGET_T, batch=BUDGET_BATCH,
                         image_size=32, dtype="float32", device="cpu",
                         on_row=lambda r: print(f"  largest {r['search']:<5} "
                                                f"{r['label']:<26} {r['max_value']} "
                                                f"({r['status']}, {r['seconds']:.0f} s)"))
    return pd.DataFrame(rows)


MAKERS = {"nodes": make_nodes, "drift": make_drift, "network": make_network,
          "budget": make_budget}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", metavar="KIND",
                        help=f"tables to make, from {', '.join(MAKERS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [k for k in args.kinds if k not in MAKERS]
    if unknown:
        parser.error(f"unknown tables {unknown}; choose from {', '.join(MAKERS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds or MAKERS:
        start = time.perf_counter()
        print(f"{kind}:")
        try:
            df = MAKERS[kind]()
        except ImportError as exc:
            print(f"  skipped: {exc}")
            continue
        path = OUT / f"{kind}.csv"
        df.to_csv(path, index=False)
        print(f"  wrote {len(df)} rows to {path.relative_to(ROOT)} "
              f"in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
