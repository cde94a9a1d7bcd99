"""Chart builders: plain functions from a tidy table to a ``plotly.graph_objects.Figure``.

They draw only successful rows (``status == "ok"``); failed rows are listed in the pages' tables.
Every mode keeps one colour and marker everywhere, the ones its preset in :mod:`revsnn.strategy`
declares, and legends follow the registry's order, so a legend reads the same on every page and in
every export.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from revsnn import strategy

__all__ = [
    "METRICS", "label_order", "label_color", "label_symbol", "empty_figure", "is_empty",
    "empty_reason", "spread_bounds", "context", "context_text", "add_context", "lines", "bars",
    "node_metric_figure", "node_ratio_figure", "network_figure", "budget_figure",
    "drift_error_figure", "drift_membrane_figure", "drift_flips_figure", "standard_figures",
]

MIB = 2.0 ** 20

METRICS = {
    # column: (axis title, divisor)
    "act_peak_bytes": ("activation peak over the step (MiB)", MIB),
    "predicted_act_peak_bytes": ("activation peak, analytic model (MiB)", MIB),
    "act_peak_ratio": ("SpikingJelly activation peak ÷ mode (× leaner)", 1.0),
    "saved_bytes": ("saved for backward (MiB)", MIB),
    "act_bytes": ("activations after forward (MiB)", MIB),
    "peak_bytes": ("peak over forward + backward (MiB)", MIB),
    "cuda_peak_bytes": ("CUDA peak allocated (MiB)", MIB),
    "fwd_ms": ("forward time (ms)", 1.0),
    "bwd_ms": ("backward time (ms)", 1.0),
    "step_ms": ("forward + backward time (ms)", 1.0),
    "saved_ratio": ("baseline saved ÷ mode saved (× leaner)", 1.0),
    "bwd_ratio": ("mode backward ÷ baseline backward (× time)", 1.0),
    "act_ratio": ("SpikingJelly activations ÷ mode (× leaner)", 1.0),
    "peak_ratio": ("SpikingJelly peak ÷ mode peak (× leaner)", 1.0),
    "step_ratio": ("mode step time ÷ SpikingJelly (× time)", 1.0),
    "step_vs_bptt": ("mode step time ÷ LIF (BPTT) (× time)", 1.0),
    "predicted_saved_bytes": ("saved for backward, analytic model (MiB)", MIB),
}
"""Column -> (axis title, divisor applied before plotting)."""

_PALETTE = qualitative.Plotly


def _presets() -> dict:
    """Label -> preset, in the registry's (legend) order; read at every call, so a preset
    registered later gets its own colour too."""
    return {p.label: p for p in strategy.presets()}


_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon"]
_LAYOUT = dict(template="plotly_white", height=460, margin=dict(l=60, r=20, t=60, b=40),
               legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0))


def label_order(labels) -> list:
    """Labels sorted in legend order: the fixed mode order first, then the rest alphabetically."""
    labels = list(dict.fromkeys(labels))
    fixed = _presets()
    known = [lab for lab in fixed if lab in labels]
    return known + sorted(lab for lab in labels if lab not in fixed)


def label_symbol(label: str) -> str:
    """A stable marker per label (its preset's; others by a stable hash), so that lines lying on
    top of each other stay readable."""
    preset = _presets().get(label)
    if preset is not None:
        return preset.symbol
    return _SYMBOLS[sum(map(ord, str(label))) % len(_SYMBOLS)]


def label_color(label: str) -> str:
    """A stable colour per label (its preset's; others by a stable hash)."""
    preset = _presets().get(label)
    if preset is not None:
        return preset.colour
    return _PALETTE[sum(map(ord, str(label))) % len(_PALETTE)]


def _ok(df: Optional[pd.DataFrame]) -> pd.DataFrame:
    if df is None:
        return pd.DataFrame()
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    return df


def empty_figure(title: str, message: str = "no successful rows to plot") -> go.Figure:
    """A figure with no data that says why; :func:`is_empty` tells the pages not to draw it."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False,
                      meta={"empty": message}, **_LAYOUT)
    return fig


def is_empty(fig: go.Figure) -> bool:
    """True for a figure without a single drawn value (see :func:`empty_figure`)."""
    return not any(len(getattr(t, "y", None) or ()) or len(getattr(t, "x", None) or ())
                   for t in fig.data)


def empty_reason(fig: go.Figure) -> str:
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    return meta.get("empty", "no successful rows to plot")


def _series(df: pd.DataFrame, series: str, extra: Sequence[str]) -> pd.Series:
    """Series name: the label, plus dtype/device when a table mixes several."""
    name = df[series].astype(str)
    for col in extra:
        if col in df.columns and df[col].nunique(dropna=False) > 1:
            name = name + " · " + df[col].astype(str)
    return name


# ---------------------------------------------------------------------------------- spread

def spread_bounds(df: pd.DataFrame, y: str):
    """``(low, high)`` Series of the interquartile range of the time column ``y``, or None.

    Uses the quartile columns ``<y>_q1`` / ``<y>_q3`` when the table has them; a table written
    before them has only the width ``<y>_iqr``, which is then centred on the median.
    """
    q1, q3, iqr = f"{y}_q1", f"{y}_q3", f"{y}_iqr"
    if q1 in df.columns and q3 in df.columns and df[q1].notna().any():
        return df[q1].astype(float), df[q3].astype(float)
    if iqr in df.columns and df[iqr].notna().any():
        half = df[iqr].astype(float) / 2
        return df[y].astype(float) - half, df[y].astype(float) + half
    return None


def _error_y(part: pd.DataFrame, y: str, div: float) -> Optional[dict]:
    bounds = spread_bounds(part, y)
    if bounds is None:
        return None
    lo, hi = bounds
    mid = part[y].astype(float)
    return dict(type="data", symmetric=False, array=((hi - mid).clip(lower=0) / div).tolist(),
                arrayminus=((mid - lo).clip(lower=0) / div).tolist(), thickness=1.2, width=4)


def _int_ticks(values) -> Optional[list]:
    """Every value as a tick when the axis holds a few whole numbers (T, batch): no 0.5 at T=1."""
    vals = sorted({float(v) for v in values if pd.notna(v)})
    if vals and len(vals) <= 12 and all(v.is_integer() for v in vals):
        return [int(v) for v in vals]
    return None


def _log_dtick(values) -> Optional[int]:
    """One labelled tick per decade once a log axis spans two decades (no crowded minor labels)."""
    vals = [float(v) for v in values if pd.notna(v) and math.isfinite(float(v)) and v > 0]
    if len(vals) < 2:
        return None
    return 1 if math.log10(max(vals) / min(vals)) >= 2 else None


def _edges(values, log_y: bool) -> tuple:
    """``(top, floor)``: where a chart of ``values`` draws infinite values and log-axis zeros."""
    finite = [float(v) for v in values if pd.notna(v) and math.isfinite(float(v))]
    positive = [v for v in finite if v > 0]
    top = max(finite) * (3 if log_y else 1.15) if finite else 1.0
    floor = min(positive) / 3 if positive else 1.0
    return top, floor


def _zero_and_infinite(ys: list, log_y: bool, is_ratio: bool, what: str, edges: tuple):
    """Values a chart cannot draw, made visible: ``inf`` (a mode that saves 0 B, as a ratio)
    at ``top`` above the largest finite value, and 0 on a log axis at ``floor`` below the smallest
    positive one (``edges = (top, floor)`` from :func:`_edges`). Returns the values to draw, hover
    texts, marker symbols and the notes to print under the chart."""
    top, floor = edges
    out, texts, marks, notes = [], [], [], set()
    for v in ys:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None), texts.append("—"), marks.append(None)
        elif math.isinf(v):
            out.append(top), texts.append("∞ (saves 0 B)" if is_ratio else "∞"),
            marks.append("triangle-up")
            notes.add("▲ ∞ (saves 0 B): the mode keeps nothing that the saved-tensor hooks "
                      "see; drawn at the top" if is_ratio else "▲ infinite: drawn at the top")
        elif v == 0 and log_y:
            out.append(floor), texts.append(f"0 {what}".strip()), marks.append("circle-open")
            notes.add("○ 0: drawn at the bottom of the log axis")
        else:
            out.append(v), texts.append(f"{v:.4g}"), marks.append(None)
    return out, texts, marks, sorted(notes)


def _same_points(a: tuple, b: tuple) -> bool:
    (xa, ya), (xb, yb) = a, b
    if list(xa) != list(xb) or len(ya) != len(yb):
        return False
    return all((u is None and v is None) or (u is not None and v is not None and
               math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12)) for u, v in zip(ya, yb))


_DASHES = ["dash", "dot", "dashdot", "longdash"]


def lines(df: pd.DataFrame, y: str, *, x: str = "T", facet: Optional[str] = "batch",
          series: str = "label", log_x: bool = False, log_y: bool = False,
          title: Optional[str] = None, y_title: Optional[str] = None) -> go.Figure:
    """``y`` against ``x``: one line per ``series``, one panel per value of ``facet``.

    Times are drawn with their interquartile range as error bars (:func:`spread_bounds`). A line
    that lies exactly on an earlier one is drawn dashed with open markers and named in a note
    under the chart; infinite ratios and zeros on a log axis are drawn at the axis' edge with a
    marker that says which (:func:`_zero_and_infinite`). Whole-number x values are the ticks.
    """
    axis, div = METRICS.get(y, (y, 1.0))
    y_title = y_title or axis
    title = title or f"{y_title} vs {x}"
    d = _ok(df)
    if d.empty or y not in d.columns or d[y].isna().all():
        return empty_figure(title)
    d = d.assign(_series=_series(d, series, ("dtype", "device_name")))
    facets = sorted(d[facet].unique()) if facet and facet in d.columns else [None]
    fig = make_subplots(rows=1, cols=len(facets), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"{facet} = {v}" for v in facets] if facets[0] is not None
                        else None)
    base_labels = dict(zip(d["_series"], d[series].astype(str)))
    is_ratio = y.endswith("_ratio")
    edges = _edges(d[y] / div, log_y)
    notes: set = set()
    drawn: dict = {}              # facet -> [(name, (xs, ys))] already drawn
    hidden: dict = {}             # name -> the names of the lines it lies on
    for name in label_order(d["_series"]):
        color = label_color(base_labels[name])
        for col, fv in enumerate(facets, start=1):
            part = d[d["_series"] == name]
            if fv is not None:
                part = part[part[facet] == fv]
            part = part.sort_values(x)
            if part.empty:
                continue
            raw = [None if pd.isna(v) else float(v) / div for v in part[y]]
            ys, texts, marks, new_notes = _zero_and_infinite(
                raw, log_y, is_ratio, "B" if y.endswith("bytes") else "", edges)
            notes.update(new_notes)
            points = (part[x].tolist(), ys)
            under = [other for other, pts in drawn.get(fv, []) if _same_points(points, pts)]
            drawn.setdefault(fv, []).append((name, points))
            line, symbol = dict(color=color), label_symbol(base_labels[name])
            if under:
                hidden.setdefault(name, set()).update(under)
                line["dash"] = _DASHES[(len(hidden) - 1) % len(_DASHES)]
                symbol = f"{symbol}-open"
            symbols = [m or symbol for m in marks]
            fig.add_trace(go.Scatter(
                x=points[0], y=ys, text=texts, mode="lines+markers", name=name,
                legendgroup=name, showlegend=col == 1, line=line,
                marker=dict(symbol=symbols, size=10 if under else 8),
                error_y=_error_y(part, y, div),
                hovertemplate=f"{name}<br>{x}=%{{x}}<br>{y_title}=%{{text}}<extra></extra>"),
                row=1, col=col)
    xs = sorted(d[x].unique())
    use_log_x = log_x and len(xs) > 1 and min(xs) > 0
    ticks = _int_ticks(xs)
    fig.update_xaxes(title_text=x, type="log" if use_log_x else "linear",
                     tickvals=ticks, ticktext=[str(v) for v in ticks] if ticks else None)
    values = [v for t in fig.data for v in t.y if v is not None]
    fig.update_yaxes(type="log" if log_y else "linear",
                     dtick=_log_dtick(values) if log_y else None,
                     exponentformat="power" if log_y else "B")
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    for name, under in hidden.items():
        notes.add(f"{name} has the same values as {', '.join(sorted(under))}: drawn dashed "
                  "with open markers on top")
    if any(t.error_y and t.error_y.array is not None for t in fig.data):
        notes.add("error bars: interquartile range of the timed repeats")
    fig.update_layout(title=title, **_LAYOUT)
    _add_notes(fig, notes)
    return fig


def _add_notes(fig: go.Figure, notes) -> None:
    """Notes under the legend (kept in ``layout.meta["notes"]`` for the pages and the tests)."""
    notes = list(dict.fromkeys(notes))
    if not notes:
        return
    meta = dict(fig.layout.meta) if isinstance(fig.layout.meta, dict) else {}
    meta["notes"] = list(meta.get("notes", [])) + notes
    fig.update_layout(meta=meta)
    fig.add_annotation(text="<br>".join(meta["notes"]), showarrow=False, xref="paper",
                       yref="paper", x=0, y=-0.36, xanchor="left", yanchor="top", align="left",
                       font=dict(size=11, color="#555"))
    fig.update_layout(height=_LAYOUT["height"] + 18 * len(meta["notes"]),
                      margin=dict(_LAYOUT["margin"], b=60 + 18 * len(meta["notes"])))


def bars(df: pd.DataFrame, y: str, *, x: str, series: str = "label", title: Optional[str] = None,
         y_title: Optional[str] = None, log_y: bool = False, text: Optional[str] = None
         ) -> go.Figure:
    """Grouped bars: ``y`` per category ``x``, one bar colour per ``series``; times with their
    interquartile range as error bars, infinite ratios drawn at the top and labelled."""
    axis, div = METRICS.get(y, (y, 1.0))
    y_title = y_title or axis
    title = title or y_title
    d = _ok(df)
    if d.empty or y not in d.columns or d[y].isna().all():
        return empty_figure(title)
    cats = list(dict.fromkeys(d[x].astype(str)))
    if x == series:
        cats = label_order(cats)
    fig = go.Figure()
    notes: set = set()
    is_ratio = y.endswith("_ratio")
    edges = _edges(d[y] / div, log_y)
    for name in label_order(d[series].astype(str)):
        part = d[d[series].astype(str) == name]
        raw = [None if pd.isna(v) else float(v) / div for v in part[y]]
        vals, texts, _, new_notes = _zero_and_infinite(raw, log_y, is_ratio, "", edges)
        notes.update(new_notes)
        fig.add_trace(go.Bar(
            x=part[x].astype(str).tolist(), y=vals, name=name,
            marker_color=label_color(name), error_y=_error_y(part, y, div),
            text=texts if text is None else part[text].astype(str).tolist(),
            textposition="outside",
            hovertemplate=f"{name}<br>%{{x}}<br>{y_title}=%{{text}}<extra></extra>"))
    values = [v for t in fig.data for v in t.y if v is not None]
    fig.update_layout(title=title, barmode="group", **_LAYOUT)
    fig.update_xaxes(categoryorder="array", categoryarray=cats)
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear",
                     dtick=_log_dtick(values) if log_y else None,
                     exponentformat="power" if log_y else "B")
    if any(t.error_y and t.error_y.array is not None for t in fig.data):
        notes.add("error bars: interquartile range of the timed repeats")
    _add_notes(fig, notes)
    return fig


# -------------------------------------------------------------------------------- nodes

def node_metric_figure(df: pd.DataFrame, metric: str = "peak_bytes", *, x: str = "T",
                       log_y: bool = False, log_x: Optional[bool] = None) -> go.Figure:
    """Rows of ``measure_nodes`` against T or batch, one panel per value of the other. Both axes
    are linear or both logarithmic (``log_x`` follows ``log_y`` unless given), so that growth
    proportional to T reads as a straight line either way."""
    facet = "batch" if x == "T" else "T"
    return lines(df, metric, x=x, facet=facet, log_y=log_y,
                 log_x=log_y if log_x is None else log_x,
                 title=f"{METRICS.get(metric, (metric,))[0]} vs {x}")


def node_ratio_figure(ratios: pd.DataFrame, metric: str = "saved_ratio", *, x: str = "T"
                      ) -> go.Figure:
    """Ratios from :func:`dashboard.data.node_ratios` against T or batch; the saved-bytes ratio on
    log-log axes (it grows in proportion to T), the time ratio on linear ones with its spread."""
    facet = "batch" if x == "T" else "T"
    base = ratios["baseline"].iloc[0] if ratios is not None and not ratios.empty else "baseline"
    title = {"saved_ratio": f"saved bytes: {base} ÷ mode",
             "bwd_ratio": f"backward time: mode ÷ {base}"}.get(metric, metric)
    log = metric == "saved_ratio"
    return lines(ratios, metric, x=x, facet=facet, log_y=log, log_x=log, title=title)


# -------------------------------------------------------------------------------- networks

def _config(df: pd.DataFrame) -> pd.Series:
    """Bar category per row: the architecture and what varies between configurations; a table of
    one configuration names all of it (image size, T, batch), so a lone bar is not just "vgg11"."""
    single = len(df[[c for c in ("arch", "image_size", "T", "batch") if c in df.columns]]
                 .drop_duplicates()) == 1
    parts = []
    for col, fmt in (("arch", "{}"), ("image_size", "{}px"), ("T", "T={}"), ("batch", "B={}")):
        if col in df.columns and (col == "arch" or single or df[col].nunique(dropna=False) > 1):
            parts.append(df[col].map(lambda v, f=fmt: f.format(int(v) if isinstance(v, float)
                                                              and v.is_integer() else v)))
    if not parts:
        return pd.Series(["all"] * len(df), index=df.index)
    out = parts[0].astype(str)
    for p in parts[1:]:
        out = out + " · " + p.astype(str)
    return out


def network_figure(df: pd.DataFrame, metric: str = "peak_bytes", log_y: bool = False
                   ) -> go.Figure:
    """One training step of a whole network per configuration (arch · T · batch), bars per mode."""
    d = _ok(df)
    if not d.empty:
        d = d.assign(config=_config(d))
    title = f"{METRICS.get(metric, (metric,))[0]}: one training step"
    return bars(d, metric, x="config", title=title, log_y=log_y)


# -------------------------------------------------------------------------------- budget

def budget_figure(df: pd.DataFrame, search: str = "batch", title: Optional[str] = None
                  ) -> go.Figure:
    """Rows of :func:`revsnn.bench.budget.budget_search`: the largest batch (``search="batch"``)
    or T (``"T"``) per mode, one bar each, labelled with the ratio to SpikingJelly."""
    d = _ok(df)
    if not d.empty and "search" in d.columns:
        d = d[d["search"] == search]
    if not d.empty and "max_value" in d.columns:
        d = d[d["max_value"] > 0]           # over the budget even at 1: named by the page
    if d.empty:
        return empty_figure(title or f"largest {search} under the budget",
                            "no mode fits within the budget")
    first = d.iloc[0]
    fixed = (f"T = {first['T']:g}" if search == "batch" else f"batch = {first['batch']:g}") \
        if search in ("batch", "T") else ""
    from revsnn.bench.report import human_bytes
    title = title or (f"largest {search} within {human_bytes(first['budget_bytes'])}: "
                      f"{first['arch']}, {fixed}")

    def text(r):
        ratio = r.get("ratio_vs_spikingjelly", math.nan)
        extra = (f" ({ratio:.2f}× SJ)" if isinstance(ratio, float) and math.isfinite(ratio)
                 and r["mode"] != "spikingjelly" else "")
        return f"{int(r['max_value'])}{extra}"

    d = d.assign(_text=d.apply(text, axis=1))
    return bars(d, "max_value", x="label", title=title, y_title=f"largest {search}",
                text="_text")


# -------------------------------------------------------------------------------- drift

def _log_safe(values: pd.Series, floor: float, ceiling: float):
    """Values for a log axis: 0 drawn at ``floor``, inf/NaN overflow at ``ceiling``, with hover
    text and marker symbols that say which."""
    ys, texts, symbols = [], [], []
    for v in values:
        v = float(v)
        if v == 0.0:
            ys.append(floor), texts.append("0 (exact)"), symbols.append("circle-open")
        elif not math.isfinite(v):
            ys.append(ceiling), texts.append("inf / NaN (overflow)"), symbols.append("triangle-up")
        else:
            ys.append(v), texts.append(f"{v:.3g}"), symbols.append("circle")
    return ys, texts, symbols


def _drift_lines(df: pd.DataFrame, y: str, title: str, y_title: str, floor: float = 1e-20
                 ) -> go.Figure:
    if df is None or df.empty or y not in df.columns:
        return empty_figure(title)
    d = df[df[y].notna() | df["node"].eq("naive coupling")] if y != "input_error" else \
        df[df[y].notna()]
    finite = [float(v) for v in d[y] if math.isfinite(float(v)) and float(v) > 0]
    if d.empty:
        return empty_figure(title)
    ceiling = max(finite) * 100 if finite else 1.0
    fig = go.Figure()
    dashes = {"float64": "solid", "float32": "dash", "bfloat16": "dot", "float16": "dashdot"}
    for (node, dtype), part in d.groupby(["node", "dtype"], sort=False):
        part = part.sort_values("T")
        ys, texts, symbols = _log_safe(part[y], floor, ceiling)
        color = _PALETTE[5] if node == "ReversibleLIF" else _PALETTE[1]
        fig.add_trace(go.Scatter(
            x=part["T"].tolist(), y=ys, text=texts, mode="lines+markers",
            name=f"{node} · {dtype}", marker=dict(symbol=symbols, size=9),
            line=dict(color=color, dash=dashes.get(dtype, "solid")),
            hovertemplate=f"{node} · {dtype}<br>T=%{{x}}<br>{y_title}=%{{text}}<extra></extra>"))
    xs = sorted(d["T"].unique())
    fig.update_xaxes(title_text="T", type="log", tickvals=xs, ticktext=[str(v) for v in xs])
    fig.update_yaxes(title_text=y_title, type="log", exponentformat="power")
    fig.update_layout(title=title, **_LAYOUT)
    fig.add_annotation(text=f"○ exact 0 drawn at {floor:g}; ▲ overflow (inf)", showarrow=False,
                       xref="paper", yref="paper", x=1, y=1.0, xanchor="right", yanchor="bottom",
                       font=dict(size=11))
    return fig


def drift_error_figure(df: pd.DataFrame) -> go.Figure:
    """Reconstruction error of the initial state after walking T steps back, per node and dtype."""
    return _drift_lines(df, "state_error", "reconstruction error of V(0) after inverting T steps",
                        "max |V_rec(0) − V(0)|")


def drift_membrane_figure(df: pd.DataFrame) -> go.Figure:
    """Largest membrane magnitude seen in the forward (the naive coupling grows without bound)."""
    return _drift_lines(df, "max_membrane", "largest |membrane| in the forward", "max |V|")


def drift_flips_figure(df: pd.DataFrame) -> go.Figure:
    """Spikes whose recomputed threshold decision disagrees with the forward (ReversibleLIF)."""
    title = "flipped spikes when recomputing decisions (ReversibleLIF)"
    if df is None or df.empty:
        return empty_figure(title)
    d = df[(df["node"] == "ReversibleLIF") & (df["flipped_spikes"] >= 0)]
    if d.empty:
        return empty_figure(title)
    fig = go.Figure()
    for i, (dtype, part) in enumerate(d.groupby("dtype", sort=False)):
        part = part.sort_values("T")
        fig.add_trace(go.Bar(x=part["T"].astype(str).tolist(),
                             y=part["flipped_spikes"].tolist(), name=str(dtype),
                             text=part["flipped_spikes"].astype(int).astype(str).tolist(),
                             textposition="outside", marker_color=_PALETTE[(i + 2) % 10]))
    fig.update_layout(title=title, barmode="group", **_LAYOUT)
    fig.update_xaxes(title_text="T", type="category")
    fig.update_yaxes(title_text="flipped spikes", rangemode="tozero")
    return fig


# -------------------------------------------------------------------------------- all

def standard_figures(kind: str, df: Optional[pd.DataFrame]) -> dict:
    """The figures the results page offers for a table of ``kind``, by display name, each with
    its context (:func:`add_context`); figures without data are left out."""
    if df is None or df.empty:
        return {}
    if kind == "nodes":
        from dashboard.data import node_ratios
        ratios = node_ratios(df)
        figs = {"Nodes: peak memory vs T": node_metric_figure(df, "peak_bytes"),
                "Nodes: saved bytes vs T": node_metric_figure(df, "saved_bytes"),
                "Nodes: activations vs T": node_metric_figure(df, "act_bytes"),
                "Nodes: backward time vs T": node_metric_figure(df, "bwd_ms"),
                "Nodes: saved bytes vs batch": node_metric_figure(df, "saved_bytes", x="batch")}
        if not ratios.empty:
            figs["Nodes: saved-bytes ratio vs T"] = node_ratio_figure(ratios, "saved_ratio")
            figs["Nodes: backward-time ratio vs T"] = node_ratio_figure(ratios, "bwd_ratio")
    elif kind == "network":
        figs = {}
        if "act_peak_bytes" in df.columns and df["act_peak_bytes"].notna().any():
            figs["Architectures: activation peak"] = network_figure(df, "act_peak_bytes")
        figs.update({"Architectures: peak memory": network_figure(df, "peak_bytes"),
                     "Architectures: step time": network_figure(df, "step_ms")})
    elif kind == "budget":
        searches = df["search"].dropna().unique() if "search" in df.columns else []
        figs = {f"Budget: largest {s}": budget_figure(df, s) for s in ("batch", "T")
                if s in searches}
    elif kind == "drift":
        figs = {"Drift: reconstruction error": drift_error_figure(df),
                "Drift: membrane magnitude": drift_membrane_figure(df),
                "Drift: flipped spikes": drift_flips_figure(df)}
    else:
        raise ValueError(f"unknown table kind {kind!r}")
    return {name: add_context(fig, df) for name, fig in figs.items() if not is_empty(fig)}


# -------------------------------------------------------------------------------- context

_CONTEXT = (("arch", "{}"), ("T", "T = {}"), ("batch", "batch {}"), ("neurons", "{} neurons"),
            ("image_size", "{0}×{0} images"), ("dtype", "{}"), ("device", "{}"),
            ("torch_version", "torch {}"))


def context(df: Optional[pd.DataFrame]) -> dict:
    """What a table's figures were measured with: each of arch, T, batch, neurons, image size,
    dtype, device (with its name) and torch version that has one value in the table."""
    if df is None or df.empty:
        return {}
    d = _ok(df)
    d = d if not d.empty else df
    out = {}

    def one(col):
        if col not in d.columns:
            return None
        vals = d[col].dropna().unique()
        return vals[0] if len(vals) == 1 else None

    for col in ("arch", "T", "batch", "image_size", "dtype", "torch_version"):
        v = one(col)
        v = v.item() if hasattr(v, "item") else v       # numpy scalar -> Python
        if v is not None and not (col == "arch" and v == "node"):
            out[col] = int(v) if isinstance(v, float) and v.is_integer() else v
    if "shape" in d.columns and d.get("kind", pd.Series(["node"])).astype(str).eq("node").all():
        neurons = {str(s).strip("[]").split(",")[-1].strip() for s in d["shape"].dropna()}
        if len(neurons) == 1 and next(iter(neurons)).isdigit():
            out["neurons"] = int(next(iter(neurons)))
    dev, name = one("device"), one("device_name")
    if dev is not None or name is not None:
        out["device"] = f"{dev or ''} ({name})".strip() if name and name != dev else str(dev)
    return out


def context_text(ctx: dict) -> str:
    """``"batch 16 · 1024 neurons · float32 · cpu (AMD EPYC) · torch 2.13.0+cpu"``."""
    return " · ".join(fmt.format(ctx[k]) for k, fmt in _CONTEXT if k in ctx)


def add_context(fig: go.Figure, df: Optional[pd.DataFrame]) -> go.Figure:
    """Put the table's :func:`context` into ``fig``: a subtitle under the title (so a PNG, SVG or
    PDF says what it shows) and ``layout.meta["context"]`` (kept in the HTML export)."""
    ctx = context(df)
    if not ctx or is_empty(fig):
        return fig
    meta = dict(fig.layout.meta) if isinstance(fig.layout.meta, dict) else {}
    meta["context"] = {k: str(v) for k, v in ctx.items()}
    fig.update_layout(meta=meta, title_subtitle_text=context_text(ctx), title_yref="container",
                      title_y=0.98, title_yanchor="top",
                      margin=dict(t=max(fig.layout.margin.t or 0, 110)))
    return fig
