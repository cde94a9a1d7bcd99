"""Bad input to the command line: output paths checked before anything is measured, node
hyperparameters, resuming from bad checkpoints, benchmarks whose every row failed, budgets the
model or the machine cannot hold."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from revsnn.analysis import measure
from revsnn.analysis.memory_guard import device_memory, guard_supported, memory_guard
from revsnn.bench import budget as budget_mod
from revsnn.bench.report import ALL_FAILED_EXIT
from revsnn.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

UNWRITABLE = "/proc/revsnn-out.csv"          # /proc accepts no new file, not even from root

# every command with an output location, with arguments that would measure quickly
COMMANDS = {
    "bench nodes": ["bench", "nodes", "--modes", "fused", "--T", "2", "--batch", "2",
                    "--neurons", "8", "--repeats", "1", "--warmup", "0"],
    "bench network": ["bench", "network", "--arch", "convnet", "--modes", "fused", "--T", "2",
                      "--batch", "2", "--image-size", "8", "--repeats", "1", "--warmup", "0"],
    "bench budget": ["bench", "budget", "--arch", "convnet", "--modes", "fused", "--T", "2",
                     "--image-size", "8", "--search", "batch", "--budget", "8MiB"],
    "bench beyond": ["bench", "beyond", "--arch", "vgg11", "--T", "2", "--batch", "2",
                     "--repeats", "1", "--warmup", "0"],
    "drift": ["drift", "--T", "2", "--dtype", "float32"],
}
# what each command calls to measure: it must not be reached when the output path is bad
MEASURES = {"bench nodes": "revsnn.cli.nodes.run_node_bench",
            "bench network": "revsnn.cli.network.measure_network",
            "bench budget": "revsnn.cli.budget.budget_search",
            "bench beyond": "revsnn.cli.beyond.run_beyond",
            "drift": "revsnn.cli.drift.drift_rows"}


def _never(*a, **k):
    raise AssertionError("measured although the output path is unusable")


@pytest.fixture
def a_file(tmp_path) -> Path:
    f = tmp_path / "plain.txt"
    f.write_text("not a folder")
    return f


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_under_a_file_is_refused_before_measuring(command, a_file, monkeypatch, capsys):
    monkeypatch.setattr(MEASURES[command], _never)
    rc = main(COMMANDS[command] + ["--out", str(a_file / "rows.csv")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "is a file, not a folder" in err and "Traceback" not in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unwritable_out_is_refused_before_measuring(command, monkeypatch, capsys):
    monkeypatch.setattr(MEASURES[command], _never)
    rc = main(COMMANDS[command] + ["--out", UNWRITABLE])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot create a file in '/proc'" in err and "choose a writable location" in err


def test_out_that_is_a_folder_is_refused(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "rows.csv"
    folder.mkdir()
    monkeypatch.setattr(MEASURES["drift"], _never)
    assert main(COMMANDS["drift"] + ["--out", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_out_in_a_new_folder_is_created_and_written(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "drift.csv"
    assert main(COMMANDS["drift"] + ["--out", str(out), "--quiet"]) == 0
    assert out.read_text().startswith("node,")
    assert not list(out.parent.glob(".*.tmp"))                     # written atomically


@pytest.mark.parametrize("bad,message", [
    ("--out-dir={a_file}/run", "is a file, not a folder"),
    ("--out-dir=/proc/revsnn-run", "cannot create a file in '/proc'"),
    ("--node=tau=abc", "--node: ReversibleLIF: tau must be a number, got 'abc'"),
    ("--node=bogus=1", "--node: make_node: unknown node hyperparameters ['bogus']"),
])
def test_train_bad_options_are_usage_errors_before_training(bad, message, a_file, monkeypatch,
                                                              capsys, tmp_path):
    monkeypatch.setattr("revsnn.cli.train.train", _never)
    argv = ["train", "--data", "digits", "--epochs", "1", "--quiet",
            "--out-dir", str(tmp_path / "run"), bad.format(a_file=a_file)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# -- every requested row failed -------------------------------------------------------------
def _fail_every_measurement(monkeypatch):
    def boom(case, track_memory):
        raise RuntimeError("simulated failure of every configuration")
    monkeypatch.setattr(measure, "_measure_memory", boom)


@pytest.mark.parametrize("command", ["bench nodes", "bench network"])
def test_benchmark_whose_every_row_failed_exits_non_zero(command, monkeypatch, capsys):
    _fail_every_measurement(monkeypatch)
    rc = main(COMMANDS[command])
    captured = capsys.readouterr()
    assert rc == ALL_FAILED_EXIT
    assert "simulated failure" in captured.out
    assert "every requested measurement failed" in captured.err


def test_benchmark_with_one_good_row_exits_zero(capsys):
    assert main(COMMANDS["bench nodes"] + ["--quiet"]) == 0


# -- budgets ----------------------------------------------------------------------------------
def test_budget_the_model_does_not_fit_says_so(capsys):
    rc = main(["bench", "budget", "--arch", "convnet", "--budget", "1KiB", "--image-size", "8",
               "--T", "2", "--batch", "2", "--modes", "fused", "--search", "batch"])
    out = capsys.readouterr().out
    assert rc == ALL_FAILED_EXIT
    assert "the model itself does not fit: one training step at batch = 1 peaks at" in out


def test_budget_above_the_memory_available_is_capped_and_said(monkeypatch, capsys):
    # pretend the machine has 96 MiB available: a 1000 GB budget is searched within 80% of it
    avail = 96 * 2**20
    monkeypatch.setattr("revsnn.analysis.memory_guard.device_memory",
                        lambda device="cpu": (4 * avail, avail))
    rc = main(["bench", "budget", "--arch", "convnet", "--budget", "1e3GB", "--image-size", "8",
               "--T", "2", "--batch", "2", "--modes", "fused", "--search", "batch"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "budget 931.32 GiB capped to 76.80 MiB: 80% of the 96.00 MiB the CPU has available" in out
    rows = budget_mod.budget_search("convnet", ["fused"], "1e3GB", T=2, image_size=8,
                                    searches=("batch",))
    row = rows[0]
    assert row["budget_bytes"] == int(avail * 0.8) and "capped to" in row["error"]
    assert row["status"] == "ok" and row["peak_at_max"] <= row["budget_bytes"] < \
        row["peak_above_max"]


@pytest.mark.skipif(not guard_supported(), reason="needs Linux RLIMIT_DATA")
def test_memory_guard_turns_an_allocation_past_it_into_an_error():
    with memory_guard(256 * 2**20) as enforced:
        assert enforced
        small = torch.ones(2**20)                               # 4 MiB: fine
        with pytest.raises(RuntimeError) as info:
            torch.empty(2**31, dtype=torch.uint8)               # 2 GiB: refused, not killed
        assert measure.is_oom(info.value)
    del small
    assert torch.empty(2**27, dtype=torch.uint8).numel() == 2**27   # the limit is lifted


@pytest.mark.skipif(not guard_supported(), reason="needs Linux RLIMIT_DATA")
def test_budget_probe_past_the_guard_does_not_fit_instead_of_crashing():
    peak_at = budget_mod._probe_fn("convnet", "fused", T=2, batch=None, image_size=8,
                                   num_classes=10, dtype="float32", device="cpu",
                                   in_channels=None, node_kwargs=None, seed=0, memopt_level=1,
                                   vary="batch", allowance=256 * 2**20)
    assert math.isfinite(peak_at(1))
    assert peak_at(20000) == math.inf                # ~3 GB at batch 20000: refused by the guard


def test_budget_probe_predicted_past_the_guard_is_not_run(monkeypatch):
    calls = []
    real = budget_mod.step_peak_bytes
    monkeypatch.setattr(budget_mod, "step_peak_bytes",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    peak_at = budget_mod._probe_fn("convnet", "fused", T=2, batch=None, image_size=8,
                                   num_classes=10, dtype="float32", device="cpu",
                                   in_channels=None, node_kwargs=None, seed=0, memopt_level=1,
                                   vary="batch", allowance=256 * 2**20)
    p1, p2 = peak_at(1), peak_at(2)
    assert len(calls) == 2 and p2 > p1
    assert peak_at(10**7) == math.inf and len(calls) == 2      # the line says it would not fit
    assert budget_mod._predicted({1: 100.0, 2: 200.0}, 10) == 1000.0


def test_device_memory_reads_the_machine():
    total, available = device_memory("cpu")
    assert 0 < available <= total
