"""Step time of user-written networks converted by ``revsnn.convert`` against the zoo's network of
the same architecture, every (network, mode) timed round-robin in one run, so that the ratios hold
on a busy machine (``bench network`` times one network's modes side by side, not two networks).

    python scripts/user_model_timing.py --modes spikingjelly bptt fused binary temporal --repeats 5

prints, per mode, each network's median step time and its ratio to the zoo's, and writes the rows
(:data:`revsnn.bench.network.COLUMNS`, memory not tracked) with ``--out``.
"""

from __future__ import annotations

import argparse

from revsnn.analysis.measure import measure_cases
from revsnn.bench.network import COLUMNS, network_case
from revsnn.bench.report import write_rows

NETWORKS = ("vgg11", "revsnn.conversion.examples:plain_vgg11",
            "revsnn.conversion.examples:spikingjelly_vgg11")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS),
                    help="the zoo architecture first, then module:factory strings")
    ap.add_argument("--modes", nargs="+",
                    default=["spikingjelly", "bptt", "fused", "binary", "temporal"])
    ap.add_argument("--T", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cases = [network_case(net, mode, T=args.T, batch=args.batch, image_size=args.image_size)
             for mode in args.modes for net in args.networks]
    rows = measure_cases(cases, repeats=args.repeats, warmup=args.warmup, track_memory=False)
    zoo = {r["mode"]: r for r in rows if r["arch"] == args.networks[0]}
    print(f"step time, T={args.T} batch={args.batch} {args.image_size}x{args.image_size}, "
          f"{args.repeats} repeats round-robin (median ms; ratio to {args.networks[0]})")
    for r in rows:
        ref = zoo.get(r["mode"])
        ratio = (r["step_ms"] / ref["step_ms"] if r["status"] == "ok" and ref
                 and ref["status"] == "ok" else float("nan"))
        print(f"{r['mode']:<14} {r['arch']:<48} {r['step_ms']:9.1f} ms  {ratio:.3f}x"
              if r["status"] == "ok" else f"{r['mode']:<14} {r['arch']:<48} {r['status']}: "
                                          f"{r.get('error', '')}")
    if args.out:
        write_rows(rows, args.out, columns=COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
