"""``revsnn bench nodes``: one spiking node on input [T, batch, neurons], every memory mode side by
side (:mod:`revsnn.bench.nodes`)."""

from __future__ import annotations

import argparse

from ..bench.nodes import (COMPILE_CHOICES, DEFAULT_BATCH, DEFAULT_NEURONS, DEFAULT_T,
                           run_node_bench)
from ..kernels import BACKENDS
from .options import (UsageError, add_device_argument, add_dtype_argument, add_modes_argument,
                      add_output_arguments, add_timing_arguments, check_timing_arguments,
                      output_path, parse_modes, positive_int, resolve_device, rows_exit_code)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--T", nargs="+", type=positive_int, default=list(DEFAULT_T), metavar="T",
                        help=f"timesteps, one or several (default: {' '.join(map(str, DEFAULT_T))})")
    parser.add_argument("--batch", nargs="+", type=positive_int, default=list(DEFAULT_BATCH),
                        metavar="B", help="batch sizes, one or several (default: 64)")
    parser.add_argument("--neurons", type=positive_int, default=DEFAULT_NEURONS, metavar="N",
                        help=f"neurons per sample, even for the reversible node "
                             f"(default: {DEFAULT_NEURONS})")
    add_dtype_argument(parser)
    add_device_argument(parser)
    add_modes_argument(parser, "nodes")
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=["auto"],
                        help="what runs the reversible and binary nodes' loops over T: auto "
                             "(Triton on CUDA when installed, else PyTorch), torch or triton; "
                             "several are measured side by side; the other nodes run PyTorch; "
                             "rows record what ran (default: auto)")
    parser.add_argument("--compile", choices=tuple(COMPILE_CHOICES), default="eager",
                        help="measure the nodes eager, under torch.compile, or both side by side "
                             "(prints the compiled speed-up; default: eager)")
    add_timing_arguments(parser, repeats=5, per="mode")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from .. import strategy

    modes = parse_modes(args.modes, command="nodes")
    device = resolve_device(args.device)
    check_timing_arguments(args)
    if args.neurons % 2 and any(strategy.get(m).strategy.node == "reversible" for m in modes):
        raise UsageError(f"--neurons must be even for the reversible node (it splits neurons into "
                         f"two groups), got {args.neurons}")
    out = output_path(args)
    rows = run_node_bench(modes, Ts=args.T, batches=args.batch, neurons=args.neurons,
                   dtypes=args.dtype, device=device, repeats=args.repeats, warmup=args.warmup,
                   track_memory=args.track_memory, out=out, quiet=args.quiet,
                   backend=args.backend, compile=args.compile)
    return rows_exit_code(rows)
