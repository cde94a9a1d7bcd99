"""Chart builders and table helpers of the dashboard: plain functions, tested without Streamlit."""

import math
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the dashboard package

from dashboard import charts, data  # noqa: E402
from revsnn import MemoryMode  # noqa: E402


def _row(mode, label, T, batch, saved, bwd, status="ok"):
    return {"kind": "node", "mode": mode, "label": label, "T": T, "batch": batch,
            "dtype": "float32", "device": "cpu", "device_name": "x86_64", "saved_bytes": saved,
            "act_bytes": saved + 1024, "peak_bytes": 2 * saved, "bwd_ms": bwd, "fwd_ms": 1.0,
            "step_ms": bwd + 1.0, "status": status, "error": "" if status == "ok" else "boom"}


@pytest.fixture
def nodes():
    rows = []
    for T in (4, 8):
        for batch in (16, 64):
            n = T * batch * 1024
            rows += [_row("spikingjelly", "SpikingJelly LIFNode", T, batch, 12 * n, 2.0),
                     _row("bptt", MemoryMode.BPTT.label, T, batch, 12 * n, 3.0),
                     _row("fused", MemoryMode.REVERSIBLE_FUSED.label, T, batch, 4 * batch * 1024,
                          4.0)]
    rows.append(_row("revnet", MemoryMode.REVERSIBLE_REVNET.label, 8, 64, math.nan, math.nan,
                     status="oom"))
    return pd.DataFrame(rows)


def _traces(fig):
    return [t for t in fig.data]


def test_lines_one_panel_per_facet_one_legend_entry_per_label(nodes):
    fig = charts.node_metric_figure(nodes, "saved_bytes")
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert len(fig.data) == 3 * 2  # 3 labels that measured × 2 batch panels; not the OOM row
    assert [t.name for t in fig.data if t.showlegend] == [
        "SpikingJelly LIFNode", "LIF (BPTT)", "ReversibleLIF (fused)"]
    assert MemoryMode.REVERSIBLE_REVNET.label not in names
    fused_b16 = next(t for t in fig.data if t.name == "ReversibleLIF (fused)" and t.xaxis == "x")
    assert list(fused_b16.x) == [4, 8]
    assert list(fused_b16.y) == pytest.approx([4 * 16 * 1024 / 2**20] * 2)  # MiB
    # both axes linear (a log x under a linear y bends a line proportional to T); every T a tick
    assert fig.layout.xaxis.type == "linear" == fig.layout.yaxis.type
    assert list(fig.layout.xaxis.tickvals) == [4, 8]
    log = charts.node_metric_figure(nodes, "saved_bytes", log_y=True)
    assert log.layout.xaxis.type == "log" == log.layout.yaxis.type


def test_a_single_T_gets_one_whole_tick_not_fractions(nodes):
    fig = charts.node_metric_figure(nodes[nodes["T"] == 4], "saved_bytes")
    assert list(fig.layout.xaxis.tickvals) == [4] and list(fig.layout.xaxis.ticktext) == ["4"]


def test_log_axes_label_one_tick_per_decade_when_they_span_decades(nodes):
    wide = nodes.assign(saved_bytes=nodes["saved_bytes"].where(nodes["mode"] != "fused",
                                                               nodes["saved_bytes"] / 10))
    fig = charts.node_metric_figure(wide, "saved_bytes", log_y=True)   # 0.006 … 6 MiB
    assert fig.layout.yaxis.dtick == 1 and fig.layout.yaxis.exponentformat == "power"
    narrow = charts.node_metric_figure(nodes[nodes["mode"] != "fused"], "saved_bytes", log_y=True)
    assert narrow.layout.yaxis.dtick is None                          # within a decade


def test_time_lines_carry_their_interquartile_range(nodes):
    d = nodes.assign(bwd_ms_q1=nodes["bwd_ms"] - 0.5, bwd_ms_q3=nodes["bwd_ms"] + 1.0)
    fig = charts.node_metric_figure(d, "bwd_ms")
    sj = next(t for t in fig.data if t.name == "SpikingJelly LIFNode")
    assert list(sj.error_y.array) == [1.0, 1.0] and list(sj.error_y.arrayminus) == [0.5, 0.5]
    assert fig.layout.meta["notes"] == ["error bars: interquartile range of the timed repeats"]
    assert charts.node_metric_figure(nodes, "bwd_ms").data[0].error_y.array is None


def test_identical_lines_are_told_apart(nodes):
    fig = charts.node_metric_figure(nodes, "saved_bytes")
    sj = next(t for t in fig.data if t.name == "SpikingJelly LIFNode")
    bptt = next(t for t in fig.data if t.name == "LIF (BPTT)")
    assert list(sj.y) == list(bptt.y)
    assert sj.line.dash is None and bptt.line.dash == "dash"
    assert all(s.endswith("-open") for s in bptt.marker.symbol)
    assert "LIF (BPTT) has the same values as SpikingJelly LIFNode" in fig.layout.meta["notes"][0]


def test_a_mode_that_saves_nothing_is_drawn_as_infinity(nodes):
    d = pd.concat([nodes, pd.DataFrame([_row("checkpoint", "LIF (checkpoint)", T, b, 0, 9.0)
                                        for T in (4, 8) for b in (16, 64)])])
    r = data.node_ratios(d)
    assert math.isinf(r[r["mode"] == "checkpoint"]["saved_ratio"].iloc[0])
    fig = charts.node_ratio_figure(r, "saved_ratio")
    ck = next(t for t in fig.data if t.name == "LIF (checkpoint)")
    top = max(v for t in fig.data if t.name != "LIF (checkpoint)" for v in t.y)
    assert list(ck.text) == ["∞ (saves 0 B)"] * 2 and all(v > top for v in ck.y)
    assert any("∞ (saves 0 B)" in n for n in fig.layout.meta["notes"])
    log = charts.node_metric_figure(d, "saved_bytes", log_y=True)
    ck = next(t for t in log.data if t.name == "LIF (checkpoint)")
    assert list(ck.text) == ["0 B", "0 B"] and all(0 < v for v in ck.y)


def test_context_goes_into_the_subtitle_and_metadata(nodes):
    d = nodes.assign(shape="[4, 16, 1024]", torch_version="2.13.0+cpu")
    fig = charts.add_context(charts.node_metric_figure(d, "saved_bytes"), d)
    sub = fig.layout.title.subtitle.text
    assert "1024 neurons" in sub and "torch 2.13.0+cpu" in sub and "cpu (x86_64)" in sub
    assert fig.layout.meta["context"]["neurons"] == "1024"
    one = d[d["batch"] == 16]
    assert "batch 16" in charts.add_context(charts.node_metric_figure(one, "bwd_ms"),
                                            one).layout.title.subtitle.text


def test_against_batch_panels_by_T(nodes):
    fig = charts.node_metric_figure(nodes, "bwd_ms", x="batch")
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["T = 4", "T = 8"]
    bptt = next(t for t in fig.data if t.name == "LIF (BPTT)")
    assert list(bptt.x) == [16, 64] and list(bptt.y) == [3.0, 3.0]


def test_colours_and_markers_are_stable_per_mode(nodes):
    a = charts.node_metric_figure(nodes, "saved_bytes")
    b = charts.node_metric_figure(nodes[nodes["mode"] != "spikingjelly"], "bwd_ms")
    colour = {t.name: t.line.color for t in a.data}
    assert all(colour[t.name] == t.line.color for t in b.data)
    assert len(set(colour.values())) == 3
    assert charts.label_symbol("LIF (BPTT)") != charts.label_symbol("SpikingJelly LIFNode")


def test_mixed_dtypes_get_separate_series(nodes):
    other = nodes.assign(dtype="float64")
    fig = charts.node_metric_figure(pd.concat([nodes, other]), "saved_bytes")
    assert "LIF (BPTT) · float64" in {t.name for t in fig.data}


def test_all_failed_gives_an_empty_figure_that_says_so(nodes):
    fig = charts.node_metric_figure(nodes.assign(status="error"), "saved_bytes")
    assert len(fig.data) == 0 and charts.is_empty(fig)
    assert "no successful rows" in fig.layout.annotations[0].text
    assert not charts.is_empty(charts.node_metric_figure(nodes, "saved_bytes"))
    # and no export is offered for it
    assert charts.standard_figures("nodes", nodes.assign(status="error")) == {}


def test_node_ratios_use_the_standard_node(nodes):
    r = data.node_ratios(nodes)
    assert set(r["baseline"]) == {"SpikingJelly LIFNode"}
    fused = r[(r["mode"] == "fused") & (r["T"] == 8) & (r["batch"] == 16)].iloc[0]
    assert fused["saved_ratio"] == pytest.approx(3 * 8)  # 12 B per neuron-step vs 4 B per neuron
    assert fused["bwd_ratio"] == pytest.approx(2.0)
    revnet = r[r["mode"] == "revnet"].iloc[0]
    assert math.isnan(revnet["saved_ratio"])  # an OOM row has no ratio
    fig = charts.node_ratio_figure(r, "saved_ratio")
    assert fig.layout.yaxis.type == "log" and "SpikingJelly LIFNode" in fig.layout.title.text


def test_node_ratios_fall_back_to_bptt(nodes):
    r = data.node_ratios(nodes[nodes["mode"] != "spikingjelly"])
    assert set(r["baseline"]) == {"LIF (BPTT)"}
    assert data.node_ratios(nodes[nodes["mode"] == "fused"]).empty


def test_network_bars_group_by_configuration():
    rows = [{"kind": "network", "arch": a, "T": 4, "batch": b, "mode": m, "label": lab,
             "peak_bytes": p, "status": "ok"}
            for a in ("vgg11", "resnet18") for b in (8, 16)
            for m, lab, p in (("bptt", "LIF (BPTT)", 2**24 * b), ("fused", "ReversibleLIF (fused)",
                                                                  2**22 * b))]
    rows.append({"kind": "network", "arch": "vgg11", "T": 4, "batch": 99, "mode": "fused",
                 "label": "ReversibleLIF (fused)", "peak_bytes": math.nan, "status": "oom"})
    fig = charts.network_figure(pd.DataFrame(rows), "peak_bytes")
    assert [t.name for t in fig.data] == ["LIF (BPTT)", "ReversibleLIF (fused)"]
    assert list(fig.data[0].x) == ["vgg11 · B=8", "vgg11 · B=16", "resnet18 · B=8",
                                   "resnet18 · B=16"]
    # a table of one configuration names all of it, not just the architecture
    one = pd.DataFrame([r for r in rows if r["arch"] == "vgg11" and r["batch"] == 8])
    assert list(charts.network_figure(one, "peak_bytes").data[0].x) == ["vgg11 · T=4 · B=8"]
    assert list(fig.data[1].y) == pytest.approx([32.0, 64.0, 32.0, 64.0])
    assert fig.layout.barmode == "group"


def test_budget_bars():
    df = pd.DataFrame({
        "search": ["batch", "batch", "batch", "T"],
        "mode": ["spikingjelly", "bptt", "fused", "fused"],
        "label": ["SpikingJelly LIFNode", "LIF (BPTT)", "ReversibleLIF (fused)",
                  "ReversibleLIF (fused)"],
        "arch": ["vgg11"] * 4, "budget_bytes": [2**28] * 4, "T": [4, 4, 4, 64],
        "batch": [12, 12, 96, 4], "max_value": [12, 12, 96, 64],
        "ratio_vs_spikingjelly": [1.0, 1.0, 8.0, math.nan], "status": ["ok"] * 4})
    fig = charts.budget_figure(df, "batch")
    assert [t.name for t in fig.data] == ["SpikingJelly LIFNode", "LIF (BPTT)",
                                          "ReversibleLIF (fused)"]
    assert [list(t.y) for t in fig.data] == [[12], [12], [96]]
    assert list(fig.data[2].text) == ["96 (8.00× SJ)"] and list(fig.data[0].text) == ["12"]
    assert fig.layout.title.text == "largest batch within 256.00 MiB: vgg11, T = 4"
    assert list(charts.budget_figure(df, "T").data[0].y) == [64]
    assert list(charts.standard_figures("budget", df)) == ["Budget: largest batch",
                                                           "Budget: largest T"]


@pytest.fixture
def drift():
    return pd.DataFrame([
        {"node": "ReversibleLIF", "T": 4, "dtype": "float32", "state_error": 0.0,
         "max_membrane": 6.0, "flipped_spikes": 0, "input_error": 0.0},
        {"node": "ReversibleLIF", "T": 8, "dtype": "float32", "state_error": 0.0,
         "max_membrane": 7.0, "flipped_spikes": 2, "input_error": 0.0},
        {"node": "naive coupling", "T": 4, "dtype": "float32", "state_error": 2e-7,
         "max_membrane": 24.0, "flipped_spikes": -1, "input_error": math.nan},
        {"node": "naive coupling", "T": 8, "dtype": "float32", "state_error": math.inf,
         "max_membrane": math.inf, "flipped_spikes": -1, "input_error": math.nan},
    ])


def test_drift_error_draws_zero_and_overflow_visibly(drift):
    fig = charts.drift_error_figure(drift)
    rev = next(t for t in fig.data if t.name == "ReversibleLIF · float32")
    naive = next(t for t in fig.data if t.name == "naive coupling · float32")
    assert list(rev.y) == [1e-20, 1e-20] and list(rev.text) == ["0 (exact)"] * 2
    assert naive.y[0] == pytest.approx(2e-7)
    assert naive.y[1] == pytest.approx(2e-5) and naive.marker.symbol[1] == "triangle-up"
    assert fig.layout.yaxis.type == "log"
    assert all(math.isfinite(v) for t in fig.data for v in t.y)  # plotly JSON has no inf


def test_drift_flips_counts_only_reversible_rows(drift):
    fig = charts.drift_flips_figure(drift)
    assert len(fig.data) == 1 and list(fig.data[0].y) == [0, 2]


@pytest.mark.parametrize("kind", ["nodes", "drift"])
def test_standard_figures_cover_every_kind(kind, nodes, drift):
    figs = charts.standard_figures(kind, nodes if kind == "nodes" else drift)
    assert figs and all(isinstance(f, go.Figure) and f.data for f in figs.values())
    assert charts.standard_figures(kind, None) == {}
    with pytest.raises(ValueError, match="unknown table kind"):
        charts.standard_figures("nope", nodes)


def test_runs_are_saved_listed_and_reloaded(tmp_path, monkeypatch, nodes):
    monkeypatch.setenv(data.RUNS_ENV, str(tmp_path))
    assert data.list_runs() == []
    p1 = data.save_run("nodes", nodes)
    p2 = data.save_run("drift", pd.DataFrame({"T": [4]}))
    (tmp_path / "notes.txt").write_text("not a run")
    assert set(data.list_runs()) == {p1.name, p2.name}
    kind, back = data.load_run(p1.name)
    assert kind == "nodes" and len(back) == len(nodes)
    assert "Nodes, " in data.describe_run(p1.name)
    with pytest.raises(ValueError, match="no saved run"):
        data.load_run("../nodes.csv")
    with pytest.raises(ValueError, match="unknown table kind"):
        data.save_run("bogus", nodes)


# ------------------------------------------------------------------ takeaways and warnings

from dashboard import insight  # noqa: E402


def _timed(nodes, spread):
    d = nodes[nodes["status"] == "ok"].copy()
    return d.assign(repeats=9, bwd_ms_q1=d["bwd_ms"] - spread, bwd_ms_q3=d["bwd_ms"] + spread)


def test_spread_warning_when_modes_overlap_within_their_iqr(nodes):
    # backward times 2, 3, 4 ms: a spread of ±0.2 separates them, ±0.6 does not
    assert insight.spread_warning(_timed(nodes, 0.2), "bwd_ms") == ""
    text = insight.spread_warning(_timed(nodes, 0.6), "bwd_ms")
    assert "in 8 of 8 side-by-side comparisons" in text and "not settled" in text
    few = insight.spread_warning(_timed(nodes, 0.2).assign(repeats=3), "bwd_ms")
    assert "medians of 3 repeats (fewer than 5" in few
    assert "records no spread" in insight.spread_warning(nodes.assign(repeats=9), "bwd_ms")


def test_nodes_takeaway_is_computed_from_the_largest_configuration(nodes):
    text = insight.nodes_takeaway(nodes, "saved_bytes")
    # T = 8, batch 64: fused 4·64·1024 B vs SpikingJelly's 12·8·64·1024 B = 24×, at 4/2 = 2× time
    assert text == ("At T = 8, batch 64: ReversibleLIF (fused) keeps 24× less for backward than "
                    "SpikingJelly LIFNode, at 2× its backward time.")
    zero = pd.concat([nodes, pd.DataFrame([_row("checkpoint", "LIF (checkpoint)", 8, 64, 0, 9.0)])])
    assert "LIF (checkpoint) keeps 0 B" in insight.nodes_takeaway(zero, "saved_bytes")
    assert "compare the peak" in insight.nodes_takeaway(zero, "saved_bytes")


def test_budget_and_drift_takeaways():
    budget = pd.DataFrame({
        "search": ["batch", "batch", "T"], "mode": ["spikingjelly", "fused", "fused"],
        "label": ["SpikingJelly LIFNode", "ReversibleLIF (fused)", "ReversibleLIF (fused)"],
        "arch": ["vgg11"] * 3, "budget_bytes": [2**31] * 3, "T": [8, 8, 111],
        "batch": [75, 205, 16], "max_value": [75, 205, 111], "status": ["ok"] * 3})
    assert insight.budget_takeaway(budget) == (
        "Within 2.00 GiB (vgg11): ReversibleLIF (fused) trains the largest batch, 205 (T = 8), "
        "2.73× SpikingJelly's 75; ReversibleLIF (fused) trains the largest T, 111 (batch 16).")
    assert insight.budget_takeaway(budget.assign(max_value=0)) == ""
    drift = pd.DataFrame([
        {"node": "ReversibleLIF", "T": 4, "dtype": "float32", "exact": True, "max_membrane": 6.0},
        {"node": "ReversibleLIF", "T": 8, "dtype": "float32", "exact": True, "max_membrane": 7.0},
        {"node": "naive coupling", "T": 4, "dtype": "float32", "exact": False,
         "max_membrane": 24.0},
        {"node": "naive coupling", "T": 8, "dtype": "float32", "exact": False,
         "max_membrane": math.inf}])
    assert insight.drift_takeaway(drift) == (
        "ReversibleLIF reconstructs bit-exactly in 2 of 2 configurations (T up to 8, float32); "
        "the naive coupling's membrane reaches 2.4e+01 at T = 4 (float32) and overflows from "
        "T = 8 (float32).")


def test_display_table_names_units_and_drops_empty_columns(nodes):
    shown = insight.display_table(nodes.assign(cuda_peak_bytes=math.nan, bwd_ms_iqr=0.5))
    assert {"saved (MiB)", "peak (MiB)", "backward (ms)", "backward IQR (ms)"} <= set(shown.columns)
    assert "CUDA peak (MiB)" not in shown.columns and "saved_bytes" not in shown.columns
    cols = list(shown.columns)
    assert cols.index("backward IQR (ms)") == cols.index("backward (ms)") + 1
    assert shown["saved (MiB)"].iloc[0] == pytest.approx(nodes["saved_bytes"].iloc[0] / 2**20)
