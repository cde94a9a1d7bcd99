"""``revsnn bench network``: one training step of a whole zoo network, every memory mode side by side
(:mod:`revsnn.bench.network`)."""

from __future__ import annotations

import argparse

from ..bench.network import (COLUMNS, COMPILE_LEGEND, LEGEND, format_network_table,
                             measure_network)
from ..bench.report import echo, write_rows
from .options import (add_device_argument, add_dtype_argument, add_modes_argument,
                      add_network_arguments, add_output_arguments, add_timing_arguments,
                      check_timing_arguments, conversion_lines, network_of, output_path,
                      positive_int, resolve_device, rows_exit_code)

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
    add_timing_arguments(parser, repeats=5, per="mode")
    parser.add_argument("--memopt-level", type=int, default=1, choices=(1, 2, 3, 4),
                        help="optimize_memory level for spikingjelly_memopt (default: 1; 4 "
                             "searches with CUDA memory measurements)")
    parser.add_argument("--seed", type=int, default=0, help="weight and data seed (default: 0)")
    parser.add_argument("--compile", nargs="?", const="inductor", default=None,
                        metavar="BACKEND",
                        help="also measure every mode under torch.compile (backend: inductor "
                             "unless named, e.g. aot_eager), side by side with eager (rows "
                             "labelled '(compiled)', no memory columns; prints the eager / "
                             "compiled step-time ratio)")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    arch, modes = network_of(args, "network")
    device = resolve_device(args.device)
    check_timing_arguments(args)
    out = output_path(args)
    quiet = args.quiet
    echo(f"revsnn bench network: {arch}, modes {' '.join(modes)}; device {device}; "
         f"repeats {args.repeats}, warmup {args.warmup}"
         + (f"; eager and compiled ({args.compile})" if args.compile else ""), quiet=quiet)
    echo(LEGEND, quiet=quiet)
    if args.compile:
        echo(COMPILE_LEGEND, quiet=quiet)
    if args.model:
        echo("\n".join(conversion_lines(arch, modes, in_channels=args.in_channels or 3,
                                         num_classes=args.num_classes)), quiet=quiet)
    echo(f"… measuring {len(modes)} modes" + (", each eager and compiled" if args.compile else ""),
         quiet=quiet, file=sys.stderr)
    rows = measure_network(arch, modes, T=args.T, batch=args.batch,
                           image_size=args.image_size, num_classes=args.num_classes,
                           dtype=args.dtype, device=device, repeats=args.repeats,
                           warmup=args.warmup, track_memory=args.track_memory,
                           in_channels=args.in_channels, seed=args.seed,
                           memopt_level=args.memopt_level, compile=args.compile)
    echo("\n" + format_network_table(rows), quiet=quiet)
    if out is not None:
        write_rows(rows, out, columns=COLUMNS)
        echo(f"\nwrote {len(rows)} rows to {out}", quiet=quiet)
    return rows_exit_code(rows)
