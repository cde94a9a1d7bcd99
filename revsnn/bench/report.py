"""Shared output helpers for the benchmarks: number formatting, safe ratios, text tables, CSV/JSON.

Every benchmark (nodes, network, budget) prints through these functions, so tables look alike and
a ratio against a zero or a failed run is written the same way everywhere.

>>> human_bytes(3 * 2**20)
'3.00 MiB'
>>> human_bytes(0), human_bytes(float("nan"))
('0 B', '—')
>>> fmt_ms(1.234, 0.05)
'1.23 ± 0.05'
>>> fmt_ratio(safe_ratio(24, 0))
'∞'
>>> print(format_table(["mode", "ms"], [["a", "1.0"], ["bb", "10.0"]], align="<>"))
mode    ms
----  ----
a      1.0
bb    10.0
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Iterable, Optional, Sequence

__all__ = [
    "OUTPUT_SUFFIXES", "human_bytes", "fmt_ms", "safe_ratio", "fmt_ratio", "is_missing",
    "format_table", "failure_text", "check_output_path", "check_writable_dir", "write_rows",
    "echo", "is_ok", "all_failed", "ALL_FAILED_EXIT",
]

ALL_FAILED_EXIT = 3
"""Exit code of a benchmark command whose every requested row failed (error or out of memory)."""

OUTPUT_SUFFIXES = (".csv", ".json")
"""File types :func:`write_rows` can write, chosen by the path's suffix."""

MISSING = "—"


def is_missing(value) -> bool:
    """True for None and NaN (how tidy rows mark "not measured")."""
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def human_bytes(n) -> str:
    """Bytes in binary units: ``'512 B'``, ``'1.50 KiB'``, ``'24.00 MiB'``; ``'—'`` when missing."""
    if is_missing(n):
        return MISSING
    n = float(n)
    if abs(n) < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024.0
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.2f} {unit}"
    raise AssertionError("unreachable")


def fmt_ms(median, spread=None, digits: int = 2) -> str:
    """``'median ± spread'`` in milliseconds (spread omitted when missing)."""
    if is_missing(median):
        return MISSING
    if is_missing(spread):
        return f"{float(median):.{digits}f}"
    return f"{float(median):.{digits}f} ± {float(spread):.{digits}f}"


def safe_ratio(numerator, denominator) -> float:
    """``numerator / denominator``; ``inf`` for x/0 with x > 0, NaN when either side is missing or 0/0."""
    if is_missing(numerator) or is_missing(denominator):
        return math.nan
    numerator, denominator = float(numerator), float(denominator)
    if denominator == 0.0:
        return math.inf if numerator > 0 else math.nan
    return numerator / denominator


def fmt_ratio(r, digits: int = 2) -> str:
    """``'3.41×'``; ``'∞'`` for infinity; ``'—'`` when missing."""
    if is_missing(r):
        return MISSING
    if math.isinf(r):
        return "∞"
    return f"{r:.{digits}f}×"


def is_ok(row) -> bool:
    """True for a measured row (``status == "ok"``); False for a failed one or None."""
    return row is not None and row.get("status") == "ok"


def failure_text(row: dict, width: int = 70) -> str:
    """One-line description of a failed row: ``'OOM'`` or ``'error: <message>'`` (shortened)."""
    status = str(row.get("status", "error"))
    message = str(row.get("error") or "").splitlines()[0] if row.get("error") else ""
    text = "OOM" if status == "oom" else status
    if message:
        text += f": {message}"
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str = "",
                 indent: str = "") -> str:
    """Plain-text table; ``align`` has one ``'<'`` or ``'>'`` per column (default: left).

    A row with fewer cells than headers has its last cell span the remaining columns without
    widening them (a failed configuration prints its label and one message).

    >>> print(format_table(["mode", "a", "b"], [["x", "1", "2"], ["y", "OOM: a long message"]]))
    mode  a  b
    ----  -  -
    x     1  2
    y     OOM: a long message
    """
    rows = [[str(c) for c in r] for r in rows]
    n = len(headers)
    align = (align or "").ljust(n, "<")
    widths = [len(h) for h in headers]
    for r in rows:
        full = len(r) >= n
        for i, c in enumerate(r[:n] if full else r[:-1]):
            widths[i] = max(widths[i], len(c))

    def line(cells):
        full = len(cells) >= n
        out = [c.rjust(widths[i]) if align[i] == ">" else c.ljust(widths[i])
               for i, c in enumerate(cells[:n] if full else cells[:-1])]
        if not full:
            out.append(cells[-1])
        return (indent + "  ".join(out)).rstrip()

    return "\n".join([line(list(headers)), line(["-" * w for w in widths])] + [line(r) for r in rows])


def check_writable_dir(folder, option: str = "--out") -> Path:
    """``ValueError`` unless files can be created in ``folder`` (or in the folder that would be
    created for it): every existing part of the path must be a folder, and the nearest existing one
    must accept a new file (tried with a temporary file, removed at once). Creates nothing else.

    For checking an output location *before* a long run rather than failing after it.
    """
    import tempfile

    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{option} {str(folder)!r}: {str(probe)!r} is a file, not a folder; "
                         f"choose a path whose parent folders are folders")
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".revsnn-write-check-"):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {str(folder)!r}: cannot create a file in {str(probe)!r} "
                         f"({exc.strerror or exc}); choose a writable location") from None
    return folder


def check_output_path(path) -> Optional[Path]:
    """Validate an ``--out`` path *before* a long run: ValueError unless it ends in .csv or .json,
    is not a folder, and its folder can be written (:func:`check_writable_dir`)."""
    if path is None or str(path) == "":
        return None
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"--out must end in {' or '.join(OUTPUT_SUFFIXES)}, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"--out {str(path)!r} is a folder; give a file name ending in "
                         f"{' or '.join(OUTPUT_SUFFIXES)}")
    check_writable_dir(path.parent, option=f"--out {str(path)!r}: folder")
    return path


def all_failed(rows) -> bool:
    """True when there are rows and none of them measured (every one an error or OOM)."""
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    return bool(rows) and not any(is_ok(r) for r in rows)


def write_rows(rows, path, columns: Optional[Sequence[str]] = None) -> Path:
    """Write tidy rows (dicts or a DataFrame) to ``path``: CSV or JSON (records) by its suffix.

    ``columns`` fixes the column order (missing columns are added empty; others follow). Parent
    folders are created. NaN becomes an empty CSV cell / JSON ``null``.
    """
    import pandas as pd

    path = check_output_path(path)
    if path is None:
        raise ValueError("write_rows: no output path given")
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if columns is not None:
        for c in columns:
            if c not in df.columns:
                df[c] = math.nan
        df = df[list(columns) + [c for c in df.columns if c not in columns]]
    path.parent.mkdir(parents=True, exist_ok=True)
    # written next to the target and renamed over it: a reader never sees half a table
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_json(tmp, orient="records", indent=2, force_ascii=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def echo(*parts, quiet: bool = False, file=None) -> None:
    """``print`` that stays silent under ``--quiet`` and flushes (long runs show progress)."""
    if not quiet:
        print(*parts, file=file or sys.stdout, flush=True)
