"""torch.compile: the nodes and the zoo's models trace without graph breaks in the hot path, and a
compiled CPU training step equals the eager one (NOTE [compiled nodes] in revsnn.nodes.compiled).

What is equal, and how: the nodes' outputs and reconstructed states live on a fixed-point grid, so
they are bit-equal compiled or not; gradients, BatchNorm and convolutions go through Inductor's own
kernels (other reduction orders, other ``exp``), so they agree to float32 rounding, not bit for bit.
"""

import warnings

import pytest
import torch
import torch._dynamo as dynamo

from revsnn import LIF, BinaryReversibleLIF, ReversibleLIF
from revsnn.models import build
from revsnn.nodes.compiled import tracing_autograd

pytestmark = pytest.mark.slow


def _graph_breaks(fn, *args):
    dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = dynamo.explain(fn)(*args)
    return e.graph_break_count, [str(b.reason).splitlines()[0] for b in e.break_reasons]


@pytest.mark.parametrize("make", [
    lambda: ReversibleLIF(),
    lambda: ReversibleLIF(tau=3.0, v_threshold=0.5),
    lambda: BinaryReversibleLIF(),
    lambda: BinaryReversibleLIF(tau=3, reconstruct="replay"),
    lambda: LIF(),
], ids=["reversible", "reversible-tau3", "binary", "binary-replay-tau3", "lif"])
def test_nodes_trace_without_graph_breaks(make, one_thread):
    node = make()
    x = torch.randn(4, 2, 8, requires_grad=True)
    count, reasons = _graph_breaks(lambda x: node(x).sum(), x)
    assert count == 0, reasons


@pytest.mark.parametrize("mode", ["bptt", "fused_nobn", "fused", "revnet", "binary",
                                  "binary_replay"])
def test_zoo_model_traces_without_graph_breaks(mode, one_thread):
    """``revnet`` and the binary units differentiate a recomputed piece with autograd.grad,
    traced under :func:`tracing_autograd` (NOTE [compiled nodes])."""
    model = build("convnet", mode, T=2, seed=0)
    with tracing_autograd():
        count, reasons = _graph_breaks(lambda x: model(x).sum(), torch.randn(2, 1, 8, 8))
    assert count == 0, reasons


def test_without_tracing_autograd_the_binary_units_break_the_graph(one_thread):
    model = build("convnet", "binary", T=2, seed=0)
    count, reasons = _graph_breaks(lambda x: model(x).sum(), torch.randn(2, 1, 8, 8))
    assert count > 0 and all("autograd.grad" in r for r in reasons), reasons


def test_the_graph_break_check_can_fail(one_thread):
    def broken(x):
        return x * float(x.sum())                       # a host read: a graph break
    assert _graph_breaks(broken, torch.randn(3))[0] == 1


@pytest.fixture(scope="module")
def compiled_nodes():
    """ReversibleLIF → BinaryReversibleLIF, eager and compiled with fullgraph=True (no break is
    allowed in forward or backward)."""
    dynamo.reset()

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(ReversibleLIF(), BinaryReversibleLIF())

    eager, compiled = make(), make()
    return eager, torch.compile(compiled, fullgraph=True)


def _node_step(module, x):
    x = x.clone().requires_grad_()
    y = module(x)
    w = torch.arange(y.numel(), dtype=y.dtype).view_as(y).cos()
    (y * w).sum().backward()
    return y.detach(), x.grad


def test_compiled_nodes_step_equals_eager(compiled_nodes, one_thread):
    eager, compiled = compiled_nodes
    x = torch.randn(4, 2, 8, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y_c, g_c = _node_step(compiled, x)
    y_e, g_e = _node_step(eager, x)
    assert y_c.sum() > 0                                 # spikes happened
    assert torch.equal(y_c, y_e)                         # spikes: bit-equal
    torch.testing.assert_close(g_c, g_e, rtol=1e-5, atol=1e-6)


def test_compiled_nodes_keep_the_exact_range_guard(compiled_nodes, one_thread):
    """Under compile the guard is a graph assertion (no host read): it still refuses."""
    _, compiled = compiled_nodes
    x = torch.randn(4, 2, 8)
    x[1, 0, 0] = 5000.0                                  # |x| >= 2^(24-12-1) - 2ϑ for fp32
    with pytest.raises(RuntimeError, match="exact range"):
        _node_step(compiled, x)


@pytest.mark.parametrize("mode", ["fused_nobn", "fused", "binary"])
def test_compiled_zoo_training_step_equals_eager(mode, one_thread):
    """convnet with the reversible node (fused backward; BatchNorm fused into it with ``fused``)
    or the binary units: one SGD step, compiled with fullgraph=True against eager: loss and
    updated parameters agree to float32 rounding."""
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    results = []
    for compiled in (False, True):
        dynamo.reset()
        model = build("convnet", mode, T=2, seed=0)
        run = torch.compile(model, fullgraph=True) if compiled else model
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with warnings.catch_warnings(), tracing_autograd():
            warnings.simplefilter("ignore")
            loss = run(x).square().mean()
            loss.backward()
        opt.step()
        results.append((loss.detach(), [p.detach().clone() for p in model.parameters()]))
    (loss_e, params_e), (loss_c, params_c) = results
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-7)
    for a, b in zip(params_c, params_e):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_compiled_fused_bn_unit_refuses_a_gamma_too_small_for_its_code(one_thread):
    """Eager, a (near) zero γ makes the fused unit store the BN input; a graph cannot choose what
    it stores, so the compiled unit stops with an error (NOTE [BN + node fusion])."""
    dynamo.reset()
    model = build("convnet", "fused", T=2, seed=0)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        bn.weight[0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model(torch.randn(2, 1, 8, 8)).sum().backward()          # eager: falls back, runs
        with pytest.raises(RuntimeError, match="too small for the residual code"):
            torch.compile(model)(torch.randn(2, 1, 8, 8)).sum().backward()


def test_node_bench_measures_compiled_next_to_eager(one_thread):
    from revsnn.bench.nodes import format_block, run_node_bench

    dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = run_node_bench(["bptt"], Ts=(2,), batches=(2,), neurons=8, compile="both",
                              repeats=1, warmup=1, track_memory=False, quiet=True)
    assert [(r["mode"], r["compiled"], r["status"]) for r in rows] == [
        ("bptt", False, "ok"), ("bptt", True, "ok")]
    assert "torch.compile speed-up (eager step / compiled step): LIF (BPTT)" in format_block(rows)


def test_compiled_node_with_the_triton_backend_runs_the_kernels(one_thread):
    """``backend="triton"`` in a compiled model: the kernels run as calls the compiler does not
    trace (here under the interpreter) and give the eager kernels' results."""
    pytest.importorskip("triton", reason="the 'triton' package is not installed")
    from revsnn import ATan, kernels
    if not (torch.cuda.is_available() or kernels.interpreting()):
        pytest.skip("needs CUDA or TRITON_INTERPRET=1")
    dynamo.reset()
    x = torch.randn(4, 2, 8, generator=torch.Generator().manual_seed(2))
    results = []
    for compiled in (False, True):
        node = ReversibleLIF(backend="triton", surrogate=ATan())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append(_node_step(torch.compile(node) if compiled else node, x))
        assert node.last_backend == "triton"
    assert torch.equal(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-6, atol=1e-7)


def test_temporal_engine_is_one_opaque_call_under_compile(one_thread):
    """The time-major engine is one ``torch.compiler.disable`` call (NOTE [time-major engine under
    torch.compile]): one break, there, and the code around it is compiled (two graphs)."""
    model = build("convnet", "temporal", T=2, seed=0)
    dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = dynamo.explain(lambda x: model(x * 2).square().mean())(torch.randn(2, 1, 8, 8))
    reasons = [str(b.reason) for b in e.break_reasons]
    assert (e.graph_count, e.graph_break_count) == (2, 1), reasons
    assert "time-major engine under torch.compile" in reasons[0]


def test_compiled_temporal_training_step_equals_eager(one_thread):
    """A compiled step (input scaling and loss compiled around the eager engine) gives the eager
    step's loss and updated parameters; the compiled graphs did run. ``aot_eager``: dynamo and
    AOTAutograd split the step as Inductor would, without Inductor's C++ build (seconds)."""
    from torch._dynamo.testing import CompileCounterWithBackend

    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    results = []
    for compiled in (False, True):
        dynamo.reset()
        model = build("convnet", "temporal", T=2, seed=0)
        counter = CompileCounterWithBackend("aot_eager")

        def step(x):
            return model(x * 2).square().mean()

        run = torch.compile(step, backend=counter) if compiled else step
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loss = run(x)
            loss.backward()
        opt.step()
        assert counter.frame_count == (2 if compiled else 0)
        results.append((loss.detach(), [p.detach().clone() for p in model.parameters()]))
    (loss_e, params_e), (loss_c, params_c) = results
    assert torch.equal(loss_c, loss_e)                   # the same kernels: bit-equal
    for a, b in zip(params_c, params_e):
        assert torch.equal(a, b)
