"""Reconstruction drift (``revsnn drift``): does the reversible node reconstruct exactly, for long
sequences and low precision?

:func:`drift_rows` runs :func:`revsnn.drift_table`: ReversibleLIF is walked forward over T steps and inverted back from
its output and final state (:func:`revsnn.check_invertible`), next to the naive coupling
V̂ = αV + H(1 − S) inverted by division, for every T and dtype. Prints the table and, with ``--out``,
writes it as CSV or JSON (schema in the project's ``data/README.md``).
"""

from __future__ import annotations

from .report import format_table, is_missing

__all__ = ["drift_rows", "DRIFT_COLUMNS", "DEFAULT_T", "DEFAULT_DTYPES", "format_drift"]

DEFAULT_T = (4, 8, 16, 32, 64, 128, 256)
DEFAULT_DTYPES = ("float64", "float32", "bfloat16")
DRIFT_COLUMNS = ["node", "T", "dtype", "sigma", "input_error", "state_error", "flipped_spikes",
                 "max_membrane", "exact"]
"""Column order of the drift table as written (see ``data/README.md`` for units)."""


def drift_rows(Ts=DEFAULT_T, dtypes=DEFAULT_DTYPES, *, sigma: float = 1.5, batch: int = 16,
               channels: int = 256, seed: int = 0):
    """The drift table (a DataFrame) for ``Ts`` × ``dtypes``, columns :data:`DRIFT_COLUMNS`
    first."""
    from ..analysis.invertibility import drift_table
    from ..analysis.measure import parse_dtype

    df = drift_table(Ts=tuple(Ts), dtypes=tuple(parse_dtype(d) for d in dtypes), sigma=sigma,
                     batch=batch, channels=channels, seed=seed)
    return df[DRIFT_COLUMNS + [c for c in df.columns if c not in DRIFT_COLUMNS]]


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
