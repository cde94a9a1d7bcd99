"""``revsnn bench beyond``: the leanest reversible networks (binary units, reversible blocks) vs
SpikingJelly's, side by side (:mod:`revsnn.bench.beyond`)."""

from __future__ import annotations

import argparse

from ..bench.beyond import ARCHS, default_cases, depth_sweep, format_depth_sweep, run_beyond
from ..bench.report import echo, write_rows
from .options import (UsageError, add_device_argument, add_network_arguments,
                      add_output_arguments, add_timing_arguments, check_timing_arguments,
                      output_path, positive_int, resolve_device, rows_exit_code)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser, ARCHS)
    parser.add_argument("--width", type=positive_int, default=32,
                        help="base width of revresnet* (default: 32)")
    parser.add_argument("--depth-sweep", action="store_true",
                        help="instead: saved bytes of revresnet_s/m/l, reversible vs plain "
                             "(forward only; uses --T --batch --image-size --width)")
    parser.add_argument("--with-fused", action="store_true",
                        help="also measure the zoo network with ReversibleLIF (fused backward)")
    parser.add_argument("--no-memopt", dest="memopt", action="store_false",
                        help="skip SpikingJelly memopt")
    add_device_argument(parser)
    add_timing_arguments(parser, repeats=5, per="configuration")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..baselines import spikingjelly_available

    device = resolve_device(args.device)
    check_timing_arguments(args)
    if args.arch.startswith("revresnet") and args.width % 2:
        raise UsageError(f"--width must be even, got {args.width}")
    if args.with_fused and not args.arch.startswith("vgg"):
        raise UsageError("--with-fused applies to the vgg architectures only")
    out = output_path(args)
    if args.depth_sweep:
        if args.width % 2:
            raise UsageError(f"--width must be even, got {args.width}")
        rows = depth_sweep(T=args.T, batch=args.batch, size=args.image_size, width=args.width,
                           device=device)
        echo(format_depth_sweep(rows), quiet=args.quiet)
        if out is not None:
            write_rows(rows, out)
            echo(f"\nwrote {len(rows)} rows to {out}", quiet=args.quiet)
        return 0
    if not spikingjelly_available():
        echo("SpikingJelly is not installed: measuring ours only (pip install --no-deps "
             "spikingjelly==2.0.0 numpy 'loguru>=0.7,<1')", quiet=args.quiet)
    cases = default_cases(args.arch, memopt=args.memopt, fused=args.with_fused)
    rows = run_beyond(args.arch, cases=cases, T=args.T, batch=args.batch, size=args.image_size,
               width=args.width, device=device, repeats=args.repeats, warmup=args.warmup,
               track_memory=args.track_memory, out=out, quiet=args.quiet)
    return rows_exit_code(rows)
