"""Tables the dashboard shows: the shipped defaults, saved runs, and their reshaping for charts.

A *kind* names a table and the page that shows it: ``nodes`` (rows of
:func:`revsnn.analysis.measure.measure_nodes`), ``network`` (:func:`revsnn.bench.network.measure_network`),
``budget`` (:mod:`revsnn.bench.budget`) and ``drift`` (:func:`revsnn.drift_table`).

- Shipped defaults: ``data/results/defaults/<kind>.csv`` (regenerate with
  ``.venv/bin/python dashboard/make_defaults.py``).
- Saved runs: every measurement made in the dashboard is written to
  ``data/results/runs/<kind>-<YYYYmmdd-HHMMSS>.csv`` (git-ignored); the environment variable
  ``REVSNN_RUNS_DIR`` moves that folder (the tests use it). A run is written to a temporary file,
  flushed to disk and then linked to its name, which fails if the name is taken (the next free
  ``-<n>`` is tried): a reader never sees half a run, and two sessions saving in the same second
  never overwrite each other. A run that cannot be read (corrupted, emptied, not a table of its
  kind) is left out of :func:`list_runs` and reported by :func:`skipped_runs`.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import threading
from pathlib import Path
from typing import Optional

import pandas as pd
import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_DIR = ROOT / "data" / "results" / "defaults"
RUNS_ENV = "REVSNN_RUNS_DIR"

KINDS = {
    "nodes": "Nodes",
    "network": "Architectures",
    "budget": "Max batch under a budget",
    "drift": "Reconstruction drift",
}
"""Table kind -> title of the page that shows it."""

_RUN_NAME = re.compile(r"^(?P<kind>[a-z]+)-(?P<stamp>\d{8}-\d{6})(?:-\d+)?\.csv$")


def runs_dir() -> Path:
    """Folder of saved runs: ``$REVSNN_RUNS_DIR`` or ``data/results/runs``."""
    return Path(os.environ.get(RUNS_ENV) or ROOT / "data" / "results" / "runs")


def runs_label() -> str:
    """The runs folder for messages: relative to the repository when it lies inside it, else
    named by the variable that chose it (no machine path in a page or a screenshot of it)."""
    folder = runs_dir().resolve()
    try:
        return f"{folder.relative_to(ROOT)}/"
    except ValueError:
        return f"${RUNS_ENV} ({folder.name}/)"


@st.cache_data(show_spinner=False)
def _read_csv(path: str, mtime: float) -> pd.DataFrame:  # mtime: reload when the file changes
    return pd.read_csv(path)


def load_default(kind: str) -> Optional[pd.DataFrame]:
    """The shipped table for ``kind``, or None when there is none."""
    path = DEFAULTS_DIR / f"{kind}.csv"
    if not path.is_file():
        return None
    return _read_csv(str(path), path.stat().st_mtime).copy()


def save_run(kind: str, df: pd.DataFrame) -> Path:
    """Write ``df`` as a new timestamped run of ``kind``, atomically; returns its path."""
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r}; choose from {list(KINDS)}")
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    tmp = folder / f".{stem}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "w", newline="") as f:
            df.to_csv(f, index=False)
            f.flush()
            os.fsync(f.fileno())
        n = 1
        while True:
            path = folder / (f"{stem}.csv" if n == 1 else f"{stem}-{n}.csv")
            try:
                os.link(tmp, path)           # atomic, and fails if the name is taken
                break
            except FileExistsError:
                n += 1
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _run_names() -> list:
    folder = runs_dir()
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if p.is_file() and _RUN_NAME.match(p.name)]
    return sorted(names, key=lambda n: (_RUN_NAME.match(n)["stamp"], n), reverse=True)


def _run_problem(name: str) -> Optional[str]:
    """Why the saved run ``name`` cannot be shown, or None when it reads as a table of its kind."""
    kind = _RUN_NAME.match(name)["kind"]
    if kind not in KINDS:
        return f"unknown kind {kind!r}"
    path = runs_dir() / name
    try:
        df = _read_csv(str(path), path.stat().st_mtime)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if df.empty:
        return "has no rows"
    need = _KEY_COLUMNS.get(kind, ())
    missing = [c for c in need if c not in df.columns]
    if missing:
        return f"is not a {KINDS[kind]} table (no column {', '.join(missing)})"
    return None


_KEY_COLUMNS = {"nodes": ("mode", "status"), "network": ("mode", "status"),
                "budget": ("mode", "status"), "drift": ("T",)}
"""Columns every saved run of a kind has (what tells a table of that kind from anything else)."""


def list_runs() -> list:
    """Names of the saved runs that can be shown, newest first (see :func:`skipped_runs`)."""
    return [n for n in _run_names() if _run_problem(n) is None]


def skipped_runs() -> list:
    """``(name, why)`` of saved runs left out of :func:`list_runs` because they cannot be read."""
    return [(n, why) for n in _run_names() if (why := _run_problem(n)) is not None]


def load_run(name: str) -> tuple:
    """``(kind, DataFrame)`` of a saved run listed by :func:`list_runs`."""
    match = _RUN_NAME.match(name)
    if match is None or name not in list_runs():
        raise ValueError(f"no saved run named {name!r} in {runs_dir().name}/")
    kind = match["kind"]
    if kind not in KINDS:
        raise ValueError(f"saved run {name!r} has unknown kind {kind!r}")
    path = runs_dir() / name
    return kind, _read_csv(str(path), path.stat().st_mtime).copy()


def describe_run(name: str) -> str:
    """``"Nodes, 2025-01-31 14:02:03"`` for a run file name."""
    match = _RUN_NAME.match(name)
    if match is None:
        return name
    stamp = _dt.datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S")
    return f"{KINDS.get(match['kind'], match['kind'])}, {stamp:%Y-%m-%d %H:%M:%S} ({name})"


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that measured successfully (all rows when the table has no ``status`` column)."""
    if df is None or df.empty or "status" not in df.columns:
        return df
    return df[df["status"] == "ok"]


def failed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose status is ``oom`` or ``error``."""
    if df is None or df.empty or "status" not in df.columns:
        return df.iloc[0:0] if df is not None else pd.DataFrame()
    return df[df["status"] != "ok"]


_GROUP = ["T", "batch", "dtype", "device_name"]


def node_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Per (T, batch, dtype, device) block, each mode against the standard node.

    Uses :func:`revsnn.bench.nodes.block_ratios` (baseline: SpikingJelly's LIFNode when measured,
    else LIF under BPTT): ``saved_ratio`` = baseline saved bytes / mode saved bytes (higher is
    leaner; ``inf`` for a mode that saves 0 B, which the charts draw as "∞ (saves 0 B)"),
    ``bwd_ratio`` = mode backward ms / baseline backward ms (lower is faster), with
    ``bwd_ratio_q1`` / ``bwd_ratio_q3``: the mode's backward quartiles over the baseline's median.
    """
    from revsnn.bench.nodes import block_ratios

    out = []
    if df is None or df.empty:
        return pd.DataFrame(out)
    keys = [k for k in _GROUP if k in df.columns]
    for key, block in df.groupby(keys, dropna=False, sort=True):
        rows = block.to_dict("records")
        res = block_ratios(rows)
        if res["baseline"] is None:
            continue
        base = next(r for r in rows if r["mode"] == res["baseline"])
        from dashboard.charts import spread_bounds
        bounds = spread_bounds(block, "bwd_ms")
        none = [None] * len(rows)
        low, high = (bounds[0].tolist(), bounds[1].tolist()) if bounds else (none, none)
        for r, lo, hi in zip(rows, low, high):
            ratio = res["bwd_ratio"].get(r["mode"])
            q1, q3 = (_over(q, base.get("bwd_ms")) if _finite(ratio) == ratio else math.nan
                      for q in (lo, hi))
            out.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                        "mode": r["mode"], "label": r["label"], "baseline": base["label"],
                        "saved_ratio": _number(res["saved_ratio"].get(r["mode"])),
                        "bwd_ratio": _finite(ratio), "bwd_ratio_q1": q1, "bwd_ratio_q3": q3,
                        "status": r.get("status", "ok")})
    return pd.DataFrame(out)


def _number(x) -> float:
    return math.nan if x is None else float(x)


def _finite(x) -> float:
    return x if x is not None and math.isfinite(x) else math.nan


def _over(a, b) -> float:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return math.nan
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan
