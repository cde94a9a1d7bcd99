"""``revsnn bench nodes``: one spiking node on input [T, batch, neurons], every memory mode side by side.

For each (dtype, T, batch) all requested modes are measured in one :func:`revsnn.analysis.measure.measure_nodes`
call, so their times are taken round-robin and the ratios between them hold on a noisy machine.
The baseline is the standard node: SpikingJelly's ``LIFNode`` when it is among the modes, otherwise
our LIF under BPTT (which saves the same three tensors per step).

Ratios printed per block:

- saved ratio = baseline saved bytes / mode saved bytes (higher: the mode keeps less for backward);
- bwd ratio = mode backward ms / baseline backward ms (lower: faster backward);
- fused vs revnet backward speed-up = revnet bwd / fused bwd;
- fused backward / LIF BPTT backward = fused bwd / bptt bwd;
- ReversibleLIF saved-bytes reduction = baseline saved / ReversibleLIF saved. The standard node keeps
  3 tensors per neuron-step, ReversibleLIF one final membrane per neuron, so the expected value is 3T
  (times itemsize(dtype) / itemsize(state dtype) where the states are kept wider than the input);
- with ``compile="both"``: torch.compile speed-up = eager step / compiled step, per mode (the
  compilation itself happens in the warmup runs and is not timed).

Every row says which backend ran the node's loops (``backend``: torch, triton, or SpikingJelly's
implementation) and whether it was compiled; the ratios above are taken between eager rows (or
between compiled rows when only those were measured).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from .report import (echo, failure_text, fmt_ms, fmt_ratio, format_table, human_bytes,
                     is_missing, is_ok, safe_ratio, write_rows)

__all__ = [
    "run_node_bench", "baseline_mode", "format_block", "format_summary",
    "block_ratios", "expected_reduction", "compile_speedups", "backend_speedups", "primary_rows",
    "LEGEND", "COMPILE_CHOICES",
]

DEFAULT_T = (4, 8, 32)
DEFAULT_BATCH = (64,)
DEFAULT_NEURONS = 8192

LEGEND = (
    "saved: bytes autograd keeps for backward beyond the node's input and output "
    "(storage-deduplicated);\n"
    "act: activation bytes alive after forward; peak: tracked peak over forward + backward;\n"
    "saved ratio = baseline saved / mode saved (higher = leaner); "
    "bwd ratio = mode bwd / baseline bwd (lower = faster);\n"
    "times: median ± IQR in ms (range when repeats < 4), modes timed round-robin in one run."
)

# Modes whose backward reconstructs from the final state (saved bytes independent of T); the
# first present is used for the saved-bytes reduction line.
_REVERSIBLE_FOR_REDUCTION = ("fused", "revnet")


COMPILE_CHOICES = {"eager": (False,), "compiled": (True,), "both": (False, True)}
"""``compile=`` of :func:`run_node_bench`: which of eager and ``torch.compile`` runs to measure."""


def run_node_bench(modes: Sequence[str], *, Ts=DEFAULT_T, batches=DEFAULT_BATCH,
                   neurons: int = DEFAULT_NEURONS, dtypes=("float32",), device="cpu",
                   repeats: int = 5, warmup: int = 1, track_memory: bool = True, out=None,
                   quiet: bool = False, backend="auto", compile: str = "eager") -> list:
    """Measure every mode per (dtype, T, batch), print each block as it finishes, return all rows.

    ``backend`` (one name or several, measured side by side) goes to the nodes that take one
    (NOTE [backends] in :mod:`revsnn.kernels`); ``compile`` is one of :data:`COMPILE_CHOICES`. With ``out``, the file is rewritten after every
    block, so an interrupted run keeps what it measured.
    """
    import sys

    from ..analysis.measure import COLUMNS, measure_nodes

    if compile not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {tuple(COMPILE_CHOICES)}, got {compile!r}")
    if compile != "eager" and warmup < 1:
        raise ValueError("compiled runs need warmup >= 1 (the first run compiles)")
    backends = (backend,) if isinstance(backend, str) else tuple(backend)
    echo(f"revsnn bench nodes: modes {' '.join(modes)}; neurons {neurons}; device {device}; "
         f"backend {' '.join(backends)}; {compile}; repeats {repeats}, warmup {warmup}",
         quiet=quiet)
    echo(LEGEND, quiet=quiet)
    rows: list = []
    for dtype in dtypes:
        for T in Ts:
            for batch in batches:
                echo(f"… measuring T={T} batch={batch} {dtype} ({len(modes)} modes)",
                     quiet=quiet, file=sys.stderr)
                block = measure_nodes(modes, Ts=(T,), batches=(batch,), neurons=neurons,
                                      repeats=repeats, warmup=warmup, track_memory=track_memory,
                                      dtype=dtype, device=device, backends=backends,
                                      compile_modes=COMPILE_CHOICES[compile])
                rows += block
                echo("\n" + format_block(block, neurons=neurons), quiet=quiet)
                if out is not None:
                    write_rows(rows, out, columns=COLUMNS)
    if len(rows) > len(modes):
        echo("\n" + format_summary(rows), quiet=quiet)
    if out is not None:
        echo(f"\nwrote {len(rows)} rows to {out}", quiet=quiet)
    return rows


def baseline_mode(modes: Sequence[str]) -> Optional[str]:
    """The standard node to compare against: spikingjelly if present, else bptt, else None."""
    for m in ("spikingjelly", "bptt"):
        if m in modes:
            return m
    return None


def expected_reduction(T: int, dtype: str) -> tuple:
    """``(value, formula)`` of the expected saved-bytes reduction of ReversibleLIF vs the standard
    node: 3T, scaled by itemsize(dtype) / itemsize(state dtype) when the states are kept wider.

    >>> expected_reduction(8, "float32")
    (24.0, '3T = 24')
    >>> expected_reduction(8, "bfloat16")
    (12.0, '3T × 2/4 B = 12')
    """
    from ..analysis.measure import parse_dtype
    from ..nodes.reversible import ReversibleLIF

    dt = parse_dtype(dtype)
    state = ReversibleLIF.compute_dtype(dt)
    a, b = dt.itemsize, state.itemsize
    value = 3.0 * T * a / b
    formula = f"3T = {value:g}" if a == b else f"3T × {a}/{b} B = {value:g}"
    return value, formula


def block_ratios(rows: Sequence[dict]) -> dict:
    """Ratios of one (T, batch, dtype) block, keyed by name; NaN where a side is missing/failed.

    Keys: ``baseline``, ``saved_ratio`` and ``bwd_ratio`` (dicts by mode), ``fused_vs_revnet``,
    ``fused_over_bptt``, ``reduction`` (baseline saved / ReversibleLIF saved), ``reversible``
    (the mode used for it).
    """
    by_mode = primary_rows(rows)
    base = baseline_mode(list(by_mode))
    b = by_mode.get(base) if base else None
    res: dict = {"baseline": base, "saved_ratio": {}, "bwd_ratio": {},
                 "compile_speedup": compile_speedups(rows),
                 "triton_speedup": backend_speedups(rows)}
    for mode, r in by_mode.items():
        ok = is_ok(r) and is_ok(b)
        res["saved_ratio"][mode] = (safe_ratio(b["saved_bytes"], r["saved_bytes"]) if ok
                                    else math.nan)
        res["bwd_ratio"][mode] = safe_ratio(r["bwd_ms"], b["bwd_ms"]) if ok else math.nan

    def ratio(num, den, key):
        rn, rd = by_mode.get(num), by_mode.get(den)
        return safe_ratio(rn[key], rd[key]) if is_ok(rn) and is_ok(rd) else math.nan

    res["fused_vs_revnet"] = ratio("revnet", "fused", "bwd_ms")
    res["fused_over_bptt"] = ratio("fused", "bptt", "bwd_ms")
    rev = next((m for m in _REVERSIBLE_FOR_REDUCTION if m in by_mode), None)
    res["reversible"] = rev
    res["reduction"] = ratio(base, rev, "saved_bytes") if base and rev else math.nan
    return res


def primary_rows(rows: Sequence[dict]) -> dict:
    """mode → the row the block's ratios use: its first eager row (the first backend asked for),
    or its first row when it was only measured compiled."""
    out: dict = {}
    for r in rows:
        if r.get("compiled") is not True:
            out.setdefault(r["mode"], r)
    for r in rows:
        out.setdefault(r["mode"], r)
    return out


def _speedups(rows, key, slow, fast) -> dict:
    pairs: dict = {}
    for r in rows:
        pairs.setdefault(r["mode"], {}).setdefault(key(r), r)
    return {mode: (safe_ratio(p[slow]["step_ms"], p[fast]["step_ms"])
                   if is_ok(p[slow]) and is_ok(p[fast]) else math.nan)
            for mode, p in pairs.items() if slow in p and fast in p}


def compile_speedups(rows: Sequence[dict]) -> dict:
    """Per mode measured both eager and compiled (same backend): eager step ms / compiled step
    ms (NaN when either failed)."""
    first = primary_rows(rows)
    same = [r for r in rows if r.get("backend") == first[r["mode"]].get("backend")]
    return _speedups(same, lambda r: r.get("compiled") is True, False, True)


def backend_speedups(rows: Sequence[dict]) -> dict:
    """Per mode measured eager on both PyTorch and Triton: torch step ms / triton step ms."""
    eager = [r for r in rows if r.get("compiled") is not True]
    return _speedups(eager, lambda r: r.get("backend"), "torch", "triton")


def _label(r: dict) -> str:
    return r["label"] + (" (compiled)" if r.get("compiled") is True else "")


def _why_missing(by_mode: dict, *modes) -> str:
    reasons = [f"{m}: {failure_text(by_mode[m], 40)}" for m in modes
               if m in by_mode and not is_ok(by_mode[m])]
    return f"n/a ({'; '.join(reasons)})" if reasons else "n/a"


def format_block(rows: Sequence[dict], neurons: Optional[int] = None) -> str:
    """The table and ratio lines of one (T, batch, dtype) block of rows from ``measure_nodes``."""
    rows = list(rows)
    if not rows:
        return ""
    first = rows[0]
    by_mode = primary_rows(rows)
    ratios = block_ratios(rows)
    base = ratios["baseline"]
    base_label = by_mode[base]["label"] if base else "none"
    shape = f"shape {first.get('shape')}" if neurons is None else f"neurons={neurons}"
    title = (f"T={first['T']}  batch={first['batch']}  {shape}  {first['dtype']}  "
             f"{first['device']} ({first['device_name']})  baseline: {base_label}")
    cuda = any(not is_missing(r.get("cuda_peak_bytes")) for r in rows)
    headers = ["mode", "backend", "saved", "act", "peak"] + (["cuda peak"] if cuda else []) + [
        "fwd ms", "bwd ms", "saved ratio", "bwd ratio"]
    table = []
    for r in rows:
        if not is_ok(r):
            table.append([_label(r), failure_text(r)])
            continue
        own = by_mode.get(r["mode"]) is r
        sr = ratios["saved_ratio"][r["mode"]] if own else math.nan
        sr_text = fmt_ratio(sr) if own else "–"
        if own and r["saved_bytes"] == 0 and base is not None and is_ok(by_mode[base]):
            sr_text = "∞ (saves 0 B)"
        table.append([_label(r), str(r.get("backend") or "?"), human_bytes(r["saved_bytes"]),
                      human_bytes(r["act_bytes"]), human_bytes(r["peak_bytes"])]
                     + ([human_bytes(r.get("cuda_peak_bytes"))] if cuda else [])
                     + [fmt_ms(r["fwd_ms"]), fmt_ms(r["bwd_ms"], r["bwd_ms_iqr"]), sr_text,
                        fmt_ratio(ratios["bwd_ratio"][r["mode"]]) if own else "–"])
    lines = [title, format_table(headers, table, align="<" + ">" * (len(headers) - 1))]
    for r in by_mode.values():
        if is_ok(r) and r["saved_bytes"] == 0:
            kept = [f"{human_bytes(r[k])} shared with its {what}"
                    for k, what in (("saved_input_bytes", "input"), ("saved_output_bytes", "output"))
                    if not is_missing(r[k]) and r[k] > 0]
            lines.append(f"note: {r['label']} saves 0 B of its own"
                         + (f" (it keeps {', '.join(kept)}, not counted)" if kept else ""))

    def ratio_line(text, key, *modes, suffix=""):
        if all(m in by_mode for m in modes):
            v = ratios[key]
            shown = fmt_ratio(v) if not is_missing(v) else _why_missing(by_mode, *modes)
            lines.append(f"{text}: {shown}{suffix}")

    ratio_line("fused vs revnet backward speed-up", "fused_vs_revnet", "fused", "revnet")
    ratio_line("fused backward / LIF BPTT backward", "fused_over_bptt", "fused", "bptt")
    rev = ratios["reversible"]
    if base and rev:
        _, formula = expected_reduction(int(first["T"]), str(first["dtype"]))
        ratio_line(f"ReversibleLIF saved-bytes reduction vs {base_label}", "reduction", rev, base,
                   suffix=f" ({formula})")
    labels = {r["mode"]: r["label"] for r in rows}
    for key, text in (("triton_speedup", "Triton kernels vs PyTorch loops (torch step / triton "
                                         "step)"),
                      ("compile_speedup", "torch.compile speed-up (eager step / compiled step)")):
        if ratios[key]:
            lines.append(f"{text}: " + ", ".join(f"{labels[m]} {fmt_ratio(v)}"
                                                 for m, v in ratios[key].items()))
    return "\n".join(lines)


def format_summary(rows: Sequence[dict]) -> str:
    """One line per (dtype, T, batch): the headline ratios of every block."""
    blocks: dict = {}
    for r in rows:
        blocks.setdefault((r["dtype"], r["T"], r["batch"]), []).append(r)
    table = []
    for (dtype, T, batch), block in blocks.items():
        ratios = block_ratios(block)
        table.append([dtype, str(T), str(batch), fmt_ratio(ratios["reduction"]),
                      expected_reduction(int(T), str(dtype))[1].split(" = ")[-1],
                      fmt_ratio(ratios["fused_vs_revnet"]), fmt_ratio(ratios["fused_over_bptt"])])
    headers = ["dtype", "T", "batch", "saved reduction", "expected", "fused vs revnet bwd",
               "fused / BPTT bwd"]
    return "summary (saved reduction = baseline saved / ReversibleLIF saved)\n" + format_table(
        headers, table, align="<>>>>>>")
