"""``revsnn bench network`` and ``revsnn bench budget``: rows, ratios, failures as rows, the CLI contract,
and the budget search logic. Networks are tiny (ConvNet on 8×8) so the suite stays fast."""

import argparse
import math

import pandas as pd
import pytest

from revsnn.analysis.measure import step_peak_bytes
from revsnn.baselines import spikingjelly_available
from revsnn.bench import budget, network
from revsnn.cli import UsageError
from revsnn.cli import budget as budget_cli
from revsnn.cli import network as network_cli

SMALL = dict(T=2, batch=2, image_size=8, repeats=1, warmup=0)


def parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_measure_network_rows_ratios_and_prediction():
    modes = (["spikingjelly"] if spikingjelly_available() else []) + ["bptt", "fused",
                                                                      "fused_nobn"]
    seen = []
    rows = network.measure_network("convnet", modes, on_row=seen.append, **SMALL)
    assert [r["mode"] for r in rows] == modes and seen == rows
    by = {r["mode"]: r for r in rows}
    for r in rows:
        assert r["status"] == "ok", r["error"]
        assert r["kind"] == "network" and r["arch"] == "convnet" and r["T"] == 2
        assert r["predicted_saved_bytes"] == r["saved_bytes"]        # the model is exact here
        assert r["step_ms"] > 0 and r["peak_bytes"] > 0 and math.isnan(r["cuda_peak_bytes"])
    assert by["fused"]["saved_bytes"] < by["fused_nobn"]["saved_bytes"] < by["bptt"]["saved_bytes"]
    assert by["bptt"]["step_vs_bptt"] == 1.0
    if "spikingjelly" in by:
        sj = by["spikingjelly"]
        assert by["fused"]["saved_ratio"] == sj["saved_bytes"] / by["fused"]["saved_bytes"]
        assert by["fused"]["saved_ratio"] > 2.0
    table = network.format_network_table(rows)
    assert "saved ×SJ" in table and "ReversibleLIF (fused)" in table


@pytest.mark.skipif(not spikingjelly_available(), reason="SpikingJelly is not installed")
def test_memopt_runs_on_cpu_at_level_1_and_is_an_error_row_above():
    ok = network.measure_network("convnet", ["spikingjelly_memopt"], track_memory=True, **SMALL)[0]
    assert ok["status"] == "ok" and ok["act_bytes"] > 0
    assert math.isnan(ok["predicted_saved_bytes"])                  # not modelled
    bad = network.measure_network("convnet", ["spikingjelly_memopt"], memopt_level=4,
                                  track_memory=False, **SMALL)[0]
    assert bad["status"] == "error" and "CUDA" in bad["error"]


def test_missing_spikingjelly_is_an_error_row(monkeypatch):
    monkeypatch.setattr("revsnn.baselines.spikingjelly_available", lambda: False)
    row = network.measure_network("convnet", ["spikingjelly", "bptt"], track_memory=False,
                                  **SMALL)
    assert row[0]["status"] == "error" and "not installed" in row[0]["error"]
    assert row[1]["status"] == "ok" and math.isnan(row[1]["saved_ratio"])


def test_mode_parsing():
    from revsnn import strategy
    from revsnn.cli import parse_modes
    assert parse_modes(["SJ,REVERSIBLE_FUSED", "bptt", "fused"], command="network",
                       arch="convnet") == ["spikingjelly", "fused", "bptt"]
    assert parse_modes(None, command="network", arch="vgg11") == strategy.defaults("network",
                                                                                  "vgg11")
    with pytest.raises(UsageError, match="'magic'"):
        parse_modes(["magic"], command="network")
    with pytest.raises(UsageError, match="'blocks' does not build 'convnet'.*fused"):
        parse_modes(["blocks"], command="network", arch="convnet")
    with pytest.raises(ValueError, match="unknown memory mode"):
        network.network_case("convnet", "magic")


def test_network_cli_writes_csv(tmp_path, capsys):
    out = tmp_path / "net.csv"
    args = parse(network_cli, ["--arch", "convnet", "--T", "2", "--batch", "2", "--image-size", "8",
                           "--modes", "bptt", "fused", "--repeats", "1", "--warmup", "0",
                           "--no-track-memory", "--out", str(out)])
    assert network_cli.run(args) == 0
    df = pd.read_csv(out)
    assert list(df.columns[: len(network.COLUMNS)]) == network.COLUMNS
    assert list(df["mode"]) == ["bptt", "fused"]
    assert "LIF (BPTT)" in capsys.readouterr().out
    with pytest.raises(UsageError, match=".csv or .json"):
        network_cli.run(parse(network_cli, ["--out", str(tmp_path / "x.txt")]))


def test_network_cli_compile_pairs_each_mode_with_its_compiled_row(tmp_path, capsys, one_thread):
    """``--compile``: an eager and a compiled row per mode, timed in one run; the compiled row has
    its compile time and speed-up and no memory columns (the trackers would see eager code).
    ``aot_eager`` (dynamo and AOTAutograd without Inductor's C++ build) keeps the test short."""
    import torch._dynamo

    torch._dynamo.reset()
    out = tmp_path / "compiled.csv"
    args = parse(network_cli, ["--arch", "convnet", "--T", "2", "--batch", "2", "--image-size", "8",
                               "--modes", "bptt", "--repeats", "1", "--warmup", "0", "--compile",
                               "aot_eager", "--out", str(out)])
    assert network_cli.run(args) == 0
    df = pd.read_csv(out)
    assert list(zip(df["mode"], df["compiled"], df["label"])) == [
        ("bptt", False, "LIF (BPTT)"), ("bptt", True, "LIF (BPTT) (compiled, aot_eager)")]
    assert list(df["compile_backend"].fillna("")) == ["", "aot_eager"]
    eager, compiled = df.iloc[0], df.iloc[1]
    assert (eager["status"], compiled["status"]) == ("ok", "ok")
    assert eager["saved_bytes"] > 0 and eager["act_peak_bytes"] > 0
    assert math.isnan(eager["compile_seconds"]) and math.isnan(eager["compile_speedup"])
    for col in ("saved_bytes", "act_bytes", "peak_bytes", "act_peak_bytes",
                "predicted_saved_bytes"):
        assert math.isnan(compiled[col]), col
    assert compiled["compile_seconds"] > 0 and compiled["step_ms"] > 0
    assert compiled["compile_speedup"] == pytest.approx(eager["step_ms"] / compiled["step_ms"])
    text = capsys.readouterr().out
    assert "LIF (BPTT) (compiled, aot_eager)" in text
    assert "torch.compile speed-up (eager step / compiled step): LIF (BPTT) " in text


# -- budget ------------------------------------------------------------------------------------

def test_parse_bytes():
    assert budget.parse_bytes("8GiB") == 8 * 2 ** 30
    assert budget.parse_bytes("1.5 MiB") == int(1.5 * 2 ** 20)
    assert budget.parse_bytes("2GB") == 2 * 10 ** 9
    for bad in ("lots", "-1GiB", "0", "3 parsecs"):
        with pytest.raises(ValueError):
            budget.parse_bytes(bad)


@pytest.mark.parametrize("fixed, slope, curve, bud, most", [
    (100, 10, 0.0, 1000, 4), (5000, 3, 0.0, 5001, 2), (1, 1000, 0.0, 999, 1),
    (3e7, 2.5e6, 1e3, 2 ** 31, 8),          # mildly convex
    (1e8, 2.4e7, 0.0, 2 ** 31, 4),          # linear, like measured peaks: 2 + 2 probes
    (0, 7, 1 / 50, 10 ** 6, 16)])           # strongly convex: still exact, with more probes
def test_search_finds_the_exact_boundary(fixed, slope, curve, bud, most):
    calls = []

    def peak(v):
        calls.append(v)
        return fixed + slope * v + curve * v * v

    res = budget.search_max(peak, bud)
    best = max((v for v in range(0, 20000) if peak.__call__(v) <= bud), default=0)
    calls.clear()
    res = budget.search_max(peak, bud)
    assert res["max"] == best
    assert len(calls) <= most
    if best:
        assert res["exact"] and (best + 1) in res["probes"] and res["probes"][best] <= bud


@pytest.mark.parametrize("offset", [-40, -3, -1, 0, 1, 2, 25])
def test_search_from_a_model_guess_confirms_the_boundary(offset):
    """A memory model's guess is measured first: exact guesses cost two boundary probes, wrong
    ones still end at the measured boundary (the model only seeds the search)."""
    calls = []

    def peak(v):
        calls.append(v)
        return 3e7 + 2.5e6 * v + (0 if v < 500 else 4e5 * (v - 500))   # a kink the line misses

    best = max(v for v in range(1, 5000) if peak(v) <= 2 ** 31)
    calls.clear()
    res = budget.search_max(peak, 2 ** 31, guess=best + offset)
    assert res["max"] == best and res["exact"] and res["predicted"] == best + offset
    assert calls[:3] == [1, 2, best + offset]
    if offset == 0:
        assert len(calls) == 4
    elif abs(offset) <= 1:
        assert len(calls) <= 6


def test_search_treats_oom_as_not_fitting():
    res = budget.search_max(lambda v: math.inf if v > 37 else 10.0 * v, 10 ** 9)
    assert res["max"] == 37 and res["exact"]


def test_step_peak_bytes_counts_parameters_and_grows_with_batch():
    import torch
    import torch.nn.functional as F
    from revsnn.models import build
    model = build("convnet", "fused", T=2, seed=0)
    params = sum(p.numel() * 4 for p in model.parameters())

    def peak(b):
        x, y = torch.rand(b, 1, 8, 8), torch.zeros(b, dtype=torch.long)
        return step_peak_bytes(model, lambda: x.clone(), lambda o: F.cross_entropy(o, y))

    p1, p2, p4 = peak(1), peak(2), peak(4)
    assert p1 > 2 * params                                   # parameters + their gradients
    assert p1 < p2 < p4 and (p4 - p2) == pytest.approx(2 * (p2 - p1), rel=0.1)
    assert all(p.grad is None for p in model.parameters())   # cleared again


def test_budget_cli_rows_and_ratios(tmp_path, capsys):
    out = tmp_path / "budget.csv"
    modes = (["spikingjelly"] if spikingjelly_available() else ["bptt"]) + ["fused"]
    args = parse(budget_cli, ["--arch", "convnet", "--image-size", "8", "--budget", "3MiB",
                          "--T", "2", "--search", "batch", "--modes", *modes, "--out", str(out),
                          "--quiet"])
    assert budget_cli.run(args) == 0
    df = pd.read_csv(out)
    assert list(df["mode"]) == modes and (df["search"] == "batch").all()
    assert (df["status"] == "ok").all()
    for _, r in df.iterrows():        # the boundary is measured: max fits, max + 1 does not
        assert r["peak_at_max"] <= 3 * 2 ** 20 < r["peak_above_max"]
        assert r["n_probes"] <= 6
    fused = df[df["mode"] == "fused"].iloc[0]
    assert fused["ratio_vs_spikingjelly"] >= 1.0
    assert capsys.readouterr().out == ""
    with pytest.raises(UsageError, match="memory size"):
        budget_cli.run(parse(budget_cli, ["--budget", "lots"]))


def test_max_T_at_fixed_batch():
    probes = []
    row = budget.max_T("convnet", "fused", "3MiB", batch=4, image_size=8,
                       on_probe=lambda *a: probes.append(a))
    assert row["status"] == "ok" and row["search"] == "T" and row["batch"] == 4
    # every probe is announced before it runs, with its expected time once one has been timed
    assert len(probes) == row["n_probes"]
    assert [a[:3] for a in probes[:2]] == [("T", row["label"], 1), ("T", row["label"], 2)]
    assert probes[0][3] is None and all(a[3] > 0 for a in probes[1:])
    assert row["T"] == row["max_value"] > 2
    assert row["peak_at_max"] <= 3 * 2 ** 20 < row["peak_above_max"]


def test_beyond_modes_in_the_network_benchmark():
    """Issue 4's networks appear as rows: binary units on VGG, reversible blocks on revresnet."""
    from revsnn.bench.network import measure_network

    rows = {r["mode"]: r for r in measure_network(
        "vgg11", ["bptt", "fused", "binary", "binary_replay"], T=2, batch=2, image_size=16,
        repeats=1, warmup=0)}
    assert all(r["status"] == "ok" for r in rows.values()), rows
    assert rows["binary_replay"]["saved_bytes"] < rows["binary"]["saved_bytes"] \
        < rows["fused"]["saved_bytes"] < rows["bptt"]["saved_bytes"]
    rows = {r["mode"]: r for r in measure_network(
        "revresnet_s", ["bptt", "blocks"], T=2, batch=2, image_size=16, repeats=1, warmup=0)}
    assert rows["blocks"]["status"] == "ok" and rows["bptt"]["status"] == "ok"
    assert rows["blocks"]["saved_bytes"] < rows["bptt"]["saved_bytes"]
    for r in rows.values():               # the analytic model covers these networks too
        assert r["predicted_saved_bytes"] == r["saved_bytes"]
    with pytest.raises(ValueError, match="'fused' does not build 'revresnet_s'.*blocks"):
        measure_network("revresnet_s", ["bptt", "fused"], T=2, batch=2, image_size=16)
