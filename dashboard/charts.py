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
    "METRICS", "label_order", "label_color", "label_symbol", "empty_figure", "lines", "bars",
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
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, **_LAYOUT)
    return fig


def _series(df: pd.DataFrame, series: str, extra: Sequence[str]) -> pd.Series:
    """Series name: the label, plus dtype/device when a table mixes several."""
    name = df[series].astype(str)
    for col in extra:
        if col in df.columns and df[col].nunique(dropna=False) > 1:
            name = name + " · " + df[col].astype(str)
    return name


def lines(df: pd.DataFrame, y: str, *, x: str = "T", facet: Optional[str] = "batch",
          series: str = "label", log_x: bool = True, log_y: bool = False,
          title: Optional[str] = None, y_title: Optional[str] = None) -> go.Figure:
    """``y`` against ``x``: one line per ``series``, one panel per value of ``facet``."""
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
    for name in label_order(d["_series"]):
        color = label_color(base_labels[name])
        for col, fv in enumerate(facets, start=1):
            part = d[d["_series"] == name]
            if fv is not None:
                part = part[part[facet] == fv]
            part = part.sort_values(x)
            if part.empty:
                continue
            fig.add_trace(go.Scatter(
                x=part[x].tolist(), y=(part[y] / div).tolist(), mode="lines+markers", name=name,
                legendgroup=name, showlegend=col == 1, line=dict(color=color),
                marker=dict(symbol=label_symbol(base_labels[name]), size=8),
                hovertemplate=f"{name}<br>{x}=%{{x}}<br>{y_title}=%{{y:.4g}}<extra></extra>"),
                row=1, col=col)
    xs = sorted(d[x].unique())
    use_log_x = log_x and len(xs) > 1 and min(xs) > 0
    fig.update_xaxes(title_text=x, type="log" if use_log_x else "linear",
                     tickvals=xs if use_log_x else None, ticktext=[str(v) for v in xs]
                     if use_log_x else None)
    fig.update_yaxes(type="log" if log_y else "linear")
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def bars(df: pd.DataFrame, y: str, *, x: str, series: str = "label", title: Optional[str] = None,
         y_title: Optional[str] = None, log_y: bool = False, text: Optional[str] = None
         ) -> go.Figure:
    """Grouped bars: ``y`` per category ``x``, one bar colour per ``series``."""
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
    for name in label_order(d[series].astype(str)):
        part = d[d[series].astype(str) == name]
        vals = part[y] / div
        fig.add_trace(go.Bar(
            x=part[x].astype(str).tolist(), y=vals.tolist(), name=name,
            marker_color=label_color(name),
            text=[f"{v:.4g}" for v in vals] if text is None else part[text].astype(str).tolist(),
            textposition="outside",
            hovertemplate=f"{name}<br>%{{x}}<br>{y_title}=%{{y:.4g}}<extra></extra>"))
    fig.update_layout(title=title, barmode="group", **_LAYOUT)
    fig.update_xaxes(categoryorder="array", categoryarray=cats)
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear")
    return fig


# -------------------------------------------------------------------------------- nodes

def node_metric_figure(df: pd.DataFrame, metric: str = "saved_bytes", *, x: str = "T",
                       log_y: bool = False) -> go.Figure:
    """Rows of ``measure_nodes`` against T or batch, one panel per value of the other."""
    facet = "batch" if x == "T" else "T"
    return lines(df, metric, x=x, facet=facet, log_y=log_y,
                 title=f"{METRICS.get(metric, (metric,))[0]} vs {x}")


def node_ratio_figure(ratios: pd.DataFrame, metric: str = "saved_ratio", *, x: str = "T"
                      ) -> go.Figure:
    """Ratios from :func:`dashboard.data.node_ratios` against T or batch."""
    facet = "batch" if x == "T" else "T"
    base = ratios["baseline"].iloc[0] if ratios is not None and not ratios.empty else "baseline"
    title = {"saved_ratio": f"saved bytes: {base} ÷ mode",
             "bwd_ratio": f"backward time: mode ÷ {base}"}.get(metric, metric)
    return lines(ratios, metric, x=x, facet=facet, log_y=metric == "saved_ratio", title=title)


# -------------------------------------------------------------------------------- networks

def _config(df: pd.DataFrame) -> pd.Series:
    parts = []
    for col, fmt in (("arch", "{}"), ("image_size", "{}px"), ("T", "T={}"), ("batch", "B={}")):
        if col in df.columns and (col == "arch" or df[col].nunique(dropna=False) > 1):
            parts.append(df[col].map(lambda v, f=fmt: f.format(v)))
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
    if d.empty:
        return empty_figure(title or f"largest {search} under the budget")
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
    """The figures the results page offers for a table of ``kind``, by display name."""
    if df is None or df.empty:
        return {}
    if kind == "nodes":
        from dashboard.data import node_ratios
        ratios = node_ratios(df)
        figs = {"Nodes: saved bytes vs T": node_metric_figure(df, "saved_bytes"),
                "Nodes: activations vs T": node_metric_figure(df, "act_bytes"),
                "Nodes: backward time vs T": node_metric_figure(df, "bwd_ms"),
                "Nodes: saved bytes vs batch": node_metric_figure(df, "saved_bytes", x="batch")}
        if not ratios.empty:
            figs["Nodes: saved-bytes ratio vs T"] = node_ratio_figure(ratios, "saved_ratio")
            figs["Nodes: backward-time ratio vs T"] = node_ratio_figure(ratios, "bwd_ratio")
        return figs
    if kind == "network":
        figs = {}
        if "act_peak_bytes" in df.columns and df["act_peak_bytes"].notna().any():
            figs["Architectures: activation peak"] = network_figure(df, "act_peak_bytes")
        return {**figs, "Architectures: peak memory": network_figure(df, "peak_bytes"),
                "Architectures: step time": network_figure(df, "step_ms")}
    if kind == "budget":
        searches = df["search"].dropna().unique() if "search" in df.columns else []
        return {f"Budget: largest {s}": budget_figure(df, s) for s in ("batch", "T")
                if s in searches}
    if kind == "drift":
        return {"Drift: reconstruction error": drift_error_figure(df),
                "Drift: membrane magnitude": drift_membrane_figure(df),
                "Drift: flipped spikes": drift_flips_figure(df)}
    raise ValueError(f"unknown table kind {kind!r}")
