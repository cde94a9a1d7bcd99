"""Standard LIF/IF nodes: golden trajectories and equality with SpikingJelly 2.0.0 (E1.1–E1.6)."""

import itertools

import pytest
import torch
from torch.testing import assert_close

import revsnn
from revsnn.baselines import spikingjelly_available


def test_lif_golden_trajectory_hard_reset():
    """(E1.1), (E1.4), (E1.5) by hand: constant input 1.5, τ = 2, θ = 1, V_reset = 0."""
    x = torch.full((5, 1, 1), 1.5)
    s, v = revsnn.LIF()(x, return_state=True)
    # H: 0.75 → 1.125 (fire, V=0) → 0.75 → 1.125 (fire) → 0.75
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert v.item() == pytest.approx(0.75)


def test_lif_golden_trajectory_soft_reset_no_decay_input():
    """(E1.2), (E1.6): H = V − V/τ + X, V = H − θS."""
    x = torch.full((3, 1, 1), 0.8)
    s, v = revsnn.LIF(decay_input=False, v_reset=None)(x, return_state=True)
    # H1 = 0.8 → no; H2 = 0.4 + 0.8 = 1.2 → fire, V = 0.2; H3 = 0.1 + 0.8 = 0.9
    assert s.flatten().tolist() == [0.0, 1.0, 0.0]
    assert v.item() == pytest.approx(0.9)


def test_if_golden_trajectory():
    """(E1.3): H = V + X."""
    s = revsnn.IF()(torch.full((4, 1, 1), 0.6))
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]


def test_every_call_starts_from_rest():
    lif = revsnn.LIF()
    x = torch.rand(6, 3, 5) * 2
    assert torch.equal(lif(x), lif(x))


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(4, 3), "rank"), (torch.zeros(0, 2, 3), "T = 0"),
    (torch.zeros(3, 2, 4, dtype=torch.int64), "floating"),
])
def test_lif_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        revsnn.LIF()(bad)


def test_lif_bad_hyperparameters():
    with pytest.raises(ValueError, match="tau"):
        revsnn.LIF(tau=1.0)
    with pytest.raises(ValueError, match="v_reset"):
        revsnn.LIF(v_reset=2.0)


configs = list(itertools.product(
    [0.0, None],                       # v_reset (None = soft)
    [True, False],                     # decay_input
    [False, True],                     # detach_reset
    ["sigmoid", "atan"],               # surrogate
))


@pytest.mark.skipif(not spikingjelly_available(), reason="SpikingJelly 2.0.0 not installed")
@pytest.mark.parametrize("v_reset, decay_input, detach_reset, surrogate", configs)
def test_lif_equals_spikingjelly(v_reset, decay_input, detach_reset, surrogate):
    from spikingjelly.activation_based import neuron, surrogate as sj_sg
    ours_sg = revsnn.Sigmoid() if surrogate == "sigmoid" else revsnn.ATan()
    sj_fn = sj_sg.Sigmoid(alpha=4.0) if surrogate == "sigmoid" else sj_sg.ATan(alpha=2.0)
    kw = dict(tau=2.0, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset,
              detach_reset=detach_reset)
    ours = revsnn.LIF(surrogate=ours_sg, **kw)
    ref = neuron.LIFNode(surrogate_function=sj_fn, step_mode="m", **kw)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 4, 33, generator=g) * 1.5
    w = torch.randn(12, 4, 33, generator=g)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), ref(xb)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert_close(ya, yb, rtol=0, atol=0)
    assert_close(xa.grad, xb.grad, rtol=1e-6, atol=1e-7)
    assert_close(ours(x, return_state=True)[1], ref.v.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not spikingjelly_available(), reason="SpikingJelly 2.0.0 not installed")
def test_if_equals_spikingjelly():
    from spikingjelly.activation_based import neuron
    x = torch.randn(10, 3, 17, generator=torch.Generator().manual_seed(0))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = revsnn.IF()(xa), neuron.IFNode(step_mode="m")(xb)
    ya.sum().backward()
    yb.sum().backward()
    assert_close(ya, yb, rtol=0, atol=0)
    assert_close(xa.grad, xb.grad)
