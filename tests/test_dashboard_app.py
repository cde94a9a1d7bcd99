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
    fig = spec(at)
    fused = [t for t in fig["data"] if t["name"] == "ReversibleLIF (fused)"]
    assert fused and fused[0]["x"] == sorted(shipped["T"].unique().tolist())
    want = shipped[(shipped["mode"] == "fused") & (shipped["batch"] == shipped["batch"].min())]
    assert fused[0]["y"] == pytest.approx((want.sort_values("T")["saved_bytes"] / 2**20).tolist())
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
    assert "1 of 2 configurations failed" in errors(at)
    table = at.dataframe[-1].value  # the page's table, below the charts
    bad = table[table["mode"] == "fused"].iloc[0]
    assert bad["status"] == "oom" and "out of memory" in bad["error"]
    names = {t["name"] for t in spec(at)["data"]}
    assert names == {"LIF (BPTT)"}  # the failed mode is listed, not drawn


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


def test_results_lists_every_chart_and_reloads_a_saved_run(runs):
    at = open_page("views/results.py")
    n_default = len(at.get("plotly_chart"))
    assert n_default >= 6  # nodes and drift at least
    assert at.get("download_button")  # per chart and the zip
    assert any(b.key == "results_zip" for b in at.get("download_button"))
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
    assert [x for t in fig["data"] for x in t["x"]] == ["vgg11"] * 2
    saved = pd.read_csv(next(runs.glob("network-*.csv")))
    assert len(saved) == 2 and set(saved["T"]) == {2}


def test_architectures_failures_become_rows(monkeypatch):
    def behaviour(n, arch, T, batch):
        if batch == 8 and T == 3:
            raise ValueError("ConvBNNode: 3 channels cannot be split into two groups")
        return "oom" if batch == 8 else "ok"

    calls = _fake_network(monkeypatch, behaviour)
    at = _measure_networks(open_page("views/architectures.py"))
    assert len(calls) == 4 and "Measured" in at.success[0].value
    table = at.dataframe[-1].value
    assert sorted(table["status"].value_counts().items()) == [("error", 2), ("ok", 4), ("oom", 2)]
    err = table[table["status"] == "error"].iloc[0]
    assert "cannot be split into two groups" in err["error"] and err["label"] == "LIF (BPTT)"
    assert "4 of 8 rows did not measure" in errors(at)


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
        assert t["x"] == ["convnet"] and t["y"] == pytest.approx([want])


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
def test_budget_configuration_over_the_budget_is_named():
    at = _search_budget(open_page("views/budget.py"), "vgg11", ["LIF (BPTT)"], 2**20,
                        image_size=32)
    assert "LIF (BPTT): over the budget — even batch 1" in errors(at)


@needs_budget
def test_budget_bad_input_is_an_error_message():
    at = _search_budget(open_page("views/budget.py"), "convnet", ["LIF (BPTT)"], 2**22, T=0)
    assert "T must be >= 1" in errors(at) and not at.success
    at = _search_budget(at, "convnet", [], 2**22)
    assert "choose at least one mode" in errors(at)
