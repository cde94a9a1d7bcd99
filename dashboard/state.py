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

def failure_summary(bad: pd.DataFrame, limit: int = 3) -> str:
    """What went wrong in failed rows, one clause per distinct error (most frequent first), with
    what is needed to get past an out-of-memory one."""
    if bad is None or bad.empty:
        return ""
    status = (bad["status"].astype(str) if "status" in bad.columns
              else pd.Series(["error"] * len(bad)))
    errors = bad["error"].fillna("").astype(str) if "error" in bad.columns else \
        pd.Series([""] * len(bad))
    counts = pd.Series([f"{s}: {e}" if e else s for s, e in zip(status, errors)]).value_counts()
    parts = [f"{msg} ({n}×)" if n > 1 else msg for msg, n in counts.head(limit).items()]
    if len(counts) > limit:
        parts.append(f"and {len(counts) - limit} other errors (see the table)")
    text = "; ".join(parts)
    if (status == "oom").any():
        text += (". Out of memory: it needs more memory than the device has; lower T, the batch "
                 "or the size, or pick a leaner mode")
    return text


def measure_and_show(kind: str, sweep, *, total: int, describe, columns, where: str,
                     frame=None, what: str = "configurations", unusable=None, explain=None):
    """Run a library sweep for the page of ``kind`` and make its rows the page's table.

    ``sweep(on_row)`` is a library call that passes each finished row to ``on_row`` (failures are
    rows too) and returns the rows (or a table). It runs under the measurement lock with a
    progress bar (``describe(row)`` says what finished) and a live table of ``columns``; an
    exception it raises is shown as a message, never a traceback.

    ``unusable(df)`` picks the rows that gave no result (default: status oom/error) and
    ``explain(bad)`` says in words what they need (default: :func:`failure_summary`). When every
    row is unusable, nothing is saved, the page keeps showing its last good table, and one error
    says what is needed; otherwise the rows are saved as a run of ``kind`` and shown from now on,
    with one message: a success, or a warning naming the failures. Returns the new table, or None
    when it was not replaced.
    """
    from revsnn.analysis.measure import to_frame

    frame = frame or to_frame
    unusable = unusable or data.failed_rows
    explain = explain or failure_summary
    rows: list = []
    result = None
    stopped = ""
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
            stopped = f"{type(exc).__name__}: {exc}"
        live.empty()
        bar.empty()
    if not rows and isinstance(result, pd.DataFrame):
        rows = result.to_dict("records")
    kept = get_table(kind)[1]
    if not rows:
        st.error(f"Measurement stopped before any result: {stopped or 'no rows'}. Still "
                 f"showing: {kept}.")
        return None
    df = frame(rows)
    bad = unusable(df)
    if len(bad) == len(df):
        st.error(f"None of the {len(df)} {what} gave a result: {explain(bad)}"
                 f"{'. Then it stopped: ' + stopped if stopped else ''}. Nothing was saved; "
                 f"still showing: {kept}.")
        return None
    path = data.save_run(kind, df)
    set_table(kind, df, f"measured now on {where}, saved as {path.name}")
    if len(bad) or stopped:
        st.warning(f"Measured {len(df) - len(bad)} of {len(df)} {what}"
                   + (f"; {len(bad)} gave no result: {explain(bad)}" if len(bad) else "")
                   + (f"; then it stopped: {stopped}" if stopped else "")
                   + f". Saved as {path.name}; the failed rows are listed in the table.")
    else:
        st.success(f"Measured {len(df)} of {len(df)} {what}; saved as {path.name} "
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


def cuda_devices() -> dict:
    """Widget label -> device string of every CUDA device (``CUDA:i (<GPU name>)``)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {f"CUDA:{i} ({torch.cuda.get_device_name(i)})": f"cuda:{i}"
            for i in range(torch.cuda.device_count())}


def device_options() -> dict:
    """Widget label -> device string: ``CPU`` and, when present, ``CUDA:i (<GPU name>)``."""
    return {"CPU": "cpu", **cuda_devices()}


CPU_ONLY = ("CPU only: no CUDA device (torch.cuda.is_available() is False), so CUDA-only metrics "
            "are hidden and every figure is a CPU measurement.")


def device_select(key: str, container=None) -> tuple:
    """The device widget of a page's sidebar: ``(label, device string)``. On a machine without
    CUDA it says so underneath (:data:`CPU_ONLY`)."""
    container = container or st.sidebar
    devices = device_options()
    label = container.selectbox("Device", list(devices), key=key)
    if len(devices) == 1:
        container.caption(CPU_ONLY)
    return label, devices[label]


CUDA_ONLY_METRICS = ("cuda_peak_bytes",)


def memory_metrics(df: Optional[pd.DataFrame], candidates) -> tuple:
    """``(metrics, default index)`` for a memory-metric menu: CUDA-only metrics only where the
    table has values for them; the default is the CUDA peak when it has, else the first
    candidate that has values (the peak, for the pages that list it first)."""
    def has(m):
        return df is not None and m in df.columns and pd.to_numeric(
            df[m], errors="coerce").notna().any()

    metrics = [m for m in candidates if (m not in CUDA_ONLY_METRICS or has(m))
               and (df is None or m not in df.columns or has(m))]
    metrics = metrics or list(candidates)[:1]
    cuda = [m for m in metrics if m in CUDA_ONLY_METRICS]
    return metrics, metrics.index(cuda[0]) if cuda else 0


def unbuilt(modes, archs) -> list:
    """``(mode label, arch, the architectures it builds)`` for every chosen mode that does not
    build a chosen architecture, from the strategy registry (nothing is built or measured)."""
    from revsnn import strategy
    from revsnn.conversion import convertible, is_user_model
    from revsnn.models import MODELS

    out = []
    for name in modes:
        preset = strategy.get(name)
        for arch in archs:
            builds = convertible(preset) if is_user_model(arch) else preset.supports(arch)
            if not builds:
                out.append((preset.label, arch, [a for a in MODELS if preset.supports(a)]))
    return out


def _modes_for(arch) -> list:
    """Labels of the network presets that build ``arch`` (a zoo name or a user's model)."""
    from revsnn import strategy
    from revsnn.conversion import convertible, is_user_model

    if not is_user_model(arch):
        return list(mode_options("network", [arch]))
    return [label for label, name in mode_options("network").items()
            if convertible(strategy.get(name))]


def check_choices(modes, archs) -> str:
    """Raise ValueError when a chosen architecture has no chosen mode that builds it; otherwise
    a note (``""`` if none) naming the pairs that will be skipped."""
    skipped = unbuilt(modes, archs)
    for arch in archs:
        if sum(1 for _, a, _ in skipped if a == arch) == len(modes):
            raise ValueError(f"no chosen mode builds {arch}; choose one of "
                             f"{', '.join(_modes_for(arch))}")
    if not skipped:
        return ""
    by_mode: dict = {}
    for label, arch, builds in skipped:
        by_mode.setdefault(label, ([], builds))[0].append(arch)
    return "Skipped, not built by the registry: " + "; ".join(
        f"{label} on {', '.join(archs_)} (it builds {', '.join(builds)})"
        for label, (archs_, builds) in by_mode.items()) + "."


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


# ---------------------------------------------------------------------------------------------
# What a page shows under its charts
# ---------------------------------------------------------------------------------------------

def takeaway(text: str) -> None:
    """The page's one-line conclusion, computed from its table (:mod:`dashboard.insight`)."""
    if text:
        st.markdown(f"**Takeaway.** {text}")


def spread_note(df, metric: str) -> None:
    """The timing warning of :func:`dashboard.insight.spread_warning`, when there is one."""
    from dashboard import insight

    text = insight.spread_warning(df, metric)
    if text:
        st.warning(text, icon="⏱️")


def table(df, key: str) -> None:
    """The page's table with units in its column names (bytes in MiB, times in ms with their
    IQR); the CSV downloads keep the raw columns documented in data/README.md."""
    from dashboard import insight

    st.subheader("Table")
    st.caption("Bytes in MiB (2²⁰ B), times in ms (median, with the interquartile range of the "
               "repeats); the CSV downloads keep raw bytes and ms as documented in "
               "data/README.md.")
    st.dataframe(insight.display_table(df), hide_index=True, key=key)
