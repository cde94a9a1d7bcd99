"""Every dashboard page under streamlit.testing's AppTest: default render, live measurement, bad
input, failure rows, saved runs. Measurements are tiny CPU runs (a few neurons, T <= 3)."""

import json
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the dashboard package

from dashboard import data, state  # noqa: E402
from revsnn.analysis import measure  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")
PAGES = ["views/nodes.py", "views/architectures.py", "views/budget.py", "views/drift.py",
         "views/results.py"]
WIDGETS = ("button", "selectbox", "multiselect", "text_input", "number_input", "checkbox",
           "radio", "download_button")


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch):
    """Saved runs go to a temporary folder, never into the repository."""
    folder = tmp_path / "runs"
    monkeypatch.setenv(data.RUNS_ENV, str(folder))
    return folder


def open_page(page: str = "views/nodes.py") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    if page != "views/nodes.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def spec(at: AppTest, i: int = 0) -> dict:
    """The Plotly figure JSON of the i-th chart on the page."""
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def measure_nodes_tiny(at, modes=("LIF (BPTT)", "ReversibleLIF (fused)"), T="2 3", batch="2",
                       neurons=8):
    at.multiselect(key="nodes_modes").set_value(list(modes))
    at.text_input(key="nodes_T").input(T)
    at.text_input(key="nodes_batch").input(batch)
    at.number_input(key="nodes_neurons").set_value(neurons)
    at.number_input(key="nodes_repeats").set_value(1)
    at.number_input(key="nodes_warmup").set_value(0)
    at.button(key="nodes_measure").click().run()
    assert not at.exception, at.exception
    return at


# ------------------------------------------------------------------ every page


def _default_exists(page):
    kind = {"views/architectures.py": "network", "views/budget.py": "budget"}.get(page)
    return kind is None or (data.DEFAULTS_DIR / f"{kind}.csv").is_file()


@pytest.mark.parametrize("page", PAGES)
def test_page_opens_with_a_chart_of_the_shipped_table(page):
    at = open_page(page)
    if not _default_exists(page):
        # no shipped table for this page yet: it must say how to measure instead
        assert at.info and not at.get("plotly_chart")
        return
    assert at.get("plotly_chart"), f"{page} shows no chart"
    fig = spec(at)
    assert fig["data"] and any(len(t.get("y", [])) or len(t.get("x", [])) for t in fig["data"])
    assert not at.error


@pytest.mark.parametrize("page", PAGES)
def test_every_widget_has_a_key(page):
    at = open_page(page)
    for kind in WIDGETS:
        for w in at.get(kind):
            assert w.key, f"{page}: a {kind} without a key ({getattr(w, 'label', '')!r})"


def test_nodes_default_chart_holds_the_shipped_numbers():
    at = open_page()
    shipped = data.load_default("nodes")
    fig = spec(at)  # the default memory metric is the peak: saved bytes make checkpoint look free
    assert at.selectbox(key="nodes_mem").value == "peak_bytes"
    fused = [t for t in fig["data"] if t["name"] == "ReversibleLIF (fused)"]
    assert fused and fused[0]["x"] == sorted(shipped["T"].unique().tolist())
    want = shipped[(shipped["mode"] == "fused") & (shipped["batch"] == shipped["batch"].min())]
    assert fused[0]["y"] == pytest.approx((want.sort_values("T")["peak_bytes"] / 2**20).tolist())
    assert "shipped defaults" in " ".join(c.value for c in at.caption)


# ------------------------------------------------------------------ nodes: live measurement


def test_nodes_measure_now_runs_a_real_cpu_measurement(runs):
    at = measure_nodes_tiny(open_page())
    assert not at.error, errors(at)
    assert "Measured 4 of 4" in at.success[0].value
    saved = list(runs.glob("nodes-*.csv"))
    assert len(saved) == 1
    rows = pd.read_csv(saved[0])
    assert sorted(rows["T"].unique()) == [2, 3] and set(rows["status"]) == {"ok"}
    at.selectbox(key="nodes_mem").set_value("saved_bytes").run()
    fig = spec(at)  # saved bytes vs T
    by_name = {t["name"]: t for t in fig["data"]}
    assert set(by_name) == {"LIF (BPTT)", "ReversibleLIF (fused)"}
    assert by_name["LIF (BPTT)"]["x"] == [2, 3]
    # LIF under BPTT keeps 12 bytes per neuron-step in fp32; ReversibleLIF only its final membranes
    assert by_name["LIF (BPTT)"]["y"] == pytest.approx([12 * T * 2 * 8 / 2**20 for T in (2, 3)])
    assert by_name["ReversibleLIF (fused)"]["y"] == pytest.approx([2 * 8 * 4 / 2**20] * 2)
    assert "measured now" in " ".join(c.value for c in at.caption)
    # the new run is listed on the results page
    at.switch_page("views/results.py").run()
    assert at.selectbox(key="results_run").value == saved[0].name


def test_nodes_backend_selector_runs_the_triton_kernels(runs):
    pytest.importorskip("triton", reason="the 'triton' package is not installed")
    at = open_page()
    at.selectbox(key="nodes_backend").set_value("triton")    # interpreted on CPU (conftest.py)
    at = measure_nodes_tiny(at, T="2")
    assert not at.error, errors(at)
    rows = pd.read_csv(next(runs.glob("nodes-*.csv")))
    assert dict(zip(rows["mode"], rows["backend"])) == {"bptt": "torch", "fused": "triton"}


@pytest.mark.parametrize("change, message", [
    (dict(T="0"), "T must be >= 1"),
    (dict(batch="0"), "batch must be >= 1"),
    (dict(batch="two"), "'two' is not a whole number"),
    (dict(neurons=7), "must be even"),
    (dict(modes=()), "choose at least one mode"),
])
def test_nodes_bad_input_is_an_error_message(change, message, runs):
    at = measure_nodes_tiny(open_page(), **change)
    assert message in errors(at)
    assert not at.success and not list(runs.glob("*.csv"))


def test_nodes_oom_becomes_a_row_not_a_traceback(monkeypatch):
    real = measure.node_factory

    class OOMNode(nn.Module):
        def forward(self, x):
            if x.shape[0] > 1:  # the 1-step input check passes; the measurement runs out
                raise RuntimeError("CPU out of memory (simulated)")
            return x

    def factory(mode, **kw):
        return OOMNode if mode == "fused" else real(mode, **kw)

    monkeypatch.setattr(measure, "node_factory", factory)
    at = measure_nodes_tiny(open_page(), T="2")
    # one message: what was measured, what failed and what it needs; no success next to it
    assert not at.success and not at.error
    note = at.warning[0].value
    assert "Measured 1 of 2 configurations; 1 gave no result" in note
    assert "CPU out of memory (simulated)" in note and "needs more memory" in note
    table = at.dataframe[-1].value  # the page's table, below the charts
    bad = table[table["mode"] == "fused"].iloc[0]
    assert bad["status"] == "oom" and "out of memory" in bad["error"]
    names = {t["name"] for t in spec(at)["data"]}
    assert names == {"LIF (BPTT)"}  # the failed mode is listed, not drawn


def test_nodes_all_failed_keeps_the_last_good_table(monkeypatch, runs):
    """A run where every configuration fails says so once, with the reason, shows no success,
    saves nothing and leaves the previous table (and its charts) on the page."""
    at = measure_nodes_tiny(open_page())
    good = spec(at)
    assert "Measured 4 of 4" in at.success[0].value

    class Broken(nn.Module):
        def forward(self, x):
            if x.shape[0] > 1:
                raise RuntimeError("CPU out of memory (simulated)")
            return x

    monkeypatch.setattr(measure, "node_factory", lambda mode, **kw: Broken)
    at.button(key="nodes_measure").click().run()
    assert not at.exception, at.exception
    assert not at.success and len(at.error) == 1
    message = at.error[0].value
    assert "None of the 4 configurations gave a result" in message
    assert "CPU out of memory (simulated) (4×)" in message and "needs more memory" in message
    assert "Nothing was saved; still showing: measured now" in message
    assert len(list(runs.glob("nodes-*.csv"))) == 1          # only the first, good run
    assert spec(at)["data"] == good["data"]                 # the last good chart stays
    table = at.dataframe[-1].value
    assert set(table["status"]) == {"ok"} and len(table) == 4


def test_nodes_time_chart_draws_the_spread_and_warns_about_it():
    at = open_page()
    fig = spec(at, 1)                                         # backward time vs T
    bars = [t["error_y"] for t in fig["data"]]
    assert bars and all(b["array"] and b["arrayminus"] for b in bars)
    shipped = data.load_default("nodes")
    sj = next(t for t in fig["data"] if t["name"] == "SpikingJelly LIFNode")
    want = shipped[(shipped["mode"] == "spikingjelly") & (shipped["batch"] == 16)].sort_values("T")
    # a table with only the IQR width centres it on the median
    assert [a + m for a, m in zip(sj["error_y"]["array"], sj["error_y"]["arrayminus"])] == \
        pytest.approx(want["bwd_ms_iqr"].tolist())
    assert "interquartile range" in " ".join(fig["layout"]["meta"]["notes"])
    warning = " ".join(w.value for w in at.warning)
    assert "Timing:" in warning and "within their spread (IQR)" in warning
    # the tiny run below has one repeat: the page says so
    at = measure_nodes_tiny(at)
    assert "medians of 1 repeat" in " ".join(w.value for w in at.warning)


def test_nodes_new_defaults_repeat_enough_to_estimate_the_spread():
    at = open_page()
    assert at.number_input(key="nodes_repeats").value >= 5


def test_nodes_takeaway_glossary_units_and_cpu_note():
    at = open_page()
    text = " ".join(m.value for m in at.markdown)
    takeaway = next(m.value for m in at.markdown if m.value.startswith("**Takeaway.**"))
    assert "At T = 32, batch 64: ReversibleLIF (fused) peaks" in takeaway
    assert "than SpikingJelly LIFNode, at" in takeaway and "its backward time" in takeaway
    for term in ("**SJ**", "**memopt**", "**saved**", "**activations**", "**peak**", "×SJ"):
        assert term in text, term
    table = at.dataframe[-1].value
    assert "peak (MiB)" in table.columns and "backward IQR (ms)" in table.columns
    assert "peak_bytes" not in table.columns
    import torch
    if not torch.cuda.is_available():
        assert any("CPU only: no CUDA device" in c.value for c in at.caption)
        assert "cuda_peak_bytes" not in at.selectbox(key="nodes_mem").options
        assert "CUDA peak (MiB)" not in table.columns


def test_nodes_cuda_peak_is_the_default_where_the_table_has_it(monkeypatch):
    shipped = data.load_default("nodes")
    gpu = shipped.assign(cuda_peak_bytes=shipped["peak_bytes"] * 0.9, device="cuda:0",
                         device_name="NVIDIA H100")
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["tables"] = {"nodes": (gpu, "a GPU run")}
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="nodes_mem").value == "cuda_peak_bytes"
    assert spec(at)["data"][0]["y"][0] == pytest.approx(
        gpu.sort_values("T")["cuda_peak_bytes"].iloc[0] / 2**20)


def test_nodes_identical_lines_and_zero_saved_bytes_stay_visible():
    at = open_page()
    at.selectbox(key="nodes_mem").set_value("saved_bytes").run()
    notes = " ".join(spec(at)["layout"]["meta"]["notes"])
    assert "LIF (BPTT) has the same values as SpikingJelly LIFNode" in notes
    assert "ReversibleLIF (fused) has the same values as ReversibleLIF (revnet)" in notes
    fused = [t for t in spec(at)["data"] if t["name"] == "ReversibleLIF (fused)"][0]
    assert fused["line"]["dash"] and fused["marker"]["symbol"][0].endswith("-open")
    at.checkbox(key="nodes_logy").check().run()
    fig = spec(at)
    assert fig["layout"]["xaxis"]["type"] == "log" == fig["layout"]["yaxis"]["type"]
    ckpt = next(t for t in fig["data"] if t["name"] == "LIF (checkpoint)")
    assert ckpt["text"][0] == "0 B" and ckpt["y"][0] > 0      # drawn at the floor, not dropped
    ratio = next(t for t in spec(at, 2)["data"] if t["name"] == "LIF (checkpoint)")
    assert ratio["text"] == ["∞ (saves 0 B)"] * len(ratio["x"])
    assert all(v is not None and v > 0 for v in ratio["y"])
    assert fig["layout"]["xaxis"]["tickvals"] == [4, 8, 16, 32]


# ------------------------------------------------------------------ measurement lock


def test_a_second_measurement_waits_for_the_first(monkeypatch):
    lock = state.measurement_lock()
    shown = []
    monkeypatch.setattr(state.st, "info", lambda msg, **kw: shown.append(msg) or _Empty())
    monkeypatch.setattr(state.st, "empty", lambda: _Empty(shown))
    lock.acquire()
    threading.Timer(0.3, lock.release).start()
    start = time.monotonic()
    with state.exclusive_measurement(poll_s=0.05):
        waited = time.monotonic() - start
        assert lock.locked()
    assert not lock.locked()
    assert waited >= 0.25 and shown and shown[0] == state.WAIT_MESSAGE


class _Empty:
    def __init__(self, log=None):
        self.log = log if log is not None else []

    def info(self, msg, **kw):
        self.log.append(msg)

    def empty(self):
        pass


# ------------------------------------------------------------------ drift


def test_drift_measure_now(runs):
    at = open_page("views/drift.py")
    at.text_input(key="drift_T").input("4 8")
    at.multiselect(key="drift_dtypes").set_value(["float32"])
    at.number_input(key="drift_batch").set_value(2)
    at.number_input(key="drift_channels").set_value(16)
    at.button(key="drift_measure").click().run()
    assert not at.exception and not at.error, errors(at)
    names = {t["name"]: t for t in spec(at)["data"]}
    assert set(names) == {"ReversibleLIF · float32", "naive coupling · float32"}
    assert names["ReversibleLIF · float32"]["x"] == [4, 8]
    assert names["ReversibleLIF · float32"]["text"] == ["0 (exact)"] * 2
    assert len(list(runs.glob("drift-*.csv"))) == 1


def test_drift_odd_channels_is_an_error_message():
    at = open_page("views/drift.py")
    at.number_input(key="drift_channels").set_value(7)
    at.button(key="drift_measure").click().run()
    assert not at.exception and "even" in errors(at)


# ------------------------------------------------------------------ results & saved runs


def test_results_zip_is_prepared_with_progress_and_carries_context(monkeypatch):
    import io
    import zipfile

    from revsnn import export

    calls = []
    real = export.export_all

    def spy(*args, **kw):
        calls.append(kw)
        return real(*args, **{**kw, "formats": ("html",)})   # no browser needed here

    monkeypatch.setattr(export, "export_all", spy)
    at = open_page("views/results.py")
    assert not any(b.key == "results_zip" for b in at.get("download_button"))
    at.button(key="results_prepare").click().run()
    assert not at.exception, at.exception
    assert calls and callable(calls[0]["on_progress"]) and calls[0]["scale"] == 2
    zip_button = next(b for b in at.get("download_button") if b.key == "results_zip")
    assert "Download everything" in zip_button.proto.label
    payload = real({}, {"Nodes": data.load_default("nodes")},
                   contexts={"Nodes": {"neurons": 1024, "torch_version": "2.13.0+cpu"}})
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        manifest = zf.read("MANIFEST.txt").decode()
        table = pd.read_csv(io.BytesIO(zf.read("tables/nodes.csv")))
    assert "neurons 1024" in manifest and set(table["neurons"]) == {1024}


def test_results_lists_every_chart_and_reloads_a_saved_run(runs):
    at = open_page("views/results.py")
    n_default = len(at.get("plotly_chart"))
    assert n_default >= 6  # nodes and drift at least
    assert at.get("download_button")  # per chart
    assert at.info  # no saved runs yet

    modes = (("bptt", "LIF (BPTT)", 1000), ("fused", "ReversibleLIF (fused)", 10))
    run = pd.DataFrame([
        {"kind": "node", "mode": m, "label": lab, "T": T, "batch": 4, "dtype": "float32",
         "device_name": "cpu", "saved_bytes": s * T, "bwd_ms": 1.0, "status": "ok"}
        for T in (5, 7) for m, lab, s in modes])
    name = data.save_run("nodes", run).name
    at.run()
    at.selectbox(key="results_run").set_value(name)
    at.button(key="results_load").click().run()
    assert not at.exception and f"Loaded {name}" in at.success[0].value
    at.switch_page("views/nodes.py").run()
    fig = spec(at)
    assert {t["name"] for t in fig["data"]} == {"LIF (BPTT)", "ReversibleLIF (fused)"}
    assert fig["data"][0]["x"] == [5, 7]
    # and back to the shipped tables
    at.switch_page("views/results.py").run()
    at.button(key="results_reset").click().run()
    at.switch_page("views/nodes.py").run()
    assert spec(at)["data"][0]["x"] == sorted(data.load_default("nodes")["T"].unique().tolist())



# ------------------------------------------------------------------ architectures


def _fake_network(monkeypatch, behaviour):
    """Put a stand-in revsnn.bench.network in place; ``behaviour(call_no, arch, T, batch)`` may
    raise, or return a status for the rows of that configuration."""
    import types

    calls = []

    def measure_network(arch, modes, T, batch, image_size, num_classes, dtype, device, repeats,
                        warmup, on_row=None):
        calls.append((arch, T, batch))
        status = behaviour(len(calls), arch, T, batch)
        rows = [{"kind": "network", "arch": arch, "mode": m, "label": m, "T": T, "batch": batch,
                 "dtype": dtype, "device": device, "peak_bytes": 2**20 * T * batch,
                 "step_ms": 1.0, "status": status, "error": "" if status == "ok" else "oom here"}
                for m in modes]
        for r in rows:
            if on_row:
                on_row(r)
        return rows

    from functools import partial

    from revsnn.bench.network import network_sweep

    module = types.ModuleType("revsnn.bench.network")
    module.measure_network = measure_network
    module.network_sweep = partial(network_sweep, measure=measure_network)
    monkeypatch.setitem(sys.modules, "revsnn.bench.network", module)
    return calls


def _measure_networks(at, T="2 3", batch="4 8"):
    at.multiselect(key="network_modes").set_value(["LIF (BPTT)", "ReversibleLIF (fused)"])
    at.text_input(key="network_T").input(T)
    at.text_input(key="network_batch").input(batch)
    at.button(key="network_measure").click().run()
    assert not at.exception, at.exception
    return at


def test_architectures_cancel_is_checked_between_configurations(monkeypatch, runs):
    import streamlit as st

    def cancel_after_first(n, *cfg):
        if n == 1:
            st.session_state["network_cancel"] = True  # what the Cancel button's callback does
        return "ok"

    calls = _fake_network(monkeypatch, cancel_after_first)
    at = _measure_networks(open_page("views/architectures.py"))
    assert len(calls) == 1
    assert "Cancelled after 1 of 4 configurations" in at.warning[0].value
    fig = spec(at)
    assert {t["name"] for t in fig["data"]} == {"bptt", "fused"}
    # one configuration: its bars name all of it, not only "vgg11"
    assert [x for t in fig["data"] for x in t["x"]] == ["vgg11 · T=2 · B=4"] * 2
    saved = pd.read_csv(next(runs.glob("network-*.csv")))
    assert len(saved) == 2 and set(saved["T"]) == {2}


def test_architectures_failures_become_rows(monkeypatch):
    def behaviour(n, arch, T, batch):
        if batch == 8 and T == 3:
            raise ValueError("ConvBNNode: 3 channels cannot be split into two groups")
        return "oom" if batch == 8 else "ok"

    calls = _fake_network(monkeypatch, behaviour)
    at = _measure_networks(open_page("views/architectures.py"))
    assert len(calls) == 4 and not at.success and not at.error
    note = at.warning[0].value      # one message: what was measured and what failed, and why
    assert "Measured 4 of 4 configurations; 8 rows saved" in note
    assert "4 of them gave no result" in note and "cannot be split into two groups" in note
    table = at.dataframe[-1].value
    assert sorted(table["status"].value_counts().items()) == [("error", 2), ("ok", 4), ("oom", 2)]
    err = table[table["status"] == "error"].iloc[0]
    assert "cannot be split into two groups" in err["error"] and err["label"] == "LIF (BPTT)"


def test_architectures_all_failed_keeps_the_last_good_table(monkeypatch, runs):
    _fake_network(monkeypatch, lambda *a: "oom")
    at = _measure_networks(open_page("views/architectures.py"))
    assert not at.success and len(at.error) == 1
    assert "none of the 8 rows gave a result" in at.error[0].value
    assert "needs more memory" in at.error[0].value
    assert "still showing: shipped defaults" in at.error[0].value
    assert not list(runs.glob("network-*.csv"))
    shipped = data.load_default("network")
    assert len(at.dataframe[-1].value) == len(shipped)
    assert spec(at)["data"]                                 # the shipped chart, not an empty one


def test_architectures_incompatible_choices_are_named_before_measuring(monkeypatch):
    calls = _fake_network(monkeypatch, lambda *a: "ok")
    at = open_page("views/architectures.py")
    at.multiselect(key="network_archs").set_value(["vgg11", "revresnet_s"]).run()
    at.multiselect(key="network_modes").set_value(["LIF (BPTT)", "LIF (checkpoint)"]).run()
    note = " ".join(w.value for w in at.warning)
    assert "LIF (checkpoint) on revresnet_s (it builds vgg11" in note      # before any run
    assert not calls
    at.multiselect(key="network_modes").set_value(["LIF (checkpoint)"]).run()
    assert "no chosen mode builds revresnet_s" in errors(at)
    at.button(key="network_measure").click().run()
    assert "Cannot measure: no chosen mode builds revresnet_s" in errors(at) and not calls


def test_architectures_bad_input_is_an_error_message(monkeypatch):
    _fake_network(monkeypatch, lambda *a: "ok")
    at = _measure_networks(open_page("views/architectures.py"), batch="0")
    assert "batch must be >= 1" in errors(at) and not at.success


def _has_network_bench() -> bool:
    try:
        import revsnn.bench.network  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_network_bench(), reason="revsnn.bench.network is not available")
def test_architectures_real_tiny_training_step(runs):
    at = open_page("views/architectures.py")
    at.multiselect(key="network_archs").set_value(["convnet"])
    at.number_input(key="network_image_size").set_value(8)
    at.number_input(key="network_repeats").set_value(1)
    at.number_input(key="network_warmup").set_value(0)
    at = _measure_networks(at, T="2", batch="2")
    assert not at.error, errors(at)
    assert "Measured 1 of 1 configurations" in at.success[0].value
    saved = pd.read_csv(next(runs.glob("network-*.csv")))
    assert set(saved["status"]) == {"ok"} and set(saved["arch"]) == {"convnet"}
    at = at.selectbox(key="network_metric").set_value("act_peak_bytes").run()
    fig = spec(at)  # activation peak per configuration, one bar per mode
    bars = {t["name"]: t for t in fig["data"]}
    assert set(bars) == {"LIF (BPTT)", "ReversibleLIF (fused)"}
    for label, t in bars.items():
        want = saved.loc[saved["label"] == label, "act_peak_bytes"].iloc[0] / 2**20
        assert t["x"] == ["convnet · 8px · T=2 · B=2"] and t["y"] == pytest.approx([want])
    assert "8×8 images" in fig["layout"]["title"]["subtitle"]["text"]
    at = at.selectbox(key="network_metric").set_value("step_ms").run()
    assert all(t["error_y"]["array"] for t in spec(at)["data"])   # the spread of the step time


# ------------------------------------------------------------------ budget


def _search_budget(at, arch, modes, budget, searches=("batch",), T=2, image_size=8):
    at.selectbox(key="budget_arch").set_value(arch)
    at.multiselect(key="budget_modes").set_value(list(modes))
    at.select_slider(key="budget_bytes").set_value(budget)
    at.multiselect(key="budget_searches").set_value(list(searches))
    at.number_input(key="budget_T").set_value(T)
    at.number_input(key="budget_image_size").set_value(image_size)
    at.button(key="budget_measure").click().run()
    assert not at.exception, at.exception
    return at


def _has_budget_bench() -> bool:
    try:
        import revsnn.bench.budget  # noqa: F401
    except ImportError:
        return False
    return True


needs_budget = pytest.mark.skipif(not _has_budget_bench(),
                                  reason="revsnn.bench.budget is not available")


@needs_budget
def test_budget_real_tiny_search(runs):
    at = _search_budget(open_page("views/budget.py"), "convnet", ["ReversibleLIF (fused)"], 2**22)
    assert not at.error, errors(at)
    saved = pd.read_csv(next(runs.glob("budget-*.csv")))
    best = int(saved["max_value"].iloc[0])
    assert best >= 1 and saved["peak_at_max"].iloc[0] <= 2**22 < saved["peak_above_max"].iloc[0]
    fig = spec(at)
    assert [t["name"] for t in fig["data"]] == ["ReversibleLIF (fused)"]
    assert fig["data"][0]["y"] == [best] and "4.00 MiB" in fig["layout"]["title"]["text"]


@needs_budget
def test_budget_too_small_says_how_much_is_needed_and_keeps_the_table(runs):
    at = open_page("views/budget.py")
    shipped = spec(at)
    at = _search_budget(at, "vgg11", ["LIF (BPTT)"], 2**20, image_size=32)
    assert not at.success and len(at.error) == 1      # one message, no green "Ran 1 search"
    message = at.error[0].value
    assert "None of the 1 searches within 1.00 MiB gave a result" in message
    assert "LIF (BPTT) needs" in message and "even at batch 1 (T = 2)" in message
    assert "Raise the budget to at least" in message
    assert not list(runs.glob("budget-*.csv"))                   # nothing saved
    assert spec(at)["data"] == shipped["data"]                   # the last good chart stays
    # no chart with an empty −1…1 axis anywhere on the page
    assert all(json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart"))


@needs_budget
def test_budget_bad_input_is_an_error_message():
    at = _search_budget(open_page("views/budget.py"), "convnet", ["LIF (BPTT)"], 2**22, T=0)
    assert "T must be >= 1" in errors(at) and not at.success
    at = _search_budget(at, "convnet", [], 2**22)
    assert "choose at least one mode" in errors(at)
