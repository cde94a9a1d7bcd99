"""Per-session tables, the process-wide measurement lock, and the option lists of the widgets.

Each page shows one table (see :data:`dashboard.data.KINDS`). A session starts from the shipped
defaults; a measurement, or a saved run reloaded on the results page, replaces it for that
session only.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Optional

import pandas as pd
import streamlit as st

from dashboard import data

DTYPES = ("float32", "float64", "bfloat16")
WAIT_MESSAGE = "another measurement is running — waiting"


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def get_table(kind: str) -> tuple:
    """``(DataFrame or None, source text)`` that the page of ``kind`` shows in this session."""
    tables = st.session_state.setdefault("tables", {})
    if kind not in tables:
        df = data.load_default(kind)
        tables[kind] = (df, _default_source(kind, df))
    return tables[kind]


def _default_source(kind: str, df) -> str:
    if df is None:
        return "no table yet"
    where = []
    for col in ("device_name", "torch_version"):
        if col in df.columns and df[col].nunique() == 1:
            where.append(("torch " if col == "torch_version" else "") + str(df[col].iloc[0]))
    on = f"; measured on {', '.join(where)}" if where else ""
    timed = " — a small shared CPU: memory is exact, times are indicative" \
        if "device" in df.columns and set(df["device"].astype(str)) == {"cpu"} and \
        any(c.endswith("_ms") for c in df.columns) else ""
    return f"shipped defaults (data/results/defaults/{kind}.csv{on}){timed}"


def shown_table(kind: str, empty: str) -> pd.DataFrame:
    """The table the page of ``kind`` shows, with a caption naming its source; without one, say
    ``empty`` (how to make one) and end the page there."""
    df, source = get_table(kind)
    if df is None:
        st.info(empty)
        st.stop()
    st.caption(f"Showing: {source}")
    return df


def set_table(kind: str, df: pd.DataFrame, source: str) -> None:
    st.session_state.setdefault("tables", {})[kind] = (df, source)


def reset_tables() -> None:
    st.session_state["tables"] = {}


def all_tables() -> dict:
    """Every kind's current table (kinds without one are left out)."""
    return {k: t for k in data.KINDS if (t := get_table(k))[0] is not None}


# ---------------------------------------------------------------------------------------------
# Measurement lock
# ---------------------------------------------------------------------------------------------

@st.cache_resource
def measurement_lock() -> threading.Lock:
    """One lock for the whole server process: measurements never overlap (timings stay honest)."""
    return threading.Lock()


@contextlib.contextmanager
def exclusive_measurement(poll_s: float = 1.0):
    """Hold the measurement lock; while another session holds it, say so and wait.

    The note is redrawn every ``poll_s`` seconds: each redraw is a Streamlit call, which is where
    a rerun or a closed tab stops this script, so a waiting session never hangs.
    """
    lock = measurement_lock()
    if not lock.acquire(blocking=False):
        note, start = st.empty(), time.monotonic()
        note.info(WAIT_MESSAGE, icon="⏳")
        while not lock.acquire(timeout=poll_s):
            note.info(f"{WAIT_MESSAGE} ({time.monotonic() - start:.0f} s)", icon="⏳")
        note.empty()
    try:
        yield
    finally:
        lock.release()


# ---------------------------------------------------------------------------------------------
# Measure and show
# ---------------------------------------------------------------------------------------------

def measure_and_show(kind: str, sweep, *, total: int, describe, columns, where: str,
                     frame=None, what: str = "configurations"):
    """Run a library sweep for the page of ``kind`` and make its rows the page's table.

    ``sweep(on_row)`` is a library call that passes each finished row to ``on_row`` (failures are
    rows too) and returns the rows (or a table). It runs under the measurement lock with a
    progress bar (``describe(row)`` says what finished) and a live table of ``columns``; an
    exception it raises is shown as a message, never a traceback. The rows are then saved as a
    run of ``kind`` and shown on the page from now on, with how many of them failed. Returns the
    table, or None when nothing was measured.
    """
    from revsnn.analysis.measure import to_frame

    frame = frame or to_frame
    rows: list = []
    result = None
    with exclusive_measurement():
        bar = st.progress(0.0, text=f"{total} {what} to measure …")
        live = st.empty()

        def on_row(row):
            rows.append(row)
            bar.progress(min(len(rows) / max(total, 1), 1.0),
                         text=f"{len(rows)} / {total}: {describe(row)}")
            live.dataframe(frame(rows)[[c for c in columns if c in row]], hide_index=True)

        try:
            result = sweep(on_row)
        except Exception as exc:  # noqa: BLE001 - failed cases are rows; this is the rest
            st.error(f"Measurement stopped: {type(exc).__name__}: {exc}")
        live.empty()
    if not rows and isinstance(result, pd.DataFrame):
        rows = result.to_dict("records")
    if not rows:
        return None
    df = frame(rows)
    path = data.save_run(kind, df)
    set_table(kind, df, f"measured now on {where}, saved as {path.name}")
    bad = data.failed_rows(df)
    if len(bad):
        st.error(f"{len(bad)} of {len(df)} {what} failed; they are listed in the table below "
                 "with their status.")
    st.success(f"Measured {len(df) - len(bad)} of {len(df)} {what}; saved as {path.name} "
               "(reload it on the Results & export page).")
    return df


# ---------------------------------------------------------------------------------------------
# Widget options and input parsing
# ---------------------------------------------------------------------------------------------

def mode_options(command: str = "nodes", archs=None) -> dict:
    """Legend label -> preset name for ``command``, in the registry's order: the installed presets
    offered for it that build at least one of ``archs`` (when given)."""
    from revsnn import strategy

    from revsnn.conversion import convertible, is_user_model

    archs = [archs] if isinstance(archs, str) else list(archs or [])
    return {p.label: p.name for p in strategy.presets(command=command, available=True)
            if not archs or any(p.supports(a) or (is_user_model(a) and convertible(p))
                                for a in archs)}


def default_labels(options: dict, command: str, archs=None) -> list:
    """The labels of ``options`` that ``command`` measures by default (for one of ``archs``)."""
    from revsnn import strategy

    from revsnn.conversion import is_user_model, user_modes

    archs = [archs] if isinstance(archs, str) else list(archs or [None])
    wanted = {n for a in archs for n in (user_modes(command) if is_user_model(a)
                                         else strategy.defaults(command, a))}
    return [lab for lab, name in options.items() if name in wanted]


def user_model_input(prefix: str):
    """A text box for a network of the user's own (``package.module:factory``, converted to every
    mode by ``revsnn.convert``); returns the string when it names a callable, else None (with
    the reason shown under the box)."""
    from revsnn.conversion import load_factory

    spec = st.text_input("Your model (module:factory)", "", key=f"{prefix}_user_model",
                         placeholder="revsnn.conversion.examples:plain_vgg11",
                         help="package.module:factory or path/to/file.py:factory returning an "
                              "nn.Module over [T, B, C, H, W] (SpikingJelly or plain PyTorch); "
                              "measured side by side with the zoo in every mode it converts to")
    spec = spec.strip()
    if not spec:
        return None
    try:
        load_factory(spec)
    except ValueError as exc:
        st.error(f"Your model: {exc}")
        return None
    return spec


def device_options() -> dict:
    """Widget label -> device string: ``CPU`` and, when present, ``CUDA:i (<GPU name>)``."""
    import torch

    options = {"CPU": "cpu"}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            options[f"CUDA:{i} ({torch.cuda.get_device_name(i)})"] = f"cuda:{i}"
    return options


def parse_ints(text: str, name: str, *, minimum: int = 1, maximum: Optional[int] = None) -> list:
    """``"4, 8 16"`` -> ``[4, 8, 16]``; ValueError naming ``name`` for anything else."""
    parts = [p for p in str(text).replace(",", " ").split() if p]
    if not parts:
        raise ValueError(f"{name}: enter at least one value")
    values = []
    for p in parts:
        try:
            v = int(p)
        except ValueError:
            raise ValueError(f"{name}: {p!r} is not a whole number") from None
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {v}")
        if maximum is not None and v > maximum:
            raise ValueError(f"{name} must be <= {maximum}, got {v}")
        if v not in values:
            values.append(v)
    return values


def check_node_input(modes, neurons: int, dtype: str, device: str) -> None:
    """Let the library reject a configuration before a long run: build every node and run it on
    one tiny ``[1, 1, neurons]`` input. Raises the node's own ValueError (e.g. an odd neuron count
    for ReversibleLIF, which splits them into two groups)."""
    import torch

    from revsnn.analysis.measure import node_factory, parse_dtype

    tdtype = parse_dtype(dtype)
    for mode in modes:
        node = node_factory(mode)().to(device)
        with torch.no_grad():
            node(torch.zeros(1, 1, neurons, dtype=tdtype, device=device))
