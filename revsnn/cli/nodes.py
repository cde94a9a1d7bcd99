"""``revsnn bench nodes``: one spiking node on input [T, batch, neurons], every memory mode side by
side (:mod:`revsnn.bench.nodes`)."""

from __future__ import annotations

import argparse

from ..bench.nodes import DEFAULT_BATCH, DEFAULT_NEURONS, DEFAULT_T, run_node_bench
from ..bench.report import ALL_FAILED_EXIT, all_failed, echo
from .options import (UsageError, add_device_argument, add_dtype_argument, add_modes_argument,
                      add_output_arguments, add_timing_arguments, check_timing_arguments,
                      output_path, parse_modes, positive_int, resolve_device)

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
                   track_memory=args.track_memory, out=out, quiet=args.quiet)
    return _exit_code(rows, args.quiet)

def _exit_code(rows, quiet: bool) -> int:
    """0, or ALL_FAILED_EXIT (with a line on stderr) when every requested row failed."""
    import sys
    if all_failed(rows):
        echo(f"error: every requested measurement failed ({len(rows)} rows: see the table "
             f"above); exit code {ALL_FAILED_EXIT}", file=sys.stderr)
        return ALL_FAILED_EXIT
    return 0

