"""``revsnn drift``: does the reversible node reconstruct exactly, for long sequences and low precision?

Runs :func:`revsnn.drift_table`: ReversibleLIF is walked forward over T steps and inverted back from
its output and final state (:func:`revsnn.check_invertible`), next to the naive coupling
V̂ = αV + H(1 − S) inverted by division, for every T and dtype. Prints the table and, with ``--out``,
writes it as CSV or JSON (schema in the project's ``data/README.md``).
"""

from __future__ import annotations

import argparse

from ..cli import UsageError, add_dtype_argument, add_output_arguments, positive_int
from .report import check_output_path, echo, format_table, is_missing, write_rows

__all__ = ["add_arguments", "run", "DRIFT_COLUMNS", "DEFAULT_T", "DEFAULT_DTYPES", "format_drift"]

DEFAULT_T = (4, 8, 16, 32, 64, 128, 256)
DEFAULT_DTYPES = ("float64", "float32", "bfloat16")
DRIFT_COLUMNS = ["node", "T", "dtype", "sigma", "input_error", "state_error", "flipped_spikes",
                 "max_membrane", "exact"]
"""Column order of the drift table as written (see ``data/README.md`` for units)."""


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
    from ..invertibility import drift_table
    from ..measure import parse_dtype

    if args.channels % 2:
        raise UsageError(f"--channels must be even (two groups), got {args.channels}")
    if not args.sigma > 0:
        raise UsageError(f"--sigma must be > 0, got {args.sigma}")
    try:
        out = check_output_path(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    df = drift_table(Ts=tuple(args.T), dtypes=tuple(parse_dtype(d) for d in args.dtype),
                     sigma=args.sigma, batch=args.batch, channels=args.channels, seed=args.seed)
    df = df[DRIFT_COLUMNS + [c for c in df.columns if c not in DRIFT_COLUMNS]]
    echo(format_drift(df), quiet=args.quiet)
    if out is not None:
        write_rows(df, out, columns=DRIFT_COLUMNS)
        echo(f"\nwrote {len(df)} rows to {out}", quiet=args.quiet)
    return 0


def _num(v) -> str:
    if is_missing(v):
        return "—"
    return "0" if v == 0 else f"{float(v):.3g}"


def _flips(v) -> str:
    return "n/a" if is_missing(v) or v < 0 else str(int(v))


def format_drift(df) -> str:
    """The drift table as text, one block per dtype (flipped spikes ``n/a`` where not applicable:
    the naive coupling has no spike decoding)."""
    headers = ["node", "T", "input error", "state error", "flipped spikes", "max |V|", "exact"]
    blocks = []
    for dtype, part in df.groupby("dtype", sort=False):
        table = [[r.node, str(r.T), _num(r.input_error), _num(r.state_error),
                  _flips(r.flipped_spikes),
                  _num(r.max_membrane), "yes" if r.exact else "no"]
                 for r in part.itertuples()]
        blocks.append(f"{dtype} (inputs N(0, {part['sigma'].iloc[0]:g}²))\n"
                      + format_table(headers, table, align="<>>>>><"))
    return "\n\n".join(blocks)
