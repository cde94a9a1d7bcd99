"""``revsnn drift``: does the reversible node reconstruct exactly, for long sequences and low
precision? (:mod:`revsnn.bench.drift`)"""

from __future__ import annotations

import argparse

from ..bench.drift import DEFAULT_DTYPES, DEFAULT_T, DRIFT_COLUMNS, drift_rows, format_drift
from ..bench.report import echo, write_rows
from .options import UsageError, add_dtype_argument, add_output_arguments, output_path, positive_int

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--T", nargs="+", type=positive_int, default=list(DEFAULT_T), metavar="T",
                        help=f"sequence lengths (default: {' '.join(map(str, DEFAULT_T))})")
    add_dtype_argument(parser, default=DEFAULT_DTYPES)
    parser.add_argument("--sigma", type=float, default=1.5,
                        help="input standard deviation, inputs N(0, σ²) (default: 1.5)")
    parser.add_argument("--batch", type=positive_int, default=16, help="batch size (default: 16)")
    parser.add_argument("--channels", type=positive_int, default=256,
                        help="channels, even: two groups of channels/2 (default: 256)")
    parser.add_argument("--seed", type=int, default=0, help="input seed (default: 0)")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.channels % 2:
        raise UsageError(f"--channels must be even (two groups), got {args.channels}")
    if not args.sigma > 0:
        raise UsageError(f"--sigma must be > 0, got {args.sigma}")
    out = output_path(args)
    df = drift_rows(args.T, args.dtype, sigma=args.sigma, batch=args.batch,
                    channels=args.channels, seed=args.seed)
    echo(format_drift(df), quiet=args.quiet)
    if out is not None:
        write_rows(df, out, columns=DRIFT_COLUMNS)
        echo(f"\nwrote {len(df)} rows to {out}", quiet=args.quiet)
    return 0
