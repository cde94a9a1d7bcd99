"""The model zoo: registry and shapes, one mode switch, equal weights → equal forward, gradient
equivalence within each node family, the fused BN + node unit, encoders, SpikingJelly parity.

Sizes are tiny (CPU CI): equivalence is checked on a small VGG-like net and a two-block ResNet that
exercise both shortcut kinds; the zoo architectures are only built and run once.
"""


import pytest
import torch
from torch import nn
from torch.testing import assert_close

from revsnn import LIF, Checkpointed, MemoryMode, ReversibleLIF
from revsnn.baselines import spikingjelly_available
from revsnn.models import (MODELS, BasicBlock, ConvBNNode, NodeSpec, RateEncoder, build,
                           copy_weights, to_spikingjelly)
from revsnn.functional.bn_inverse import (RESIDUAL_TOLERANCE, bn_normalized_from_output,
                                          decode_node_input, decode_residual, encode_residual,
                                          residual_bits, residual_step)
from revsnn.layers.bn_node import BNNodeFunction
from revsnn.layers.containers import SeqMaxPool
from revsnn.layers.units import Readout
from revsnn.models.net import SpikingNet
from revsnn.functional.quantize import quantize

REVERSIBLE = ("autograd", "revnet", "fused")


def assert_rel_close(actual, expected, rel=1e-5, msg=""):
    """|actual − expected| ≤ rel · max|expected| elementwise (relative to the tensor's scale)."""
    scale = float(expected.abs().max())
    assert_close(actual, expected, rtol=rel, atol=rel * max(scale, 1e-30), msg=msg or None)


def small_net(mode, seed=0, T=3, fuse_bn=True, dtype=torch.float32):
    """VGG-like stem + pool, a ResNet block with identity shortcut and one with a conv shortcut."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        spec = NodeSpec(mode, fuse_bn=fuse_bn)
        feats = nn.Sequential(ConvBNNode(3, 8, spec), SeqMaxPool(2), BasicBlock(8, 8, 1, spec),
                              BasicBlock(8, 12, 2, spec))
        net = SpikingNet(feats, Readout(12, 5), spec, T=T)
        # non-trivial affine parameters, so that (E2.B2) is exercised with γ ≠ 1, β ≠ 0
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.5, 0.5)
    return net.to(dtype)


def step(net, x):
    """Forward + loss + backward; returns output, input gradient, param grads, state dict."""
    x = x.clone().requires_grad_()
    out = net(x)
    (out.pow(2).sum() + out[:, 0].sum()).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    return out.detach(), x.grad, grads, {k: v.clone() for k, v in net.state_dict().items()}


# -- registry, shapes, validation ----------------------------------------------------------------

def test_registry_names_and_unknown_model():
    assert set(MODELS) == {"vgg11", "vgg13", "vgg16", "resnet18", "resnet19", "convnet",
                           "revresnet_s", "revresnet_m", "revresnet_l"}
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        build("resnet50")


@pytest.mark.parametrize("name, size, backward", [
    ("vgg11", 32, True), ("vgg13", 8, False), ("vgg16", 8, False), ("resnet18", 8, True),
    ("resnet19", 8, False), ("convnet", 28, True), ("convnet", 8, True)])
def test_every_architecture_runs(name, size, backward):
    net = build(name, "fused", num_classes=7, T=2, seed=0)    # BN needs T·B·H·W > 1
    x = torch.rand(1, net.config["in_channels"], size, size)
    with torch.set_grad_enabled(backward):
        out = net(x)
    assert out.shape == (1, 7) and torch.isfinite(out).all()
    if backward:
        out.sum().backward()
        assert all(p.grad is not None for p in net.parameters())


def test_architecture_facts():
    vgg = build("vgg11")
    convs = [m for m in vgg.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    r19 = build("resnet19")
    blocks = [m for m in r19.features if isinstance(m, BasicBlock)]
    assert [b.conv2.conv.out_channels for b in blocks] == [128] * 3 + [256] * 3 + [512] * 2
    stem = r19.features[0].conv
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)          # CIFAR stem
    assert not any(isinstance(m, nn.MaxPool2d) for m in build("resnet18").modules())
    # every channel count where a node sits is even (the reversible node splits channels)
    for name in (a for a in MODELS if not a.startswith("revresnet")):
        for m in build(name, "fused").modules():
            if isinstance(m, ConvBNNode):
                assert m.conv.out_channels % 2 == 0


def test_odd_channels_are_rejected_for_reversible_nodes_only():
    with pytest.raises(ValueError, match="even"):
        ConvBNNode(3, 5, NodeSpec("fused"))
    ConvBNNode(3, 5, NodeSpec("bptt"))


def test_input_rank_and_sequence_input():
    net = build("convnet", T=3, seed=0)
    x = torch.rand(2, 1, 8, 8)
    assert_close(net(x), net(x.unsqueeze(0).repeat(3, 1, 1, 1, 1)), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        net(torch.rand(8, 8))


@pytest.mark.parametrize("mode, node_type", [("bptt", LIF), ("checkpoint", Checkpointed),
                                             ("REVERSIBLE_FUSED", ReversibleLIF),
                                             (MemoryMode.REVERSIBLE_REVNET, ReversibleLIF)])
def test_one_argument_switches_every_node(mode, node_type):
    net = build("resnet18", mode, node_kwargs=dict(tau=3.0, v_threshold=0.5))
    nodes = net.nodes()
    assert len(nodes) == 17 and all(type(n) is node_type for n in nodes)
    inner = nodes[0].node if isinstance(nodes[0], Checkpointed) else nodes[0]
    if isinstance(inner, LIF):
        assert inner.params.tau == 3.0 and inner.params.v_threshold == 0.5
    else:
        assert inner.tau == 3.0 and inner.v_threshold == 0.5
        assert inner.backward_algorithm == MemoryMode.parse(mode).value


def test_seed_gives_equal_weights_and_keeps_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = build("vgg11", "bptt", seed=5), build("vgg11", "fused", seed=5)
    assert torch.equal(torch.rand(1), before)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


# -- equal weights → equal forward -----------------------------------------------------------

def test_bptt_state_dict_in_checkpoint_model_gives_identical_step():
    x = torch.rand(4, 3, 8, 8)
    ref = small_net("bptt")
    ck = copy_weights(ref, small_net("checkpoint", seed=1))
    o1, g1, p1, s1 = step(ref, x)
    o2, g2, p2, s2 = step(ck, x)
    assert torch.equal(o1, o2) and torch.equal(g1, g2)
    for n in p1:
        assert torch.equal(p1[n], p2[n]), n
    for n in s1:                                    # running stats updated once, identically
        assert torch.equal(s1[n], s2[n]), n


def test_reversible_family_equal_outputs_and_gradients():
    """(E2.B1)–(E2.B4): the fused BN + node unit (revnet, fused) against plain autograd."""
    x = torch.rand(4, 3, 8, 8)
    ref = small_net("autograd")
    res = {m: step(copy_weights(ref, small_net(m, seed=9)), x) for m in REVERSIBLE}
    o0, g0, p0, s0 = res["autograd"]
    for mode in ("revnet", "fused"):
        o, g, p, s = res[mode]
        assert torch.equal(o, o0), mode                         # identical forward
        assert_rel_close(g, g0, msg=f"{mode} input grad")
        for n in p0:
            assert_rel_close(p[n], p0[n], msg=f"{mode} {n}")
        for n in s0:                                            # running stats: once, identical
            assert torch.equal(s[n], s0[n]), (mode, n)
    nbt = [v for k, v in res["fused"][3].items() if k.endswith("num_batches_tracked")]
    assert nbt and all(int(v) == 1 for v in nbt)
    # the two node backward algorithms agree with each other bit for bit on the BN part
    assert torch.equal(res["fused"][1], res["revnet"][1])


def test_fused_bn_is_used_and_not_without_fusion(monkeypatch):
    calls = []
    orig = BNNodeFunction.apply
    monkeypatch.setattr(BNNodeFunction, "apply", lambda *a: calls.append(1) or orig(*a))
    x = torch.rand(2, 3, 8, 8)
    small_net("fused")(x)
    assert len(calls) == 5                       # every conv-BN-node of the net
    calls.clear()
    small_net("fused", fuse_bn=False)(x)
    small_net("autograd")(x)
    assert calls == []


def test_fused_bn_stores_no_bn_input():
    from revsnn.analysis.measure import saved_tensor_bytes
    block = ConvBNNode(4, 8, NodeSpec("fused"))
    x = torch.rand(3, 2, 4, 6, 6, requires_grad=True)
    params = list(block.parameters()) + list(block.buffers())
    _, fused = saved_tensor_bytes(block, x, params=params)
    block.fuse_bn = False
    _, plain = saved_tensor_bytes(block, x, params=params)
    n = 3 * 2 * 8 * 6 * 6
    # plain: BN input (4n) + mean, 1/σ (2·8·4) + Y (4n, shared output) + state (4n/T)
    # fused: int8 code (n) + 1/σ (8·4) + Y (shared) + state
    assert plain.own - fused.own == 4 * n + 2 * 8 * 4 - (n + 8 * 4)
    assert fused.shared_output == plain.shared_output == 4 * n


@pytest.mark.parametrize("training", [True, False])
def test_fused_unit_matches_autograd_in_train_and_eval(training):
    torch.manual_seed(0)
    x = torch.randn(3 * 2, 6, 5, 5)
    a = torch.randn(3, 2, 6, 5, 5)
    bn_ref, node_ref = nn.BatchNorm2d(6), ReversibleLIF(backward="autograd")
    with torch.no_grad():
        bn_ref.weight.uniform_(-2.0, 2.0)          # negative γ invert too
        bn_ref.bias.uniform_(-1.0, 1.0)
        bn_ref.running_mean.uniform_(-0.2, 0.2)
    bn = nn.BatchNorm2d(6)
    bn.load_state_dict(bn_ref.state_dict())
    bn_ref.train(training), bn.train(training)
    node = ReversibleLIF(backward="fused")
    gy = torch.randn(3, 2, 6, 5, 5)
    outs = []
    for which in ("ref", "fused"):
        xi, ai = x.clone().requires_grad_(), a.clone().requires_grad_()
        if which == "ref":
            y = node_ref(bn_ref(xi).view(3, 2, 6, 5, 5) + ai)
            params = (bn_ref.weight, bn_ref.bias)
        else:
            bits = residual_bits(bn.weight, node.params(x.dtype).grid, x.dtype)
            y = BNNodeFunction.apply(xi, bn.weight, bn.bias, ai, bn, node, 3, bits)[0]
            params = (bn.weight, bn.bias)
        grads = torch.autograd.grad(y, (xi, ai, *params), gy)
        outs.append((y.detach(), grads))
    (y0, g0), (y1, g1) = outs
    assert torch.equal(y0, y1)
    for name, u, v in zip(("x", "addend", "gamma", "beta"), g1, g0):
        assert_rel_close(u, v, msg=name)
    assert torch.equal(bn.running_mean, bn_ref.running_mean)
    assert torch.equal(bn.running_var, bn_ref.running_var)


def test_small_gamma_falls_back_to_storing_the_bn_input():
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 1e-9, 0.5, 2.0]))
    grid = 2.0 ** -12
    assert residual_bits(bn.weight, grid, torch.float32) == 0
    with torch.no_grad():
        bn.weight[1] = 0.02
    assert residual_bits(bn.weight, grid, torch.float32) == 16
    # the fallback's gradients are still those of autograd
    with torch.no_grad():
        bn.weight[1] = 0.0
    ref = copy_weights(bn, nn.BatchNorm2d(4))
    x = torch.randn(2 * 3, 4, 3, 3)
    node, node_ref = ReversibleLIF(), ReversibleLIF(backward="autograd")
    xi = x.clone().requires_grad_()
    y = BNNodeFunction.apply(xi, bn.weight, bn.bias, None, bn, node, 2, 0)[0]
    g = torch.autograd.grad(y.sum(), (xi, bn.weight))
    xr = x.clone().requires_grad_()
    gr = torch.autograd.grad(node_ref(ref(xr).view(2, 3, 4, 3, 3)).sum(), (xr, ref.weight))
    for u, v in zip(g, gr):
        assert_rel_close(u, v)


def test_float64_gradients_match_to_1e_9():
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    ref = small_net("autograd", dtype=torch.float64)
    _, g0, p0, _ = step(ref, x)
    _, g1, p1, _ = step(copy_weights(ref, small_net("fused", dtype=torch.float64)), x)
    assert_rel_close(g1, g0, rel=1e-9)
    for n in p0:
        assert_rel_close(p1[n], p0[n], rel=1e-9, msg=n)


# -- the pieces of the BN inversion ------------------------------------------------------------

def test_bn_affine_inverts():
    """(E2.B2) inverts (E2.B1): forward/inverse pair of BatchNorm's per-channel affine map."""
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(5)
    with torch.no_grad():
        bn.weight.uniform_(0.2, 3.0)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(7, 5, 4, 4) * 3 + 1
    mean = x.mean((0, 2, 3), keepdim=True)
    xhat = (x - mean) / torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True) + bn.eps)
    assert_close(bn_normalized_from_output(bn(x), bn.weight, bn.bias), xhat, rtol=0, atol=2e-6)


def test_node_input_decodes_from_output_exactly():
    node = ReversibleLIF()
    x = torch.randn(6, 3, 8) * 2
    assert torch.equal(decode_node_input(node(x), node), node.quantize_input(x))


def test_residual_code_error_bound():
    """(E2.B4): |z − (q(z) + r')| ≤ δ/(4L) (+ one rounding of the addition)."""
    grid = 2.0 ** -12
    z = torch.randn(100_000) * 4
    zq = quantize(z, grid)
    for bits in (8, 16):
        zr = zq + decode_residual(encode_residual(z, grid, bits), grid, bits, z.dtype)
        err = (zr - z).abs()
        bound = residual_step(grid, bits) / 2 + torch.finfo(torch.float32).eps * z.abs()
        assert bool((err <= bound).all()), bits
        assert float(err.max()) > 0.1 * residual_step(grid, bits) / 2   # the bound is tight
    assert residual_step(grid, 8) / 2 == pytest.approx(4.8e-7, rel=0.01)
    assert set(RESIDUAL_TOLERANCE) == {torch.float32, torch.float64}


# -- encoders, SpikingJelly ----------------------------------------------------------------------

def test_rate_encoder_is_seeded_binary_and_leaves_global_rng():
    x = torch.full((2000,), 0.3).view(1, 1, 40, 50)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    s = RateEncoder(8, seed=3)(x)
    assert torch.equal(torch.rand(1), before)
    assert s.shape == (8, 1, 1, 40, 50) and set(s.unique().tolist()) == {0.0, 1.0}
    assert abs(float(s.mean()) - 0.3) < 0.02
    assert torch.equal(s, RateEncoder(8, seed=3)(x))
    assert not torch.equal(s, RateEncoder(8, seed=4)(x))
    a = build("convnet", "bptt", encoder="rate", seed=0, T=4)
    b = copy_weights(a, build("convnet", "checkpoint", encoder="rate", T=4))
    img = torch.rand(2, 1, 8, 8)
    assert torch.equal(a(img), b(img))


@pytest.mark.skipif(not spikingjelly_available(), reason="SpikingJelly is not installed")
def test_spikingjelly_network_equals_bptt_network():
    from revsnn.nodes.spikingjelly import SpikingJellyLIF
    from revsnn.surrogate import ATan
    kw = dict(tau=3.0, surrogate=ATan())
    ours = build("resnet18", "bptt", seed=0, T=2, node_kwargs=kw)
    sj = to_spikingjelly(ours)
    assert all(isinstance(n, SpikingJellyLIF) for n in sj.nodes()) and len(sj.nodes()) == 17
    assert build("vgg11", "spikingjelly").strategy.baseline == "spikingjelly"
    x = torch.rand(1, 3, 8, 8)
    o1, g1, p1, _ = step(ours, x)
    o2, g2, p2, _ = step(sj, x)
    assert_close(o2, o1, rtol=0, atol=0)
    assert_close(g2, g1, rtol=1e-6, atol=1e-7)
    for n in p1:
        assert_close(p2[n], p1[n], rtol=1e-6, atol=1e-7, msg=n)


def test_sync_batchnorm_is_never_fused():
    """The fused BN-node unit computes per-process statistics, so SyncBatchNorm must stay unfused."""
    from torch import nn as _nn

    import revsnn
    from revsnn.layers.bn_node import can_fuse
    x = torch.zeros(2, 2, 4, 3, 3)
    assert can_fuse(_nn.BatchNorm2d(4), revsnn.ReversibleLIF(), x)
    assert not can_fuse(_nn.SyncBatchNorm(4), revsnn.ReversibleLIF(), x)
