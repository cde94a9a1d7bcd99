"""ReversibleLIF, organised by property: stability, invertibility, gradient equivalence, float64
gradcheck of the VJP algebra, drift guard, bad input, memory. Labels refer to revsnn/functional/reversible.py."""

import math
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from torch.testing import assert_close

import revsnn
from revsnn.analysis.invertibility import naive_coupling_drift
from revsnn.analysis.measure import saved_tensor_bytes
from revsnn.functional.reversible import RevLIFParams, rev_step, rev_step_inverse, rev_step_vjp
from revsnn.nodes.base import ReconstructionError


def _grads(node_kwargs, x, w, algo, state=None):
    node = revsnn.ReversibleLIF(backward=algo, **node_kwargs)
    xx = x.clone().requires_grad_()
    st_ = None if state is None else tuple(s.clone().requires_grad_() for s in state)
    y, (v1, v2) = node(xx, state=st_, return_state=True)
    ((y * w).sum() + v1.sum() * 0.5 - v2.sum() * 0.25).backward()
    gs = (xx.grad,) + (() if st_ is None else tuple(s.grad for s in st_))
    return y.detach(), gs


def _rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


# -- stability ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 4.0])
def test_membranes_stay_bounded_up_to_T256(sigma):
    x = torch.randn(256, 8, 256, generator=torch.Generator().manual_seed(0)) * sigma
    r = revsnn.check_invertible(revsnn.ReversibleLIF(), x)
    assert math.isfinite(r.max_membrane)
    # measured ≈ 12σ at this size; a diverging design grows without bound (see next test)
    assert r.max_membrane < 25 * sigma + 2, r
    assert r.exact, r


def test_naive_coupling_diverges_where_ours_does_not():
    """REFERENCE §1: V̂ = V + H(1 − S) grows geometrically (E3.N1)."""
    naive = naive_coupling_drift(64, sigma=1.5)
    ours = revsnn.check_invertible(revsnn.ReversibleLIF(),
                                   torch.randn(64, 8, 256, generator=torch.Generator().manual_seed(0)) * 1.5)
    assert naive["max_membrane"] > 1e6
    assert ours.max_membrane < 40


def test_rotation_part_is_volume_preserving_and_bounded():
    """Linear part of (E2.1)+(E2.4): det 1, |trace| < 2 → eigenvalues on the unit circle."""
    for a in (0.1, 0.5, 1.0, 1.9):
        m = torch.tensor([[1.0, -a], [a, 1 - a * a]], dtype=torch.float64)
        assert torch.linalg.det(m).item() == pytest.approx(1.0)
        assert abs(torch.trace(m).item()) < 2
        assert_close(torch.linalg.eigvals(m).abs(), torch.ones(2, dtype=torch.float64))


# -- invertibility --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("T", [4, 64, 256])
def test_check_invertible_is_exact(dtype, T):
    x = torch.randn(T, 4, 64, generator=torch.Generator().manual_seed(T)) * 1.5
    node = revsnn.ReversibleLIF()
    x = x.clamp(-node.exact_input_bound(dtype) + 1, node.exact_input_bound(dtype) - 1).to(dtype)
    r = revsnn.check_invertible(node, x)
    assert r.exact and r.flipped_spikes == 0 and r.input_error == 0 and r.state_error == 0, r


def test_inverse_roundtrip_bit_exact_with_spatial_dims():
    node = revsnn.ReversibleLIF()
    x = torch.randn(16, 2, 6, 3, 3, generator=torch.Generator().manual_seed(1)) * 2
    y, state = node(x, return_state=True)
    x_rec, (v1, v2) = node.inverse(y, state)
    assert torch.equal(x_rec, node.quantize_input(x))
    assert torch.equal(v1, torch.zeros_like(v1)) and torch.equal(v2, torch.zeros_like(v2))


def test_spike_is_encoded_in_the_half_grid_step():
    """(E2.2)/(E3.1): ϑ is an odd multiple of δ/2, X̄ a multiple of δ."""
    p = revsnn.ReversibleLIF().params(torch.float32)
    assert (p.spike_scale / (p.grid / 2)) % 2 == 1
    assert (p.v_threshold / p.grid) % 1 == 0


def test_output_is_input_plus_spike_term():
    node = revsnn.ReversibleLIF()
    x = torch.randn(8, 3, 10, generator=torch.Generator().manual_seed(2))
    s = node(x) - node.quantize_input(x)
    p = node.params(torch.float32)
    assert set(s.unique().tolist()) <= {0.0, p.spike_scale}
    assert (s > 0).any()


# -- gradients equal plain BPTT through the same forward --------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(T=st.integers(1, 64), B=st.integers(1, 3), half_c=st.integers(1, 6),
       spatial=st.sampled_from([(), (2,), (2, 3)]), seed=st.integers(0, 2**16),
       sigma=st.sampled_from([0.25, 1.0, 2.0, 4.0]), tau=st.floats(1.25, 4.0),
       v_threshold=st.floats(0.5, 2.0), coupling=st.floats(0.1, 1.5),
       surrogate=st.sampled_from(["sigmoid", "atan"]), decay_input=st.booleans())
def test_revnet_and_fused_gradients_equal_autograd(T, B, half_c, spatial, seed, sigma, tau,
                                                   v_threshold, coupling, surrogate, decay_input):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, 2 * half_c, *spatial, generator=g) * sigma
    w = torch.randn(x.shape, generator=g)
    kw = dict(tau=tau, v_threshold=v_threshold, coupling=coupling, decay_input=decay_input,
              surrogate=revsnn.Sigmoid() if surrogate == "sigmoid" else revsnn.ATan())
    y_ref, (gx_ref,) = _grads(kw, x, w, "autograd")
    for algo in ("revnet", "fused"):
        y, (gx,) = _grads(kw, x, w, algo)
        assert torch.equal(y, y_ref)
        assert _rel_err(gx, gx_ref) <= 1e-5, algo


@pytest.mark.parametrize("algo", ["revnet", "fused"])
def test_gradient_wrt_explicit_initial_state(algo):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(12, 2, 8, generator=g)
    state = (torch.randn(2, 4, generator=g).round(), torch.randn(2, 4, generator=g).round())
    w = torch.randn(x.shape, generator=g)
    y_ref, ref = _grads({}, x, w, "autograd", state)
    y, got = _grads({}, x, w, algo, state)
    assert torch.equal(y, y_ref)
    for a, b in zip(got, ref):
        assert _rel_err(a, b) <= 1e-5


def test_float64_gradients_equal_autograd():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(32, 2, 6, generator=g, dtype=torch.float64) * 2
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    _, (ref,) = _grads({}, x, w, "autograd")
    _, (got,) = _grads({}, x, w, "fused")
    assert _rel_err(got, ref) <= 1e-12


class _RelaxedSurrogate(revsnn.Sigmoid):
    """Θ replaced by the smooth primitive, so finite differences see the surrogate derivative."""

    def __call__(self, x):
        return self.primitive(x)


class _RelaxedStep(torch.autograd.Function):
    """Forward: one step (E2.1–E2.6) with identity quantisation and a smooth spike.
    Backward: revsnn's VJP (E4.1–E4.4). gradcheck compares them in float64."""

    @staticmethod
    def forward(x1, x2, v1, v2, p):
        h1 = v1 + p.input_scale * x1 - p.coupling * v2
        s1 = p.surrogate(h1 - p.v_threshold)
        v1n = h1 - p.v_threshold * s1
        h2 = v2 + p.input_scale * x2 + p.coupling * v1n
        s2 = p.surrogate(h2 - p.v_threshold)
        return (x1 + p.spike_scale * s1, x2 + p.spike_scale * s2, v1n,
                h2 - p.v_threshold * s2, h1, h2)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.p = inputs[4]
        ctx.save_for_backward(output[4], output[5])
        ctx.mark_non_differentiable(output[4], output[5])

    @staticmethod
    def backward(ctx, gy1, gy2, gv1n, gv2n, _gh1, _gh2):
        h1, h2 = ctx.saved_tensors
        return (*rev_step_vjp(h1, h2, gy1, gy2, gv1n, gv2n, ctx.p), None)


@pytest.mark.parametrize("surrogate", [_RelaxedSurrogate(alpha=2.0)])
def test_vjp_algebra_gradcheck_float64(surrogate):
    p = RevLIFParams(0.5, 0.7, 1.0, 1.25, 2.0 ** -24, surrogate)
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    fn = lambda *a: _RelaxedStep.apply(*a, p)[:4]  # noqa: E731
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7)


def test_vjp_matches_autograd_of_one_step():
    p = revsnn.ReversibleLIF().params(torch.float64)
    g = torch.Generator().manual_seed(1)
    x1, x2, v1, v2 = (torch.randn(3, 5, generator=g, dtype=torch.float64) for _ in range(4))
    v1, v2 = (torch.round(v / p.grid) * p.grid for v in (v1, v2))
    leaves = [t.clone().requires_grad_() for t in (x1, x2, v1, v2)]
    outs = rev_step(*leaves, p)
    cot = [torch.randn(o.shape, generator=g, dtype=torch.float64) for o in outs]
    ref = torch.autograd.grad(outs, leaves, cot)
    with torch.no_grad():
        inv = rev_step_inverse(*(o.detach() for o in outs[:2]), outs[2].detach(), outs[3].detach(), p)
    got = rev_step_vjp(inv.h1, inv.h2, *cot, p)
    for a, b in zip(got, ref):
        assert_close(a, b, rtol=1e-12, atol=1e-12)


# -- drift guard ------------------------------------------------------------------------------------
def _out_of_range_run(on_drift):
    # grid_bits=20 in fp32 leaves 2^(24-20) = 16 of exact range for the membranes; inputs near the
    # input bound drive them to ≈ 38, where additions round and reconstruction drifts.
    node = revsnn.ReversibleLIF(grid_bits=20, on_drift=on_drift)
    x = (torch.randn(64, 4, 64, generator=torch.Generator().manual_seed(0)) * 10).clamp(-5.9, 5.9)
    x.requires_grad_()
    node(x).sum().backward()
    return x.grad


def _tampered_run(on_drift, delta):
    node = revsnn.ReversibleLIF(on_drift=on_drift)
    x = torch.randn(16, 4, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = node(x)
    y.data[3] += delta          # bypasses autograd's version check, as a careless .data edit would
    y.sum().backward()


def test_forward_refuses_membranes_the_backward_cannot_reconstruct():
    # the inputs are in range; the membranes they drive are not: the forward says so, with the
    # remedy, instead of the backward's drift guard
    with pytest.raises(ValueError, match=r"membranes reach .* must stay below 16 .*float64"):
        _out_of_range_run("raise")
    r = revsnn.check_invertible(revsnn.ReversibleLIF(grid_bits=20), (torch.randn(
        64, 4, 64, generator=torch.Generator().manual_seed(0)) * 10).clamp(-5.9, 5.9))
    assert not r.exact and r.max_membrane > 16


@pytest.mark.parametrize("delta", [1e-3, 1.0])
def test_drift_guard_raises_when_the_saved_output_is_modified(delta):
    with pytest.raises(ReconstructionError, match="flipped spike decisions"):
        _tampered_run("raise", delta)


def test_drift_guard_can_warn():
    with pytest.warns(RuntimeWarning, match="reconstruction disagrees"), \
            pytest.warns(RuntimeWarning, match="membranes reach"):
        _out_of_range_run("warn")


def test_no_drift_warning_in_range():
    x = torch.randn(64, 4, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        revsnn.ReversibleLIF(on_drift="warn")(x).sum().backward()


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: torch.zeros(4, 2, 3), "must be even"),
    (lambda: torch.zeros(4, 6), "rank"),
    (lambda: torch.zeros(3, 2, 4, dtype=torch.int32), "floating"),
    (lambda: torch.zeros(0, 2, 4), "T = 0"),
    (lambda: torch.tensor([[[0.0, float("nan")]]]), "NaN"),
    (lambda: torch.full((2, 1, 2), 1e6), "exact range"),
])
def test_bad_input_names_the_problem(make, match):
    with pytest.raises(ValueError, match=match):
        revsnn.ReversibleLIF()(make())


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="backward"):
        revsnn.ReversibleLIF(backward="magic")
    with pytest.raises(ValueError, match="coupling"):
        revsnn.ReversibleLIF(coupling=2.5)
    with pytest.raises(ValueError, match="state"):
        revsnn.ReversibleLIF()(torch.zeros(2, 1, 4), state=(torch.zeros(1, 3), torch.zeros(1, 3)))


# -- memory -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["revnet", "fused"])
def test_saved_bytes_do_not_grow_with_T(algo):
    B, C = 4, 32
    own = {}
    for T in (8, 64):
        x = torch.randn(T, B, C, requires_grad=True)
        y, sb = saved_tensor_bytes(revsnn.ReversibleLIF(backward=algo), x)
        own[T] = sb.own
        assert sb.shared_output == y.numel() * 4        # the output, shared with the next layer
        assert sb.shared_input == 0
    assert own[8] == own[64] == B * C * 4               # one [B, C] fp32 snapshot


def test_autograd_reference_stores_per_timestep():
    sizes = []
    for T in (8, 64):
        x = torch.randn(T, 4, 32, requires_grad=True)
        sizes.append(saved_tensor_bytes(revsnn.ReversibleLIF(backward="autograd"), x)[1].total)
    assert sizes[1] > 6 * sizes[0]


def test_memory_ratio_vs_standard_lif_is_3T():
    """SpikingJelly-equal LIF saves 12 B per neuron-step; the reversible node 4 B per neuron."""
    B, C = 4, 64
    for T in (4, 8, 32):
        x = torch.randn(T, B, C, requires_grad=True)
        lif = saved_tensor_bytes(revsnn.LIF(), x)[1]
        rev = saved_tensor_bytes(revsnn.ReversibleLIF(), x)[1]
        assert lif.own + lif.shared_input == 12 * T * B * C
        assert (lif.own + lif.shared_input) / rev.own == 3 * T


def test_bfloat16_runs_and_inverts():
    x = (torch.randn(16, 2, 8, generator=torch.Generator().manual_seed(0)) * 1.5).clamp(-7, 7)
    node = revsnn.ReversibleLIF()
    xb = x.to(torch.bfloat16).requires_grad_()
    y = node(xb)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert xb.grad is not None and torch.isfinite(xb.grad.float()).all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_fused_equals_autograd_and_inverts(dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(32, 4, 64, generator=g) * 1.5).clamp(-7, 7).to("cuda", dtype)
    w = torch.randn(x.shape, generator=g).to("cuda", dtype)
    y_ref, (ref,) = _grads({}, x, w, "autograd")
    y, (got,) = _grads({}, x, w, "fused")
    assert torch.equal(y, y_ref)
    assert _rel_err(got.float(), ref.float()) <= 1e-5
    assert revsnn.check_invertible(revsnn.ReversibleLIF(), x).exact
