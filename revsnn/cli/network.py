"""``revsnn bench network``: one training step of a whole zoo network, every memory mode side by side
(:mod:`revsnn.bench.network`)."""

from __future__ import annotations

import argparse

from ..bench.network import COLUMNS, LEGEND, format_network_table, measure_network
from ..bench.report import ALL_FAILED_EXIT, all_failed, echo, write_rows
from .options import (add_device_argument, add_dtype_argument, add_modes_argument,
                      add_network_arguments, add_output_arguments, add_timing_arguments, check_timing_arguments,
                      output_path, parse_modes, positive_int, resolve_device)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models import MODELS

    add_network_arguments(parser, MODELS)
    parser.add_argument("--num-classes", type=positive_int, default=10,
                        help="classes of the classifier (default: 10)")
    parser.add_argument("--in-channels", type=positive_int, default=None,
                        help="input channels (default: 3, 1 for convnet)")
    add_dtype_argument(parser, multiple=False)
    add_device_argument(parser)
    add_modes_argument(parser, "network")
    add_timing_arguments(parser, repeats=3, per="mode")
    parser.add_argument("--memopt-level", type=int, default=1, choices=(1, 2, 3, 4),
                        help="optimize_memory level for spikingjelly_memopt (default: 1; 4 "
                             "searches with CUDA memory measurements)")
    parser.add_argument("--seed", type=int, default=0, help="weight and data seed (default: 0)")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    modes = parse_modes(args.modes, command="network", arch=args.arch)
    device = resolve_device(args.device)
    check_timing_arguments(args)
    out = output_path(args)
    quiet = args.quiet
    echo(f"revsnn bench network: {args.arch}, modes {' '.join(modes)}; device {device}; "
         f"repeats {args.repeats}, warmup {args.warmup}", quiet=quiet)
    echo(LEGEND, quiet=quiet)
    echo(f"… measuring {len(modes)} modes", quiet=quiet, file=sys.stderr)
    rows = measure_network(args.arch, modes, T=args.T, batch=args.batch,
                           image_size=args.image_size, num_classes=args.num_classes,
                           dtype=args.dtype, device=device, repeats=args.repeats,
                           warmup=args.warmup, track_memory=args.track_memory,
                           in_channels=args.in_channels, seed=args.seed,
                           memopt_level=args.memopt_level)
    echo("\n" + format_network_table(rows), quiet=quiet)
    if out is not None:
        write_rows(rows, out, columns=COLUMNS)
        echo(f"\nwrote {len(rows)} rows to {out}", quiet=quiet)
    return _exit_code(rows, quiet)

def _exit_code(rows, quiet: bool) -> int:
    """0, or ALL_FAILED_EXIT (with a line on stderr) when every requested row failed."""
    import sys
    if all_failed(rows):
        echo(f"error: every requested measurement failed ({len(rows)} rows: see the table "
             f"above); exit code {ALL_FAILED_EXIT}", file=sys.stderr)
        return ALL_FAILED_EXIT
    return 0

