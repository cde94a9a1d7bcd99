"""What a page's table says, in words: the one-line takeaway of each page, the warning about timing
spread, the glossary, and the tables as shown (units in the column names).

Plain functions from a tidy table to text or a table, tested without Streamlit; the numbers are
the rows' own (the library measured them), nothing is estimated here.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import pandas as pd

from dashboard.charts import METRICS, MIB, label_order, spread_bounds

__all__ = ["GLOSSARY", "MIN_REPEATS", "spread_warning", "nodes_takeaway", "network_takeaway",
           "budget_takeaway", "drift_takeaway", "display_table", "baseline_label"]

MIN_REPEATS = 5
"""Fewer timed repeats than this and the interquartile range says little: the pages warn."""

GLOSSARY = {
    "SJ": "SpikingJelly 2.0.0's LIFNode (its PyTorch path), the standard node everything is "
          "compared with; ×SJ is a ratio to it.",
    "memopt": "spikingjelly.activation_based.memopt: SpikingJelly's own memory optimiser "
              "(layer-wise gradient checkpointing, 1-bit spike compression, automatic placement).",
    "BPTT": "backpropagation through time: autograd keeps every step's tensors for backward.",
    "checkpoint": "torch.utils.checkpoint: keeps segment inputs, recomputes the segment in "
                  "backward (≈ one extra forward).",
    "revnet / fused": "ReversibleLIF backwards: revnet reconstructs a step and re-runs it under "
                      "autograd; fused inverts and computes the vector-Jacobian product in one "
                      "graph-free pass.",
    "saved": "bytes autograd saves for backward (saved-tensor hooks). They do not see what "
             "checkpointing keeps in its own frame, so checkpoint shows 0 B here.",
    "activations": "activation bytes alive after the forward, tracked at the allocator "
                   "(MemTracker).",
    "peak": "the largest live memory over forward + backward (allocator-level); on a GPU also "
            "CUDA peak = torch.cuda.max_memory_allocated.",
    "activation peak": "peak over the whole training step minus parameters, buffers and their "
                       "gradients (the same in every strategy).",
    "×SJ / × leaner": "SJ's value ÷ the mode's: 24× = the mode keeps 24 times less.",
    "IQR": "interquartile range of the timed repeats (the middle half); drawn as error bars. "
           "Two modes whose ranges overlap are not ordered by that run.",
}

_MEMORY_PHRASE = {
    "saved_bytes": ("keeps", "less for backward"),
    "act_bytes": ("keeps", "fewer activation bytes after the forward"),
    "peak_bytes": ("peaks", "lower over forward + backward"),
    "cuda_peak_bytes": ("peaks", "lower on CUDA"),
    "act_peak_bytes": ("has a", "lower activation peak"),
    "predicted_act_peak_bytes": ("has a", "lower predicted activation peak"),
    "predicted_saved_bytes": ("keeps", "less for backward (analytic model)"),
}
_TIME_NAME = {"bwd_ms": "backward time", "fwd_ms": "forward time", "step_ms": "step time"}


def _ok(df: Optional[pd.DataFrame]) -> pd.DataFrame:
    if df is None:
        return pd.DataFrame()
    return df[df["status"] == "ok"] if "status" in df.columns else df


def _x(ratio: float) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "∞×"
    return f"{ratio:.3g}×" if ratio < 100 else f"{ratio:.0f}×"


def _metric_name(metric: str) -> str:
    """``"saved for backward"`` for ``saved_bytes`` (the axis title without its unit)."""
    return METRICS.get(metric, (metric,))[0].rsplit(" (", 1)[0]


def _baseline(block: pd.DataFrame):
    for mode in ("spikingjelly", "bptt"):
        hit = block[block["mode"] == mode]
        if len(hit):
            return hit.iloc[0]
    return None


def baseline_label(df: pd.DataFrame) -> Optional[str]:
    base = _baseline(_ok(df)) if df is not None and "mode" in df.columns else None
    return None if base is None else str(base["label"])


# ------------------------------------------------------------------------------- spread

def spread_warning(df: Optional[pd.DataFrame], metric: str,
                   group: Sequence[str] = ("arch", "T", "batch", "image_size", "dtype",
                                           "device_name")) -> str:
    """A warning about the timing in ``metric`` (``bwd_ms``, ``step_ms``, ...), or ``""``.

    It warns when the rows were timed fewer than :data:`MIN_REPEATS` times, and when, within one
    configuration, two modes' interquartile ranges overlap: the gap between them is smaller than
    their spread, so this run does not say which is faster.
    """
    d = _ok(df)
    if d.empty or metric not in d.columns or d[metric].isna().all():
        return ""
    name = _TIME_NAME.get(metric, metric)
    parts = []
    if "repeats" in d.columns and d["repeats"].notna().any():
        fewest = int(d["repeats"].min())
        if fewest < MIN_REPEATS:
            parts.append(f"{name}s are medians of {fewest} repeat{'s' * (fewest != 1)} "
                         f"(fewer than {MIN_REPEATS}: the spread is barely estimated)")
    bounds = spread_bounds(d, metric)
    if bounds is None:
        parts.append(f"this table records no spread for the {name}")
    else:
        d = d.assign(_lo=bounds[0], _hi=bounds[1])
        keys = [k for k in group if k in d.columns and d[k].notna().any()]
        close, pairs, example = 0, 0, None
        for _, block in (d.groupby(keys, dropna=False) if keys else [(None, d)]):
            block = block.dropna(subset=[metric]).sort_values(metric)
            rows = block.to_dict("records")
            for a, b in zip(rows, rows[1:]):
                pairs += 1
                if a["_hi"] >= b["_lo"]:          # the two middle halves overlap
                    close += 1
                    if example is None:
                        where = ", ".join(f"{k} {a[k]}" for k in ("arch", "T", "batch")
                                          if k in a and pd.notna(a[k]) and a[k] != "node")
                        example = (f"{a['label']} {a[metric]:.3g} [{a['_lo']:.3g}–"
                                   f"{a['_hi']:.3g}] vs {b['label']} {b[metric]:.3g} "
                                   f"[{b['_lo']:.3g}–{b['_hi']:.3g}] ms"
                                   + (f" at {where}" if where else ""))
        if close:
            parts.append(f"in {close} of {pairs} side-by-side comparisons the gap between two "
                         f"modes is within their spread (IQR), e.g. {example}: their order is "
                         "not settled by this run")
    if not parts:
        return ""
    return ("Timing: " + "; ".join(parts) + ". Rerun with more repeats on a quiet machine "
            "before trusting small time differences.")


# ------------------------------------------------------------------------------- takeaways

def _memory_sentence(block: pd.DataFrame, metric: str, time_metric: str, where: str) -> str:
    base = _baseline(block)
    if base is None or metric not in block.columns or pd.isna(base.get(metric)):
        return ""
    others = block[(block["mode"] != base["mode"]) & block[metric].notna()]
    if others.empty:
        return ""
    order = {lab: i for i, lab in enumerate(label_order(others["label"]))}
    others = others.assign(_order=others["label"].map(order)).sort_values([metric, "_order"])
    best = others.iloc[0]
    verb, what = _MEMORY_PHRASE.get(metric, ("keeps", f"less ({metric})"))
    tail = ""
    if best[metric] == 0:
        text = (f"{where}: {best['label']} keeps 0 B by {_metric_name(metric)}, "
                "a metric that does not see all it keeps")
        tail = "; compare the peak"
    else:
        ratio = float(base[metric]) / float(best[metric])
        if ratio <= 1.0:
            return (f"{where}: no mode is leaner than {base['label']} by "
                    f"{_metric_name(metric)}.")
        article = "a " if verb == "has a" else ""
        verb = "has" if verb == "has a" else verb
        text = f"{where}: {best['label']} {verb} {article}{_x(ratio)} {what} than {base['label']}"
    if time_metric in block.columns and pd.notna(best.get(time_metric)) \
            and pd.notna(base.get(time_metric)) and float(base[time_metric]) > 0:
        t = float(best[time_metric]) / float(base[time_metric])
        text += f", at {_x(t)} its {_TIME_NAME.get(time_metric, time_metric)}"
    text += tail
    return text + "."


def nodes_takeaway(df: Optional[pd.DataFrame], metric: str = "peak_bytes",
                   time_metric: str = "bwd_ms") -> str:
    """One sentence about the largest configuration of a node table: the leanest mode by
    ``metric`` against the standard node, and its time ratio."""
    d = _ok(df)
    if d.empty or "T" not in d.columns:
        return ""
    big = d[(d["T"] == d["T"].max())]
    big = big[big["batch"] == big["batch"].max()] if "batch" in big.columns else big
    where = f"At T = {int(big['T'].iloc[0])}" + (
        f", batch {int(big['batch'].iloc[0])}" if "batch" in big.columns else "")
    return _memory_sentence(big, metric, time_metric, where)


def network_takeaway(df: Optional[pd.DataFrame], metric: str = "act_peak_bytes") -> str:
    """One sentence about the largest configuration of a network table (largest T × batch)."""
    d = _ok(df)
    if d.empty or "arch" not in d.columns:
        return ""
    if metric.endswith(("_ms", "_ratio")) or metric not in d.columns or d[metric].isna().all():
        metric = "act_peak_bytes" if "act_peak_bytes" in d.columns and \
            d["act_peak_bytes"].notna().any() else "peak_bytes"
    size = d["T"] * d["batch"]
    cfg = d.loc[size.idxmax(), ["arch", "T", "batch"]]
    block = d[(d["arch"] == cfg["arch"]) & (d["T"] == cfg["T"]) & (d["batch"] == cfg["batch"])]
    where = f"{cfg['arch']} at T = {int(cfg['T'])}, batch {int(cfg['batch'])}"
    return _memory_sentence(block, metric, "step_ms", where)


def budget_takeaway(df: Optional[pd.DataFrame]) -> str:
    """The mode that trains the largest batch (and T) within the budget, against SpikingJelly."""
    from revsnn.bench.report import human_bytes

    d = _ok(df)
    if d.empty or "max_value" not in d.columns:
        return ""
    d = d[d["max_value"] > 0]
    parts = []
    for search in ("batch", "T"):
        block = d[d["search"] == search] if "search" in d.columns else d.iloc[0:0]
        if block.empty:
            continue
        best = block.sort_values("max_value", ascending=False).iloc[0]
        fixed = f"T = {int(best['T'])}" if search == "batch" else f"batch {int(best['batch'])}"
        text = f"{best['label']} trains the largest {search}, {int(best['max_value'])} ({fixed})"
        sj = block[block["mode"] == "spikingjelly"]
        if len(sj) and best["mode"] != "spikingjelly":
            v = int(sj["max_value"].iloc[0])
            text += f", {_x(best['max_value'] / v)} SpikingJelly's {v}"
        parts.append(text)
    if not parts:
        return ""
    first = d.iloc[0]
    return f"Within {human_bytes(first['budget_bytes'])} ({first['arch']}): " + \
        "; ".join(parts) + "."


def drift_takeaway(df: Optional[pd.DataFrame]) -> str:
    """Exact reconstruction count of ReversibleLIF and how far the naive coupling drifts."""
    if df is None or df.empty or "node" not in df.columns:
        return ""
    rev = df[df["node"] == "ReversibleLIF"]
    parts = []
    if len(rev):
        exact = int(rev["exact"].astype(str).str.lower().eq("true").sum())
        parts.append(f"ReversibleLIF reconstructs bit-exactly in {exact} of {len(rev)} "
                     f"configurations (T up to {int(rev['T'].max())}, "
                     f"{', '.join(map(str, rev['dtype'].unique()))})")
    naive = df[df["node"] == "naive coupling"].sort_values("T")
    if len(naive) and "max_membrane" in naive.columns:
        over = naive[~naive["max_membrane"].astype(float).map(math.isfinite)]
        fin = naive[naive["max_membrane"].astype(float).map(math.isfinite)]
        text = "the naive coupling's membrane"
        if len(fin):
            top = fin.loc[fin["max_membrane"].astype(float).idxmax()]
            text += (f" reaches {float(top['max_membrane']):.1e} at T = {int(top['T'])} "
                     f"({top['dtype']})")
        if len(over):
            first = over.sort_values("T").iloc[0]
            text += (f"{' and' if len(fin) else ''} overflows from T = {int(first['T'])} "
                     f"({first['dtype']})")
        parts.append(text)
    return ("; ".join(parts) + ".") if parts else ""


# ------------------------------------------------------------------------------- tables

_TIME_COLUMNS = {"fwd_ms": "forward (ms)", "bwd_ms": "backward (ms)", "step_ms": "step (ms)"}
_BYTE_NAMES = {"saved_bytes": "saved (MiB)", "saved_input_bytes": "saved, shared with input (MiB)",
               "saved_output_bytes": "saved, shared with output (MiB)",
               "saved_param_bytes": "saved, parameters (MiB)", "act_bytes": "activations (MiB)",
               "peak_bytes": "peak (MiB)", "act_peak_bytes": "activation peak (MiB)",
               "cuda_peak_bytes": "CUDA peak (MiB)", "predicted_saved_bytes":
               "saved, analytic (MiB)", "predicted_act_peak_bytes": "activation peak, analytic "
               "(MiB)", "budget_bytes": "budget (MiB)", "peak_at_max": "peak at max (MiB)",
               "peak_above_max": "peak at max + 1 (MiB)"}
_OTHER_NAMES = {"seconds": "search time (s)", "max_value": "largest value",
                "ratio_vs_spikingjelly": "× SpikingJelly", "saved_ratio": "saved: × leaner",
                "act_ratio": "activations: × leaner", "peak_ratio": "peak: × leaner",
                "act_peak_ratio": "activation peak: × leaner", "step_ratio": "step: × SJ time",
                "step_vs_bptt": "step: × LIF (BPTT) time", "step_vs_fused": "step: × fused time"}


def display_table(df: Optional[pd.DataFrame], *, drop_empty: bool = True) -> pd.DataFrame:
    """``df`` as a page shows it: bytes in MiB and every measured column named with its unit,
    each time next to its spread (IQR, ms), quartile columns folded into that spread, and
    (``drop_empty``) columns without a single value (e.g. CUDA peak on a CPU) left out."""
    if df is None:
        return pd.DataFrame()
    out = df.copy()
    for col, name in _TIME_COLUMNS.items():
        if col not in out.columns:
            continue
        bounds = spread_bounds(out, col)
        if bounds is not None:
            out[f"{col}_iqr"] = bounds[1] - bounds[0]
    out = out.drop(columns=[c for c in out.columns if c.endswith(("_q1", "_q3"))])
    rename = {}
    for col in out.columns:
        if col in _BYTE_NAMES:
            out[col] = pd.to_numeric(out[col], errors="coerce") / MIB
            rename[col] = _BYTE_NAMES[col]
        elif col in _TIME_COLUMNS:
            rename[col] = _TIME_COLUMNS[col]
        elif col.endswith("_ms_iqr") and col[:-4] in _TIME_COLUMNS:
            rename[col] = _TIME_COLUMNS[col[:-4]].replace(" (ms)", " IQR (ms)")
        elif col in _OTHER_NAMES:
            rename[col] = _OTHER_NAMES[col]
    # each time followed by its spread
    order = []
    for col in out.columns:
        if col.endswith("_ms_iqr") and col[:-4] in out.columns:
            continue
        order.append(col)
        if f"{col}_iqr" in out.columns and col in _TIME_COLUMNS:
            order.append(f"{col}_iqr")
    out = out[order].rename(columns=rename)
    if drop_empty:
        out = out[[c for c in out.columns if out[c].notna().any()]]
    return out
