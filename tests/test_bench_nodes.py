"""`revsnn bench nodes`: end to end through revsnn.cli.main, the files it writes, and its report.

Memory claims are checked on the written rows (saved bytes are counted with saved-tensor hooks and
are deterministic on CPU); times are only checked to be present, never compared.
"""

import math

import pandas as pd
import pytest
import torch

from revsnn.baselines import spikingjelly_available
from revsnn.bench import nodes as bench_nodes
from revsnn.bench.report import human_bytes, safe_ratio
from revsnn.cli import main
from revsnn.strategy import defaults
from revsnn.analysis.measure import COLUMNS

B, N = 2, 64
TINY = ["--batch", str(B), "--neurons", str(N), "--repeats", "1", "--warmup", "0"]
F32 = 4  # bytes per fp32 element


def _bench(tmp_path, name, *extra):
    out = tmp_path / name
    code = main(["bench", "nodes", "--T", "2", "8", *TINY, "--out", str(out), *extra])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def csv_rows(tmp_path_factory):
    """One default-modes run at T = 2 and 8, shared by the tests that only read its rows."""
    out = _bench(tmp_path_factory.mktemp("bench"), "nodes.csv", "--quiet")
    return pd.read_csv(out)


def test_csv_has_documented_columns_and_one_row_per_mode_T_batch(csv_rows):
    modes = defaults("nodes")
    assert list(csv_rows.columns) == COLUMNS
    assert len(csv_rows) == len(modes) * 2 * 1
    assert sorted(csv_rows.groupby(["mode", "T", "batch"]).size().index.tolist()) == sorted(
        (m, t, B) for m in modes for t in (2, 8))
    assert (csv_rows["status"] == "ok").all(), csv_rows[["mode", "error"]]
    assert (csv_rows["device"] == "cpu").all()
    assert (csv_rows["bwd_ms"] > 0).all() and (csv_rows["fwd_ms"] > 0).all()
    assert csv_rows["cuda_peak_bytes"].isna().all()  # CPU: not measured


def test_reversible_saved_bytes_flat_in_T_while_bptt_grows(csv_rows):
    saved = csv_rows.set_index(["mode", "T"])["saved_bytes"]
    for mode in ("revnet", "fused"):
        # One final membrane per neuron (two groups of N/2), whatever T.
        assert saved[mode, 2] == saved[mode, 8] == B * N * F32
    # Standard LIF keeps three tensors per neuron-step: 12 B in fp32.
    for T in (2, 8):
        assert saved["bptt", T] == 3 * T * B * N * F32
    assert saved["bptt", 8] == 4 * saved["bptt", 2]
    if spikingjelly_available():
        assert saved["spikingjelly", 8] == 3 * 8 * B * N * F32


def test_json_output_loads_with_the_same_rows(tmp_path):
    out = _bench(tmp_path, "nodes.json", "--quiet", "--modes", "bptt", "fused")
    df = pd.read_json(out, orient="records")
    assert list(df.columns) == COLUMNS
    assert len(df) == 2 * 2
    assert sorted(df["mode"].unique()) == ["bptt", "fused"]
    fused = df[df["mode"] == "fused"].set_index("T")["saved_bytes"]
    assert fused[2] == fused[8] == B * N * F32


def test_printed_table_shows_ratios(tmp_path, capsys):
    _bench(tmp_path, "nodes.csv", "--modes", "bptt", "checkpoint", "revnet", "fused")
    text = capsys.readouterr().out
    assert "baseline: LIF (BPTT)" in text
    assert "fused vs revnet backward speed-up: " in text
    assert "fused backward / LIF BPTT backward: " in text
    # Measured reduction next to the expected 3T, for each T.
    assert "ReversibleLIF saved-bytes reduction vs LIF (BPTT): 6.00× (3T = 6)" in text
    assert "ReversibleLIF saved-bytes reduction vs LIF (BPTT): 24.00× (3T = 24)" in text
    assert "∞ (saves 0 B)" in text  # checkpoint keeps nothing of its own
    assert (f"note: LIF (checkpoint) saves 0 B of its own (it keeps {human_bytes(2 * B * N * F32)} "
            "shared with its input, not counted)") in text
    assert human_bytes(3 * 8 * B * N * F32) in text  # 12.00 KiB, BPTT at T = 8
    assert "Traceback" not in text


@pytest.mark.skipif(not spikingjelly_available(), reason="SpikingJelly is not installed")
def test_spikingjelly_is_the_default_baseline(capsys):
    assert defaults("nodes")[0] == "spikingjelly"
    assert main(["bench", "nodes", "--T", "2", *TINY, "--modes", "spikingjelly", "fused"]) == 0
    text = capsys.readouterr().out
    assert "baseline: SpikingJelly LIFNode" in text
    assert "reduction vs SpikingJelly LIFNode: 6.00× (3T = 6)" in text


def test_default_modes():
    expected = ["bptt", "checkpoint", "revnet", "fused"]
    if spikingjelly_available():
        expected = ["spikingjelly"] + expected
    assert defaults("nodes") == expected


def test_quiet_prints_nothing(tmp_path, capsys):
    _bench(tmp_path, "q.csv", "--quiet", "--modes", "bptt")
    captured = capsys.readouterr()
    assert captured.out == ""


def test_unknown_mode_exits_2_naming_it(capsys):
    assert main(["bench", "nodes", *TINY, "--modes", "bptt", "warp"]) == 2
    err = capsys.readouterr().err
    assert "'warp'" in err and "fused" in err  # names the culprit and the choices


def test_modes_accept_names_and_commas(tmp_path):
    out = tmp_path / "m.csv"
    assert main(["bench", "nodes", "--T", "2", *TINY, "--quiet", "--modes",
                 "REVERSIBLE_FUSED,bptt", "--out", str(out)]) == 0
    assert pd.read_csv(out)["mode"].tolist() == ["fused", "bptt"]


@pytest.mark.parametrize("argv, match", [
    (["--out", "x.txt"], "--out must end in .csv or .json"),
    (["--neurons", "63"], "--neurons must be even"),
    (["--warmup", "-1"], "--warmup must be >= 0"),
])
def test_bad_options_exit_2_before_running(argv, match, capsys):
    assert main(["bench", "nodes", "--T", "2", "--batch", "2", *argv]) == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--T", "0"], ["--dtype", "int8"], ["--batch", "x"]])
def test_malformed_values_are_argparse_errors(argv, capsys):
    assert main(["bench", "nodes", *argv]) == 2
    assert "revsnn bench nodes: error:" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_clear_error(capsys):
    assert main(["bench", "nodes", *TINY, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda requested but CUDA is not available" in err
    assert "Traceback" not in err


def _row(mode, label, saved, bwd, status="ok", error=""):
    return {"mode": mode, "label": label, "T": 4, "batch": 2, "dtype": "float32", "device": "cpu",
            "device_name": "cpu", "shape": "[4, 2, 64]", "saved_bytes": saved,
            "saved_input_bytes": 0, "saved_output_bytes": 0, "act_bytes": math.nan,
            "peak_bytes": math.nan, "cuda_peak_bytes": math.nan, "fwd_ms": 1.0, "bwd_ms": bwd,
            "bwd_ms_iqr": 0.1, "status": status, "error": error}


def test_failed_rows_are_shown_as_such():
    rows = [_row("spikingjelly", "SpikingJelly LIFNode", 4800, 2.0),
            _row("bptt", "LIF (BPTT)", 4800, 1.0),
            _row("revnet", "ReversibleLIF (revnet)", 400, 8.0),
            _row("fused", "ReversibleLIF (fused)", math.nan, math.nan, status="oom",
                 error="OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")]
    text = bench_nodes.format_block(rows)
    assert "ReversibleLIF (fused)   OOM: OutOfMemoryError: CUDA out of memory" in text
    assert "fused vs revnet backward speed-up: n/a (fused: OOM" in text
    assert "fused backward / LIF BPTT backward: n/a (fused: OOM" in text
    # fused is the preferred reversible row; its failure is reported, not replaced by revnet.
    assert "reduction vs SpikingJelly LIFNode: n/a (fused: OOM" in text
    ratios = bench_nodes.block_ratios(rows)
    assert ratios["saved_ratio"]["revnet"] == pytest.approx(12.0)
    assert ratios["bwd_ratio"]["revnet"] == pytest.approx(4.0)
    assert ratios["bwd_ratio"]["bptt"] == pytest.approx(0.5)
    assert math.isnan(ratios["fused_vs_revnet"])


def test_block_ratios_speedups():
    rows = [_row("bptt", "LIF (BPTT)", 4800, 1.0), _row("revnet", "ReversibleLIF (revnet)", 400, 6.0),
            _row("fused", "ReversibleLIF (fused)", 400, 1.5)]
    r = bench_nodes.block_ratios(rows)
    assert r["baseline"] == "bptt"
    assert r["fused_vs_revnet"] == pytest.approx(4.0)
    assert r["fused_over_bptt"] == pytest.approx(1.5)
    assert r["reduction"] == pytest.approx(12.0)
    text = bench_nodes.format_block(rows)
    assert "fused vs revnet backward speed-up: 4.00×" in text
    assert "fused backward / LIF BPTT backward: 1.50×" in text


def test_expected_reduction_accounts_for_wider_states():
    assert bench_nodes.expected_reduction(4, "float64") == (12.0, "3T = 12")
    assert bench_nodes.expected_reduction(4, "bfloat16")[0] == 6.0  # states kept in fp32


def test_safe_ratio_edges():
    assert safe_ratio(6, 3) == 2.0
    assert math.isinf(safe_ratio(6, 0))
    assert math.isnan(safe_ratio(0, 0)) and math.isnan(safe_ratio(math.nan, 1))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_node_bench_on_cuda_fills_cuda_peak(tmp_path):
    out = tmp_path / "cuda.csv"
    assert main(["bench", "nodes", "--T", "2", "8", "--batch", "4", "--neurons", "1024",
                 "--repeats", "2", "--warmup", "1", "--device", "cuda", "--dtype", "float32",
                 "bfloat16", "--quiet", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == len(defaults("nodes")) * 2 * 2
    assert (df["status"] == "ok").all(), df[["mode", "dtype", "error"]]
    assert df["device"].str.startswith("cuda").all()
    assert (df["device_name"] == torch.cuda.get_device_name()).all()
    assert (df["cuda_peak_bytes"] > 0).all()
    fused = df[(df["mode"] == "fused") & (df["dtype"] == "float32")].set_index("T")["saved_bytes"]
    assert fused[2] == fused[8] == 4 * 1024 * F32


def test_without_spikingjelly_the_baseline_is_lif_bptt(monkeypatch, capsys):
    import revsnn.baselines

    monkeypatch.setattr(revsnn.baselines, "spikingjelly_available", lambda: False)
    assert defaults("nodes") == ["bptt", "checkpoint", "revnet", "fused"]
    assert main(["bench", "nodes", "--T", "2", *TINY, "--modes", "spikingjelly"]) == 2
    assert "SpikingJelly is not installed" in capsys.readouterr().err
    assert main(["bench", "nodes", "--T", "2", *TINY]) == 0
    text = capsys.readouterr().out
    assert "baseline: LIF (BPTT)" in text and "SpikingJelly" not in text
