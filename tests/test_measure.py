"""revsnn.analysis.measure: tidy rows, storage-deduplicated saved bytes, failures as rows."""

import math

import pytest
import torch
from torch import nn

import revsnn
from revsnn.analysis import measure as M


def test_saved_bytes_deduplicate_storages():
    x = torch.randn(16, requires_grad=True)

    def fn(t):
        return t * t * t          # the same input is saved by two multiplications

    _, sb = M.saved_tensor_bytes(fn, x)
    assert sb.shared_input == 16 * 4
    assert sb.own == 16 * 4       # the intermediate t*t, once


def test_node_rows_have_the_columns_and_real_values():
    rows = M.measure_nodes(["bptt", "checkpoint", "fused"], Ts=(4,), batches=(2,), neurons=32,
                           repeats=2, warmup=0)
    df = M.to_frame(rows)
    assert list(df.columns[:len(M.COLUMNS)]) == M.COLUMNS
    assert (df.status == "ok").all()
    by = df.set_index("mode")
    assert by.loc["bptt", "saved_bytes"] + by.loc["bptt", "saved_input_bytes"] == 12 * 4 * 2 * 32
    # checkpoint keeps its input outside autograd's view: hooks see nothing own, MemTracker does
    assert by.loc["checkpoint", "saved_bytes"] == 0
    assert by.loc["checkpoint", "act_bytes"] > 0
    assert by.loc["fused", "saved_bytes"] == 2 * 32 * 4
    assert (df.bwd_ms > 0).all() and (df.fwd_ms > 0).all()
    assert math.isnan(by.loc["fused", "cuda_peak_bytes"])


class _Boom(nn.Module):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def forward(self, x):
        raise self.exc


@pytest.mark.parametrize("exc, status", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"), "oom"),
    (RuntimeError("shape mismatch"), "error"),
])
def test_failures_become_rows(exc, status):
    ok = M.Case(lambda: revsnn.LIF(), lambda: torch.randn(2, 2, 4, requires_grad=True),
                mode="bptt")
    bad = M.Case(lambda: _Boom(exc), lambda: torch.randn(2, 2, 4), mode="boom")
    rows = M.measure_cases([bad, ok], repeats=1, warmup=0)
    assert rows[0]["status"] == status and type(exc).__name__ in rows[0]["error"]
    assert rows[1]["status"] == "ok"


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="T must be"):
        M.node_case("fused", T=0)
    with pytest.raises(ValueError, match="unknown memory mode"):
        M.node_case("quantum")
    with pytest.raises(ValueError, match="dtype"):
        M.parse_dtype("float8")


def test_memory_mode_enum_round_trips():
    for mode in revsnn.MemoryMode:
        assert revsnn.MemoryMode.parse(mode.value) is mode
        assert revsnn.MemoryMode.parse(mode.name) is mode
    for mode in revsnn.MemoryMode.node_modes():
        node = revsnn.make_node(mode)
        assert isinstance(node, nn.Module)
        assert node(torch.rand(2, 1, 4) * 2).shape == (2, 1, 4)
    with pytest.raises(ValueError, match="network-level"):
        revsnn.make_node(revsnn.MemoryMode.REVERSIBLE_BLOCKS)
    with pytest.raises(ValueError, match="unknown node hyperparameters"):
        revsnn.make_node("bptt", colour="red")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.cuda
def test_cuda_rows_report_peak_memory_and_device_name():
    row = M.measure_node("fused", T=4, batch=8, neurons=1024, device="cuda", repeats=2)
    assert row["status"] == "ok" and row["cuda_peak_bytes"] > 0
    assert row["device_name"] == torch.cuda.get_device_name()
