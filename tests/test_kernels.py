"""The Triton kernels (revsnn.kernels) against the PyTorch path, bit for bit.

On a CPU machine every kernel runs under Triton's interpreter (``TRITON_INTERPRET=1``, set in
conftest.py before the kernels are imported), on small shapes. Compared bit for bit (the integer
views of the tensors, so even the sign of a zero counts): outputs, final and reconstructed states,
packed spikes and remainders, drift diagnostics, and the gradients with the ATan surrogate, whose
derivative is IEEE arithmetic only. With Sigmoid the gradients go through ``exp``, whose last bit
differs between NumPy (the interpreter) and PyTorch's CPU kernels, so there they are compared to
that rounding; the CUDA tests at the end compare Sigmoid bit for bit on a GPU, where the kernel
calls the ``expf`` PyTorch's CUDA sigmoid calls.
"""

import math

import pytest
import torch

pytest.importorskip("triton", reason="the 'triton' package is not installed "
                                     "(pip install 'revsnn[triton]'; `make venv` installs it)")

from revsnn import ATan, BinaryReversibleLIF, ReversibleLIF, Sigmoid  # noqa: E402
from revsnn import kernels  # noqa: E402
from revsnn.functional import binary as fb  # noqa: E402
from revsnn.functional.reversible import forward_loop, fused_walk  # noqa: E402
from revsnn.kernels import fused as K  # noqa: E402
from revsnn.nodes.base import ReconstructionError  # noqa: E402

DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
             torch.bfloat16: torch.int16}
EPS = {dt: torch.finfo(dt).eps for dt in DTYPES}

needs_interpreter_or_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() or kernels.interpreting()),
    reason="needs CUDA or TRITON_INTERPRET=1 (conftest sets it on machines without CUDA)")
pytestmark = needs_interpreter_or_cuda


def assert_bits_equal(got, want, what=""):
    assert got.dtype == want.dtype and got.shape == want.shape, what
    if got.is_floating_point():
        got, want = got.view(_INT_VIEW[got.dtype]), want.view(_INT_VIEW[want.dtype])
    mismatch = int((got != want).sum())
    assert mismatch == 0, f"{what}: {mismatch} of {got.numel()} elements differ"


def _rev_input(shape, dtype, seed, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * (scale if dtype in (torch.float32, torch.float64) else 1)
    return x.clamp(-10, 10).to(dtype)


REV_CASES = [  # (shape [T, B, C, ...], node keywords)
    ((5, 3, 6), {}),
    ((4, 2, 4, 3, 5), dict(tau=3.0, v_threshold=0.3, coupling=0.7, spike_scale=0.9)),
    ((7, 1, 2, 33), dict(decay_input=False)),
]


# ----------------------------------------------------------------------------------------------
# ReversibleLIF


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw", REV_CASES)
def test_rev_forward_kernel_bit_equal(dtype, shape, kw, one_thread):
    """(E2.0)–(E2.6): Y and the final membranes, from rest and from an explicit state."""
    node = ReversibleLIF(**kw)
    x = _rev_input(shape, dtype, 0)
    p, cd = node.params(dtype), node.compute_dtype(dtype)
    v1, v2 = node.initial_state(x)
    g = torch.Generator().manual_seed(1)
    for start in ((v1, v2), tuple((torch.randn(v1.shape, generator=g) * 2).to(cd)
                                  .mul(1 / p.grid).round().mul(p.grid) for _ in range(2))):
        want = forward_loop(x, *start, p, cd)
        got = K.rev_forward(x, *start, p, cd)
        for a, b, what in zip(got, want, ("Y", "V1_T", "V2_T")):
            assert_bits_equal(a, b, what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw", REV_CASES)
def test_rev_fused_walk_kernel_bit_equal(dtype, shape, kw, one_thread):
    """(E3.*) + (E4.*) with ATan: X̄, the reconstructed V(t=0) and the state gradients."""
    node = ReversibleLIF(surrogate=ATan(), **kw)
    x = _rev_input(shape, dtype, 2)
    p, cd = node.params(dtype), node.compute_dtype(dtype)
    y, v1, v2 = forward_loop(x, *node.initial_state(x), p, cd)
    g = torch.Generator().manual_seed(3)
    gy = torch.randn(x.shape, generator=g).to(dtype)
    gv1, gv2 = (torch.randn(v1.shape, generator=g).to(cd) for _ in range(2))
    want = fused_walk(y, gy, v1, v2, gv1, gv2, p, cd, dtype)
    got = K.rev_fused_walk(y, gy, v1, v2, gv1, gv2, p, cd, dtype)
    for a, b, what in zip(got[:5], want[:5], ("X̄", "V1_0", "V2_0", "V̄1_0", "V̄2_0")):
        assert_bits_equal(a, b, what)
    assert (got[1] == 0).all() and (got[2] == 0).all()          # walked back to rest


@pytest.mark.parametrize("dtype", DTYPES)
def test_rev_fused_walk_kernel_sigmoid(dtype, one_thread):
    """With Sigmoid the reconstruction is bit-equal and the gradients agree to exp's last bit."""
    node = ReversibleLIF(surrogate=Sigmoid())
    x = _rev_input((6, 2, 8, 3), dtype, 4)
    p, cd = node.params(dtype), node.compute_dtype(dtype)
    y, v1, v2 = forward_loop(x, *node.initial_state(x), p, cd)
    gy = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    z = torch.zeros_like(v1)
    want = fused_walk(y, gy, v1, v2, z, z.clone(), p, cd, dtype)
    got = K.rev_fused_walk(y, gy, v1, v2, z, z.clone(), p, cd, dtype)
    assert_bits_equal(got[1], want[1], "V1_0")
    assert_bits_equal(got[2], want[2], "V2_0")
    for a, b in zip(got[:1] + got[3:5], want[:1] + want[3:5]):
        tol = 8 * EPS[a.dtype] * float(b.abs().max())
        torch.testing.assert_close(a, b, rtol=8 * EPS[a.dtype], atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ("fused", "revnet"))
def test_rev_node_triton_equals_torch(dtype, algo, one_thread):
    """The node end to end: Y, final state, X̄ and the initial state's gradient, bit for bit."""
    results = {}
    for backend in ("torch", "triton"):
        node = ReversibleLIF(surrogate=ATan(), backward=algo, backend=backend, tau=3.0)
        x = _rev_input((5, 2, 6, 2), dtype, 6).requires_grad_()
        v0 = tuple(torch.full((2, 3, 2), 0.25, dtype=node.compute_dtype(dtype),
                              requires_grad=True) for _ in range(2))
        y, (v1, v2) = node(x, state=v0, return_state=True)
        w = torch.randn(y.shape, generator=torch.Generator().manual_seed(7)).to(dtype)
        ((y * w).sum() + v1.sum() * 0.5).backward()
        assert node.last_backend == backend
        results[backend] = (y, v1, v2, x.grad, v0[0].grad, v0[1].grad)
    for a, b, what in zip(results["triton"], results["torch"], ("Y", "V1", "V2", "X̄", "V̄1", "V̄2")):
        assert_bits_equal(a.detach(), b.detach(), what)


def test_rev_node_drift_guard_same_on_both_backends(one_thread):
    """A saved output modified behind autograd's back (``.data``, no version bump): both
    backends raise with the same diagnosis."""
    messages = {}
    for backend in ("torch", "triton"):
        node = ReversibleLIF(backend=backend)
        x = _rev_input((6, 2, 4), torch.float32, 8).requires_grad_()
        y = node(x)
        y.data[2] += 1e-3
        with pytest.raises(ReconstructionError) as err:
            y.sum().backward()
        messages[backend] = str(err.value)
    assert messages["torch"] == messages["triton"]
    assert "flipped spike decisions" in messages["triton"]


def test_bn_fused_network_triton_equals_torch(one_thread):
    """A zoo network with BatchNorm fused into the node (the ``fused`` preset): one training
    step's loss and every parameter gradient, bit for bit."""
    from revsnn.models import build

    grads = {}
    for backend in ("torch", "triton"):
        model = build("convnet", "fused", T=2, seed=0, node_kwargs={"backend": backend,
                                                                     "surrogate": ATan()})
        x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(9))
        loss = model(x).square().mean()
        loss.backward()
        grads[backend] = [loss.detach()] + [q.grad for q in model.parameters()]
        assert {n.last_backend for n in model.modules() if isinstance(n, ReversibleLIF)} \
            == {backend}
    for a, b in zip(grads["triton"], grads["torch"]):
        assert_bits_equal(a, b, "network gradient")


# ----------------------------------------------------------------------------------------------
# BinaryReversibleLIF


def _bin_input(shape, dtype, seed):
    # the exact range is |X| < 2^(significand bits − 2 − F): 1/64 for bf16, 1/8 for fp16 at F = 12
    scale, bound = {torch.bfloat16: (0.012, 0.015), torch.float16: (0.05, 0.12)}.get(dtype,
                                                                                     (1.5, 8.0))
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * scale).clamp(-bound, bound).to(dtype)


def _bin_node(dtype, tau, **kw):
    theta = {torch.bfloat16: 1 / 128, torch.float16: 1 / 32}.get(dtype, 0.3)
    return BinaryReversibleLIF(tau=tau, v_threshold=theta, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", (2, 3, 4))
def test_binary_forward_kernel_bit_equal(dtype, tau, one_thread):
    """(E5.*) and the bit packing: spikes, packed S, packed R and V_T (N not a multiple of 8)."""
    p = _bin_node(dtype, tau).params()
    z = _bin_input((6, 3, 7), dtype, 10)
    want_s, want = fb._integer_forward(z, p)
    got_s, got = K.binary_forward(z, p)
    assert want_s.sum() > 0, "the case must spike"
    assert_bits_equal(got_s, want_s, "spikes")
    assert_bits_equal(got.spikes, want.spikes, "packed spikes")
    assert_bits_equal(got.remainders, want.remainders, "packed remainders")
    assert_bits_equal(got.v_final, want.v_final.to(torch.int32), "V_T")
    _, no_rem = K.binary_forward(z, p, remainders=False)
    assert no_rem.remainders.shape == (6, 0, 3)
    assert_bits_equal(no_rem.spikes, want.spikes, "packed spikes without remainders")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", (2, 3))
@pytest.mark.parametrize("reconstruct", ("reverse", "replay"))
def test_binary_backward_kernel_bit_equal(dtype, tau, reconstruct, one_thread):
    """(E6.1)–(E6.4) with ATan, walking back or replaying: X̄ and the drift diagnostics."""
    p = _bin_node(dtype, tau, surrogate=ATan()).params()
    z = _bin_input((6, 2, 9), dtype, 11)
    _, trace = fb._integer_forward(z, p, remainders=reconstruct == "reverse")
    gs = torch.randn(z.shape, generator=torch.Generator().manual_seed(12)).to(dtype)
    want, want_diag = fb.node_backward(z, trace, gs, p, reconstruct)
    got, got_diag = K.binary_backward(z, trace, gs, p, reconstruct)
    assert_bits_equal(got, want, "X̄")
    assert got_diag == want_diag == (0, 0, 0)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_binary_backward_kernel_sigmoid(dtype, one_thread):
    p = _bin_node(dtype, 2).params()
    z = _bin_input((5, 4, 6), dtype, 13)
    _, trace = fb._integer_forward(z, p)
    gs = torch.randn(z.shape, generator=torch.Generator().manual_seed(14)).to(dtype)
    want, _ = fb.node_backward(z, trace, gs, p, "reverse")
    got, diag = K.binary_backward(z, trace, gs, p, "reverse")
    assert diag == (0, 0, 0)
    torch.testing.assert_close(got, want, rtol=8 * EPS[dtype], atol=8 * EPS[dtype])


@pytest.mark.parametrize("reconstruct", ("reverse", "replay"))
@pytest.mark.parametrize("tau", (2, 3))
def test_binary_drift_diagnostics_equal(reconstruct, tau, one_thread):
    """A tampered trace or input: the kernel reports what the PyTorch walk reports."""
    p = _bin_node(torch.float32, tau, surrogate=ATan()).params()
    z = _bin_input((6, 2, 8), torch.float32, 15)
    _, trace = fb._integer_forward(z, p, remainders=reconstruct == "reverse")
    spikes = trace.spikes.clone()
    spikes[3, 0] ^= 0b101
    bad = trace._replace(spikes=spikes)
    gs = torch.ones_like(z)
    z2 = z.clone()
    z2[1] += 4.0                                  # every neuron fires at t = 1
    for tr, zz in ((bad, z), (trace, z2)):
        want = fb.node_backward(zz, tr, gs, p, reconstruct)[1]
        got = K.binary_backward(zz, tr, gs, p, reconstruct)[1]
        assert got == want and want != (0, 0, 0)


@pytest.mark.parametrize("reconstruct", ("reverse", "replay"))
def test_binary_unit_step_triton_equals_torch(reconstruct, one_thread):
    """Conv-BN-binary-node units: a training step recomputing the synapse, every gradient."""
    from revsnn.models import build

    grads = {}
    for backend in ("torch", "triton"):
        preset = "binary" if reconstruct == "reverse" else "binary_replay"
        model = build("convnet", preset, T=2, seed=0, node_kwargs={"backend": backend,
                                                                    "surrogate": ATan()})
        x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(16))
        loss = model(x).square().mean()
        loss.backward()
        grads[backend] = [loss.detach()] + [q.grad for q in model.parameters()]
        used = {n.last_backend for n in model.modules() if isinstance(n, BinaryReversibleLIF)}
        assert used == {backend}
    for a, b in zip(grads["triton"], grads["torch"]):
        assert_bits_equal(a, b, "network gradient")


# ----------------------------------------------------------------------------------------------
# Selection


@pytest.mark.parametrize("cls", (ReversibleLIF, BinaryReversibleLIF))
def test_backend_selection(cls, monkeypatch):
    x = torch.zeros(2, 1, 4)
    assert cls().backend_for(x) == "torch"                       # auto on CPU: PyTorch
    assert cls(backend="triton").backend_for(x) == "triton"      # interpreted here
    assert cls(backend="torch").backend_for(x) == "torch"
    with pytest.raises(ValueError, match="backend must be one of"):
        cls(backend="cuda")
    with pytest.raises(ValueError, match="runs on PyTorch only"):
        cls(backward="autograd", backend="triton")

    class Odd(Sigmoid):
        pass

    assert cls(surrogate=Odd(), backend="auto").backend_for(x) == "torch"
    with pytest.raises(RuntimeError, match="Sigmoid and ATan surrogates only"):
        cls(surrogate=Odd(), backend="triton").backend_for(x)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="need CUDA tensors, or TRITON_INTERPRET=1"):
        cls(backend="triton")(x)
    monkeypatch.setattr(kernels, "triton_available", lambda: False)
    with pytest.raises(RuntimeError, match="'triton' package is not installed"):
        cls(backend="triton").backend_for(x)


def test_strategy_registry_names_the_backends():
    from revsnn import strategy

    assert strategy.get("fused").backends == ("auto", "torch", "triton")
    assert strategy.get("binary_replay").backends == ("auto", "torch", "triton")
    assert strategy.get("bptt").backends == ("auto", "torch")
    assert strategy.make_node("revnet", backend="triton").backend == "triton"
    with pytest.raises(ValueError, match="backend='triton' is not available"):
        strategy.make_node("bptt", backend="triton")


# ----------------------------------------------------------------------------------------------
# On a GPU: the compiled kernels against PyTorch's CUDA path


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
@pytest.mark.parametrize("surrogate", (Sigmoid, ATan))
def test_cuda_rev_node_triton_equals_torch(dtype, surrogate):
    results = {}
    for backend in ("torch", "triton"):
        node = ReversibleLIF(surrogate=surrogate(), backend=backend)
        g = torch.Generator().manual_seed(0)
        x = (torch.randn(8, 64, 512, generator=g) * 1.5).clamp(-7, 7).to("cuda", dtype)
        x.requires_grad_()
        y = node(x)
        y.backward(torch.randn(y.shape, generator=g).to("cuda", dtype))
        results[backend] = (y.detach(), x.grad)
    for a, b, what in zip(results["triton"], results["torch"], ("Y", "X̄")):
        assert_bits_equal(a, b, what)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("reconstruct", ("reverse", "replay"))
@pytest.mark.parametrize("surrogate", (Sigmoid, ATan))
def test_cuda_binary_node_triton_equals_torch(reconstruct, surrogate):
    results = {}
    for backend in ("torch", "triton"):
        node = BinaryReversibleLIF(surrogate=surrogate(), reconstruct=reconstruct,
                                   backend=backend)
        g = torch.Generator().manual_seed(0)
        x = (torch.randn(8, 64, 1001, generator=g) * 1.5).to("cuda").requires_grad_()
        y = node(x)
        y.backward(torch.randn(y.shape, generator=g).to("cuda"))
        results[backend] = (y.detach(), x.grad)
    for a, b, what in zip(results["triton"], results["torch"], ("S", "X̄")):
        assert_bits_equal(a, b, what)
    assert math.isfinite(float(results["triton"][1].abs().sum()))


def test_node_bench_rows_record_the_backend(one_thread):
    """``bench nodes --backend torch triton``: each kernel-bearing mode on both, side by side; the
    rows say what ran, and the block prints the Triton-over-PyTorch ratio."""
    from revsnn.bench.nodes import format_block, run_node_bench

    rows = run_node_bench(["bptt", "fused", "binary"], Ts=(2,), batches=(2,), neurons=16,
                          backend=("torch", "triton"), repeats=1, warmup=0, track_memory=False,
                          quiet=True)
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert [(r["mode"], r["backend"]) for r in rows] == [
        ("bptt", "torch"), ("fused", "torch"), ("fused", "triton"), ("binary", "torch"),
        ("binary", "triton")]
    by = {(r["mode"], r["backend"]): r for r in rows}
    assert by["fused", "triton"]["saved_bytes"] == by["fused", "torch"]["saved_bytes"]
    assert "Triton kernels vs PyTorch loops" in format_block(rows)


@pytest.mark.slow
def test_kernels_build_for_a_gpu_without_one():
    """Every kernel compiles ahead of time to a cubin for sm_90 (Triton ships ptxas), including
    the code only a GPU runs: CUDA's exp in the surrogate and the compiled dtype paths."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, str(root / "scripts" / "kernels_aot.py"), "90"],
                         capture_output=True, text=True, env=env, timeout=500)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "kernels compiled for" in res.stdout
    built = res.stdout.splitlines()
    for kind in ("rev forward fp32", "rev backward bf16 surrogate 1", "binary forward bf16",
                 "binary backward fp16", "binary backward fp32 replay=True tau2=False"):
        assert any(line.startswith(kind) for line in built), (kind, built)
