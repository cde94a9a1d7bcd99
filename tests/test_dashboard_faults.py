"""Saved runs under faults and load: written atomically, never overwritten by a second session,
a corrupted one skipped with a warning; two sessions measuring at once both finish, one after the
other."""

import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the dashboard package

from dashboard import data  # noqa: E402
from revsnn.analysis import measure  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    monkeypatch.setenv(data.RUNS_ENV, str(folder))
    return folder


def _table(n=3):
    return pd.DataFrame({"kind": "node", "mode": ["fused"] * n, "label": "ReversibleLIF (fused)",
                         "T": list(range(1, n + 1)), "batch": 2, "dtype": "float32",
                         "device_name": "cpu", "saved_bytes": 10, "bwd_ms": 1.0, "status": "ok"})


def test_save_run_leaves_no_temporary_and_reads_back(runs):
    path = data.save_run("nodes", _table())
    assert [p.name for p in runs.iterdir()] == [path.name]
    assert data.load_run(path.name)[1].shape == (3, 10)


def test_sessions_saving_in_the_same_second_never_overwrite_each_other(runs):
    tables = [_table(n) for n in range(1, 9)]
    paths, errors = [None] * len(tables), []

    def save(i):
        try:
            paths[i] = data.save_run("nodes", tables[i])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(tables))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len({p.name for p in paths}) == len(tables)
    for table, path in zip(tables, paths):
        assert len(pd.read_csv(path)) == len(table)          # each file holds its own table
    assert not list(runs.glob(".*.tmp"))


CORRUPT = {
    "nodes-20250101-000001.csv": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe garbage",
    "nodes-20250101-000002.csv": b"",
    "budget-20250101-000003.csv": b"mode,status\n",
    "network-20250101-000004.csv": b"a,b\n1,2\n",
}


def test_corrupted_saved_runs_are_skipped_with_a_warning(runs):
    good = data.save_run("nodes", _table()).name
    for name, content in CORRUPT.items():
        (runs / name).write_bytes(content)
    assert data.list_runs() == [good]
    skipped = dict(data.skipped_runs())
    assert set(skipped) == set(CORRUPT)
    assert "has no rows" in skipped["budget-20250101-000003.csv"]
    assert "no column mode, status" in skipped["network-20250101-000004.csv"]
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("views/results.py").run()
    assert not at.exception, at.exception
    warned = " ".join(w.value for w in at.warning)
    for name in CORRUPT:
        assert f"Skipped saved run {name}" in warned
    assert at.selectbox(key="results_run").options == [data.describe_run(good)]
    at.button(key="results_load").click().run()
    assert not at.exception and f"Loaded {good}" in at.success[0].value


def test_two_sessions_measuring_at_once_both_finish_one_after_the_other(runs, monkeypatch):
    spans, real = [], measure.measure_nodes

    def timed(*args, **kwargs):
        start = time.monotonic()
        try:
            return real(*args, **kwargs)
        finally:
            spans.append((start, time.monotonic()))

    monkeypatch.setattr(measure, "measure_nodes", timed)
    sessions = []
    for _ in range(2):
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        at.multiselect(key="nodes_modes").set_value(["LIF (BPTT)", "ReversibleLIF (fused)"])
        at.text_input(key="nodes_T").input("2 3")
        at.text_input(key="nodes_batch").input("2")
        at.number_input(key="nodes_neurons").set_value(8)
        at.number_input(key="nodes_repeats").set_value(1)
        at.number_input(key="nodes_warmup").set_value(0)
        sessions.append(at)
    failures = []

    def click(at):
        try:
            at.button(key="nodes_measure").click().run()
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=click, args=(at,)) for at in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures
    for at in sessions:
        assert not at.exception, at.exception
        assert "Measured 4 of 4" in at.success[0].value
    assert len(spans) == 2
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 <= b0, f"the measurements overlapped: {spans}"          # serialised by the lock
    saved = data.list_runs()
    assert len(saved) == 2 and not data.skipped_runs()
    for name in saved:
        kind, df = data.load_run(name)
        assert kind == "nodes" and len(df) == 4 and (df["status"] == "ok").all()
