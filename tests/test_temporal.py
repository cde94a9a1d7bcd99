"""The time-major strategy: gradients equal autograd through the same forward, exact walk back,
per-timestep BatchNorm, and memory flat in T (NOTE [time-major backward], (E8.*), (E9.*))."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from revsnn import ReconstructionError
from revsnn.analysis.measure import saved_tensor_bytes
from revsnn.nodes.binary import BinaryReversibleLIF
from revsnn.temporal import (ConvBN, LinearSynapse, Residual, TemporalNetwork, TemporalUnit,
                             TimestepBatchNorm2d, temporal_model)
from revsnn.temporal.engine import _plan


def _net(backward="temporal", *, T=4, c=6, chunk_bytes=None, dropout=0.0, seed=0, tau=2,
         on_drift="raise"):
    """Every synapse kind: conv-BN, pooled conv-BN, identity and conv shortcuts, linear, a plain
    module with dropout (computed whole)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        node = dict(tau=tau)
        units = [
            TemporalUnit(ConvBN(3, c), (-1,), BinaryReversibleLIF(**node)),
            TemporalUnit(ConvBN(c, c, pool=True), (0,), BinaryReversibleLIF(**node)),
            TemporalUnit(Residual(ConvBN(c, c)), (1, 1), BinaryReversibleLIF(**node)),
            TemporalUnit(Residual(ConvBN(c, c + 2, 3, 2), ConvBN(c, c + 2, 1, 2)), (2, 1),
                         BinaryReversibleLIF(**node)),
            TemporalUnit(LinearSynapse(c + 2, 10), (3,), BinaryReversibleLIF(**node)),
            TemporalUnit(nn.Sequential(nn.Linear(10, 8), nn.Dropout(dropout)), (4,),
                         BinaryReversibleLIF(**node)),
        ]
        return TemporalNetwork(units, nn.Linear(8, 5), T=T, backward=backward,
                               chunk_bytes=chunk_bytes, on_drift=on_drift)


def _step(net, x, seed=1):
    net.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)
    out = net(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in net.named_parameters()}


def _assert_same_gradients(ref, got, rtol=1e-5):
    # same spikes; the time average is summed in another order, so equal to rounding
    torch.testing.assert_close(got[0], ref[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(got[1], ref[1], rtol=rtol, atol=rtol * float(ref[1].abs().max()))
    # a gradient that is zero up to rounding has no relative error: measure it against the
    # network's largest gradient
    floor = 1e-7 * max(float(g.abs().max()) for g in ref[2].values())
    for name, g in ref[2].items():
        scale = float(g.abs().max())
        torch.testing.assert_close(got[2][name], g, rtol=rtol, atol=rtol * scale + floor,
                                   msg=lambda m, name=name: f"{name}: {m}")


@settings(max_examples=12, deadline=None)
@given(T=st.integers(1, 64), batch=st.integers(2, 3), size=st.sampled_from([4, 6, 8]),
       seed=st.integers(0, 10_000), chunk=st.sampled_from([None, 200, 4096]),
       static=st.booleans())
def test_gradients_equal_autograd_through_the_same_forward(T, batch, size, seed, chunk, static):
    """(E9.4–E9.8) against plain autograd of (E9.1–E9.3): inputs and every parameter (conv, BN
    affine, linear), static and sequence inputs, with and without channel ranges."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 3, size, size) if static else (T, batch, 3, size, size)
    x = torch.randn(*shape, generator=g) * 2
    ref = _step(_net("autograd", T=T, seed=seed), x)
    got = _step(_net("temporal", T=T, seed=seed, chunk_bytes=chunk), x)
    _assert_same_gradients(ref, got)


@pytest.mark.parametrize("tau", [3, 4])
def test_gradients_equal_autograd_for_tau_above_two(tau):
    """τ > 2 stores ⌈log₂τ⌉ remainder bits and divides exactly in (E6.2)."""
    x = torch.randn(2, 3, 6, 6) * 2
    _assert_same_gradients(_step(_net("autograd", T=7, tau=tau), x),
                           _step(_net("temporal", T=7, tau=tau, chunk_bytes=300), x))


def test_dropout_is_replayed_exactly():
    x = torch.randn(2, 3, 6, 6)
    ref = _step(_net("autograd", T=5, dropout=0.5), x, seed=3)
    got = _step(_net("temporal", T=5, dropout=0.5), x, seed=3)
    _assert_same_gradients(ref, got)


def test_running_statistics_updated_once_per_step_with_the_mean_of_the_steps():
    """(E8.1): one update per training step, from the mean over t of the per-step statistics."""
    net = _net("temporal", T=3, chunk_bytes=200)
    x = torch.randn(3, 4, 3, 8, 8)
    _step(net, x)
    bn = net.units[0].synapse.bn
    assert int(bn.num_batches_tracked) == 1
    y = [nn.functional.conv2d(x[t], net.units[0].synapse.conv.weight, padding=1) for t in range(3)]
    mean = torch.stack([s.mean((0, 2, 3)) for s in y]).mean(0)
    var = torch.stack([s.var((0, 2, 3)) for s in y]).mean(0)
    torch.testing.assert_close(bn.running_mean, 0.1 * mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var, rtol=1e-5, atol=1e-6)
    ref = _net("autograd", T=3)
    _step(ref, x)
    for a, b in zip(ref.buffers(), net.buffers()):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


def test_timestep_batchnorm_normalises_each_step_alone():
    """(E8.2): a sequence call equals step-by-step calls; eval uses the running statistics."""
    bn = TimestepBatchNorm2d(3)
    x = torch.randn(4, 5, 3, 2, 2) * torch.arange(1, 5).view(4, 1, 1, 1, 1)
    y = bn(x)
    for t in range(4):
        torch.testing.assert_close(y[t].mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
        torch.testing.assert_close(y[t].var((0, 2, 3), correction=0), torch.ones(3), atol=1e-3,
                                   rtol=0)
    bn.eval()
    ref = nn.functional.batch_norm(x[1], bn.running_mean, bn.running_var, bn.weight, bn.bias)
    torch.testing.assert_close(bn(x[1]), ref)
    plain = nn.BatchNorm2d(3)
    plain.load_state_dict(bn.state_dict())                       # same names as nn.BatchNorm2d
    with pytest.raises(ValueError, match="TimestepBatchNorm2d"):
        bn(torch.randn(3, 3))


def test_eval_and_no_grad_forward_equal_the_training_forward():
    net = _net("temporal", T=4, chunk_bytes=200)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        a = net(x)
    b = net(x)
    torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    torch.testing.assert_close(net(x).detach(), net.step_logits(x).mean(0).detach(), rtol=1e-6,
                               atol=1e-7)
    net.eval()
    assert net(x).shape == (2, 5)


def test_a_tampered_trace_raises_instead_of_returning_wrong_gradients():
    net = _net("temporal", T=6)
    x = torch.randn(2, 3, 6, 6)
    out = net.step_logits(x)
    # flip every stored spike bit of the first unit at step 2, behind autograd's version check
    # (as a bad kernel or a stray write would): the walk back must notice
    spikes = out.grad_fn.saved_tensors[1]
    spikes.data[2].bitwise_not_()
    with pytest.raises(ReconstructionError, match="reconstruction disagrees"):
        out.sum().backward()


def test_walking_membranes_are_promoted_when_they_leave_int16():
    """V_T fits int16 but an earlier membrane does not (|V| ≥ 8 = 2^15 grid steps): the walk
    widens its state on the way back and stays exact."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        units = [TemporalUnit(ConvBN(1, 2), (-1,), BinaryReversibleLIF(v_threshold=12.0))]
        readout = nn.Sequential(nn.Flatten(), nn.Linear(2 * 9, 2))
    units[0].synapse.bn.weight.data.fill_(10.0)          # charges up to about ±20
    x = torch.zeros(6, 2, 1, 3, 3)
    x[:3, 0], x[:3, 1] = 30.0, -30.0                      # membranes climb past 8 …
    nets = {b: TemporalNetwork(units, readout, T=6, backward=b) for b in ("autograd", "temporal")}
    out = nets["temporal"].step_logits(x.clone().requires_grad_())
    v_final = out.grad_fn.saved_tensors[1 + 2 * len(units)]
    assert v_final.dtype == torch.int16                   # … and decay back below it by t = T
    _assert_same_gradients(_step(nets["autograd"], x), _step(nets["temporal"], x))


def test_channel_ranges_cover_every_neuron_once():
    plan = _plan((4, 10, 3, 3), 4, 100)
    assert [r.c0 for r in plan.ranges][0] == 0 and plan.ranges[-1].c1 == 10
    assert sum(r.n1 - r.n0 for r in plan.ranges) == plan.neurons == 360
    assert all(a.c1 == b.c0 and a.n1 == b.n0 and a.b1 == b.b0
               for a, b in zip(plan.ranges, plan.ranges[1:]))
    assert len(_plan((4, 10, 3, 3), 4, None).ranges) == 1


def test_saved_bytes_are_bits_per_neuron_step_plus_one_state():
    """NOTE [time-major memory budget]: 2 bits per neuron-step (τ = 2) plus V_T, nothing else."""
    rows = {}
    for T in (4, 32):
        net = _net("temporal", T=T)
        x = torch.randn(2, 3, 8, 8)
        _, rows[T] = saved_tensor_bytes(net, x, params=list(net.parameters()))
    sizes = _net().neurons_per_step(torch.randn(2, 3, 8, 8))
    per_T = sum((n + 7) // 8 * 2 for n in sizes)        # packed S and R per step
    v_final = sum(n * 2 for n in sizes)                  # int16 V_T
    for T, row in rows.items():
        assert row.own == per_T * T + v_final, (T, row)


@pytest.mark.parametrize("arch", ["vgg11", "resnet19", "convnet"])
def test_zoo_architectures_train_time_major(arch):
    size, cin = (8, 1) if arch == "convnet" else (8, 3)
    net = temporal_model(arch, T=2, num_classes=4, in_channels=cin)
    x = torch.rand(2, cin, size, size)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert len(net.nodes()) == len(net.units)


def test_bad_networks_and_inputs_are_refused():
    with pytest.raises(ValueError, match="source"):
        TemporalNetwork([TemporalUnit(ConvBN(3, 4), (0,))], nn.Flatten())
    with pytest.raises(ValueError, match="backward"):
        TemporalNetwork([TemporalUnit(ConvBN(3, 4))], nn.Flatten(), backward="revnet")
    with pytest.raises(TypeError, match="BinaryReversibleLIF"):
        TemporalUnit(ConvBN(3, 4), node=nn.ReLU())
    with pytest.raises(ValueError, match="expected a static batch"):
        _net()(torch.randn(6))
    with pytest.raises(ValueError, match="no time-major form"):
        temporal_model("revresnet_s")
