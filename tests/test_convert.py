"""revsnn.convert on networks written the way users write them: a SpikingJelly-layer VGG, a
SEW-ResNet-style residual block, a plain-PyTorch per-step VGG, and networks with nodes that cannot
be converted. Properties: outputs equal to the original where the node is the same, gradients equal
to plain autograd through the same network, state dicts that load both ways, a report that names
every node and never hides one."""

import copy

import pytest
import torch
from torch import nn

pytest.importorskip("spikingjelly.activation_based.neuron")
from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402

import revsnn  # noqa: E402
from revsnn import LIF, ReversibleLIF  # noqa: E402
from revsnn.conversion import (ConversionError, convert, find_nodes, load_factory,  # noqa: E402
                               to_spikingjelly, user_modes, user_network)
from revsnn.conversion import examples  # noqa: E402
from revsnn.conversion.fused import FusedBatchNormNode, is_absorbed  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = (8, "M", 16, "M")


def small_vgg(num_classes=3, in_channels=3):
    """A factory for the --model tests (an 8×8 input keeps two pools valid)."""
    return examples.plain_vgg(CFG, num_classes, in_channels)


def _seq(T=4, B=2, C=3, H=8, seed=0):
    return torch.rand(T, B, C, H, H, generator=torch.Generator().manual_seed(seed))


def _sj_out(net, x):
    functional.reset_net(net)
    out = net(x)
    functional.reset_net(net)
    return out


def _grads(model, x):
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    out = model(x)
    functional.reset_net(model)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in model.named_parameters()}


def _assert_grads_close(a, b, **tol):
    out_a, gx_a, gp_a = a
    out_b, gx_b, gp_b = b
    torch.testing.assert_close(out_a, out_b, **tol)
    torch.testing.assert_close(gx_a, gx_b, **tol)
    assert gp_a.keys() == gp_b.keys()
    for name in gp_a:
        torch.testing.assert_close(gp_a[name], gp_b[name], **tol, msg=name)


# ----------------------------------------------------------------------------------------------
# LIF → LIF: the same node, so the same outputs and gradients

@pytest.mark.parametrize("sg, detach", [(surrogate.Sigmoid(alpha=4.0), False),
                                        (surrogate.ATan(alpha=2.0), True)])
def test_spikingjelly_vgg_to_bptt_equals_the_original(sg, detach):
    torch.manual_seed(0)
    net = examples.spikingjelly_vgg(CFG, 3, node=lambda: neuron.LIFNode(
        tau=3.0, surrogate_function=sg, detach_reset=detach, v_reset=None))
    functional.set_step_mode(net, "m")
    conv, report = convert(net, "bptt", strict=True)
    assert [type(m).__name__ for m, _ in find_nodes(conv).values()] == ["LIF", "LIF"]
    lif = next(iter(find_nodes(conv).values()))[0]
    assert (lif.params.tau, lif.params.v_reset, lif.params.detach_reset) == (3.0, None, detach)
    assert type(lif.params.surrogate).__name__ == type(sg).__name__
    assert lif.params.surrogate.alpha == sg.alpha
    x = _seq()
    torch.testing.assert_close(conv(x), _sj_out(net, x), rtol=0, atol=0)
    _assert_grads_close(_grads(conv, x), _grads(net, x), rtol=1e-5, atol=1e-6)


def test_spikingjelly_if_and_parametric_lif_carry_over():
    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(6, 6), neuron.IFNode(v_reset=None),
                        layer.Linear(6, 4), neuron.ParametricLIFNode(init_tau=3.0))
    functional.set_step_mode(net, "m")
    conv, report = convert(net, "bptt", strict=True)
    assert [type(m).__name__ for m, _ in find_nodes(conv).values()] == ["IF", "LIF"]
    plif = report.nodes[1]
    assert any("learnable τ" in c and "τ = 3" in c for c in plif.changes), plif.changes
    x = torch.rand(5, 2, 6)
    torch.testing.assert_close(conv(x), _sj_out(net, x), rtol=1e-6, atol=1e-6)
    assert "1.w" not in conv.state_dict() and "3.w" in net.state_dict()


# ----------------------------------------------------------------------------------------------
# Fusion: found through forward code, same values as the unfused network, gradients = autograd

@pytest.mark.parametrize("factory", [examples.plain_vgg, examples.spikingjelly_vgg])
def test_vgg_fuses_every_chain_and_matches_autograd(factory):
    torch.manual_seed(0)
    net = factory(CFG, 3)
    fused, report = convert(net, "fused", strict=True)
    assert report.traced
    assert len(report.fused) == 2 == len(report.nodes)
    assert all(isinstance(m, FusedBatchNormNode) for m, _ in
               [(m, None) for n, m in fused.named_modules() if n in {r.path for r in report.nodes}])
    ref, _ = convert(net, "autograd", strict=True)       # the same node under plain autograd
    x = _seq()
    _assert_grads_close(_grads(fused, x), _grads(ref, x), rtol=1e-4, atol=1e-5)
    # the absorbed BatchNorms updated their running statistics exactly as the plain ones
    for (name, a), b in zip(fused.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_fused_bn_input_is_not_stored():
    from revsnn.analysis.measure import saved_tensor_bytes

    torch.manual_seed(0)
    net = examples.plain_vgg(CFG, 3)
    x = _seq().requires_grad_(False)
    nobn, _ = convert(net, "fused_nobn")
    fused, _ = convert(net, "fused")
    saved = {name: saved_tensor_bytes(m, x, params=list(m.parameters()))[1].own
             for name, m in (("nobn", nobn), ("fused", fused))}
    # each fused chain keeps a residual code of at most one byte per value instead of its fp32
    # BN input (T·B = 8 samples of 8×8×8 and 16×4×4 values)
    bn_inputs = 4 * 2 * 4 * (8 * 8 * 8 + 16 * 4 * 4)
    assert saved["nobn"] - saved["fused"] >= 3 * bn_inputs // 4, saved


def test_sew_residual_block_fused_matches_autograd():
    torch.manual_seed(0)
    net = examples.sew_resnet(num_classes=3, width=4, blocks=2)
    fused, report = convert(net, "fused", strict=True)
    assert {r.path: r.fused_bn for r in report.nodes} == {
        "1": "0.1", "2.sn1": "2.conv1.1", "2.sn2": "2.conv2.1",
        "3.sn1": "3.conv1.1", "3.sn2": "3.conv2.1"}
    ref, _ = convert(net, "autograd", strict=True)
    x = _seq(C=3)
    _assert_grads_close(_grads(fused, x), _grads(ref, x), rtol=1e-4, atol=1e-5)
    sj, _ = convert(net, "bptt", strict=True)                # LIF → LIF: equal to SpikingJelly
    torch.testing.assert_close(sj(x), _sj_out(net, x), rtol=0, atol=0)


def test_bn_used_twice_is_not_fused_and_the_report_says_why():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = layer.SeqToANNContainer(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
            self.sn = neuron.LIFNode(step_mode="m")

        def forward(self, x):
            z = self.conv(x)
            return self.sn(z) + z

    net = Twice()
    fused, report = convert(net, "fused")
    (rec,) = report.nodes
    assert rec.action == "converted" and rec.fused_bn == ""
    assert "used elsewhere" in rec.reason
    x = _seq()
    ref, _ = convert(net, "autograd")
    torch.testing.assert_close(fused(x), ref(x))


def test_untraceable_forward_falls_back_to_sequential_order():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(layer.Conv2d(3, 4, 3, padding=1, bias=False),
                                      layer.BatchNorm2d(4), neuron.LIFNode())
            functional.set_step_mode(self, "m")

        def forward(self, x):
            x = x if bool(x.sum() > 0) else -x                  # torch.fx cannot trace this
            return self.body(x)

    net = DataDependent()
    fused, report = convert(net, "fused", strict=True)
    assert not report.traced
    assert any("could not be traced" in n for n in report.notes)
    assert report.nodes[0].fused_bn == "body.1"
    ref, _ = convert(net, "autograd")
    x = _seq()
    torch.testing.assert_close(fused(x), ref(x))


# ----------------------------------------------------------------------------------------------
# What is left alone, and why; strict

class MyNeuron(nn.Module):
    """A user's own neuron: its dynamics cannot be read."""

    def forward(self, x):
        return (x > 0.5).float()


def _with_unconvertible():
    net = nn.Sequential(layer.Conv2d(3, 4, 3, padding=1), layer.BatchNorm2d(4), neuron.LIFNode(),
                        layer.Conv2d(4, 4, 3, padding=1), MyNeuron(),
                        layer.Conv2d(4, 3, 3, padding=1), layer.BatchNorm2d(3),
                        neuron.LIFNode(),                       # 3 channels: odd
                        layer.Conv2d(3, 4, 1), neuron.QIFNode(), nn.ReLU())
    functional.set_step_mode(net, "m")
    return net


def test_unconvertible_nodes_are_reported_never_silently_kept():
    net = _with_unconvertible()
    conv, report = convert(net, "fused")
    by_path = {r.path: r for r in report.nodes}
    assert set(by_path) == {"2", "4", "7", "9"}
    assert by_path["2"].action == "converted" and by_path["2"].fused_bn == "1"
    assert by_path["4"].action == "left alone" and "looks like a spiking node" in by_path["4"].reason
    assert by_path["7"].action == "left alone" and "odd channel count (3)" in by_path["7"].reason
    assert by_path["9"].action == "left alone" and "QIFNode" in by_path["9"].reason
    assert isinstance(conv[7], neuron.LIFNode) and isinstance(conv[9], neuron.QIFNode)
    text = str(report)
    assert "LEFT ALONE" in text and "1 of 4 nodes converted" in text
    with pytest.raises(ConversionError, match="odd channel count"):
        convert(net, "fused", strict=True)
    # the standard LIF takes any channel count: only the two unknown nodes stay
    _, report = convert(net, "bptt")
    assert [r.path for r in report.left_alone] == ["4", "9"]


def test_in_place_op_after_a_node_keeps_it_from_a_reconstructing_node():
    net = nn.Sequential(layer.Conv2d(3, 4, 3, padding=1), layer.BatchNorm2d(4), neuron.LIFNode(),
                        nn.ReLU(inplace=True))
    functional.set_step_mode(net, "m")
    _, report = convert(net, "fused")
    assert report.nodes[0].action == "left alone"
    assert "inplace=True" in report.nodes[0].reason
    _, report = convert(net, "bptt", strict=True)           # autograd keeps its own copies


def test_single_step_nodes_are_left_alone_with_the_fix():
    net = nn.Sequential(nn.Linear(4, 4), neuron.LIFNode(step_mode="s"))
    _, report = convert(net, "bptt")
    assert "set_step_mode(net, 'm')" in report.nodes[0].reason


def test_strict_with_no_node_and_refused_strategies():
    with pytest.raises(ConversionError, match="no spiking node"):
        convert(nn.Linear(3, 3), "fused", strict=True)
    for mode, word in (("blocks", "reversible blocks"), ("spikingjelly_memopt", "optimize_memory")):
        with pytest.raises(ValueError, match=word):
            convert(nn.Linear(3, 3), mode)
    with pytest.raises(ValueError, match="unknown node hyperparameters"):
        convert(nn.Linear(3, 3), "fused", leak=0.5)


def test_caller_hyperparameters_win_and_are_reported():
    net = examples.plain_vgg(CFG, 3)
    conv, report = convert(net, "fused", coupling=0.25, v_threshold=0.5)
    node = next(iter(find_nodes(conv).values()))[0].node
    assert isinstance(node, ReversibleLIF) and (node.coupling, node.v_threshold) == (0.25, 0.5)
    assert "coupling=0.25 set by the caller" in report.nodes[0].changes
    assert any("always soft-resets" in c for c in report.nodes[0].changes)


@pytest.fixture
def binary_autograd():
    """The exact binary node under plain autograd, no units: the reference for the units."""
    from revsnn import strategy

    strategy.register(strategy.Preset("binary_autograd_ref", strategy.Strategy(
        node="binary", backward="autograd"), "binary (autograd reference)", "#000000"))
    yield "binary_autograd_ref"
    strategy.unregister("binary_autograd_ref")


@pytest.mark.parametrize("factory, units", [
    (examples.plain_vgg, {"sns.0": "convs.0 → bns.0", "sns.1": "convs.1 → bns.1"}),
    (examples.spikingjelly_vgg, {"0.2": "0.0 → 0.1", "0.6": "0.3 → 0.4 → 0.5"})])
def test_binary_units_recompute_the_chain_and_match_autograd(factory, units, binary_autograd):
    torch.manual_seed(0)
    net = factory(CFG, 3)
    unit, report = convert(net, "binary", strict=True)
    # the SpikingJelly VGG's pool is a module (0.3), folded into the unit; F.max_pool2d is not
    assert {r.path: r.target.rpartition("recomputing ")[2] for r in report.nodes} == units
    ref, _ = convert(net, binary_autograd, strict=True)
    x = _seq()
    _assert_grads_close(_grads(unit, x), _grads(ref, x), rtol=1e-5, atol=1e-6)
    assert list(unit.state_dict()) == list(net.state_dict())
    for (name, a), b in zip(unit.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)          # BN statistics counted once
    back, _ = convert(unit, "bptt", strict=True)             # units undone
    assert not any(is_absorbed(m) for m in back.modules())


def test_binary_units_store_packed_spikes_not_inputs():
    from revsnn.analysis.measure import saved_tensor_bytes

    torch.manual_seed(0)
    net = examples.spikingjelly_vgg(CFG, 3)
    x = (torch.rand(4, 2, 3, 8, 8) > 0.5).float()
    unit, _ = convert(net, "binary")
    plain, _ = convert(net, "bptt")
    own = {n: saved_tensor_bytes(m, x, params=list(m.parameters()))[1].own
           for n, m in (("unit", unit), ("plain", plain))}
    functional.reset_net(net)
    assert own["unit"] * 4 < own["plain"], own


def test_binary_node_takes_integer_tau_only():
    _, report = convert(examples.plain_vgg(CFG, 3, node=lambda: LIF(tau=1.5)), "binary")
    assert report.left_alone and all("not an integer" in r.reason for r in report.left_alone)


def test_example_input_gives_channel_counts():
    net = nn.Sequential(layer.Linear(4, 5), neuron.LIFNode())
    functional.set_step_mode(net, "m")
    _, report = convert(net, "fused")
    assert report.nodes[0].action == "converted"
    assert any("channel count not known" in c for c in report.nodes[0].changes)
    _, report = convert(net, "fused", example=torch.rand(2, 2, 4))
    assert "odd channel count (5)" in report.nodes[0].reason


# ----------------------------------------------------------------------------------------------
# State dicts both ways, the way back, converting again

@pytest.mark.parametrize("factory", [examples.plain_vgg, examples.spikingjelly_vgg])
def test_state_dicts_load_both_ways(factory):
    torch.manual_seed(0)
    net = factory(CFG, 3)
    fused, _ = convert(net, "fused")
    assert list(fused.state_dict()) == list(net.state_dict())
    torch.manual_seed(1)
    other = factory(CFG, 3)
    other.load_state_dict(fused.state_dict())                   # converted → original
    fused2, _ = convert(factory(CFG, 3), "fused")
    fused2.load_state_dict(net.state_dict())                    # original → converted
    x = _seq()
    torch.testing.assert_close(fused2(x), fused(x))
    back, report = to_spikingjelly(fused)
    assert all(type(m).__name__ == "LIFNode" for m, _ in find_nodes(back).values())
    assert not any(is_absorbed(m) for m in back.modules())
    net.load_state_dict(back.state_dict())
    assert all(m.v_reset is None for m, _ in find_nodes(back).values())
    assert all(any("rotation leak" in c and "soft reset is kept" in c for c in r.changes)
               for r in report.nodes)


def test_converting_again_undoes_the_fusion():
    torch.manual_seed(0)
    net = examples.plain_vgg(CFG, 3)
    fused, _ = convert(net, "fused")
    again, report = convert(fused, "bptt", strict=True)
    assert not any(isinstance(m, FusedBatchNormNode) or is_absorbed(m) for m in again.modules())
    assert all(r.source == "revsnn FusedBatchNormNode" or r.source.startswith("revsnn")
               for r in report.nodes)
    # the reversible node soft-resets, and so does the LIF converted from it
    assert all(m.params.v_reset is None for m, _ in find_nodes(again).values())
    direct, _ = convert(net, "bptt", v_reset=None)
    x = _seq()
    torch.testing.assert_close(again(x), direct(x), rtol=0, atol=0)


def test_reverse_conversion_to_spikingjelly_equals_lif():
    torch.manual_seed(0)
    net = examples.plain_vgg(CFG, 3)                            # revsnn LIF nodes
    sj, _ = to_spikingjelly(net, strict=True)
    assert all(type(m) is neuron.LIFNode and m.step_mode == "m"
               for m, _ in find_nodes(sj).values())
    x = _seq()
    torch.testing.assert_close(_sj_out(sj, x), net(x), rtol=0, atol=0)
    wrapped, _ = to_spikingjelly(net, wrap=True)                # starts from rest each call
    torch.testing.assert_close(wrapped(x), wrapped(x), rtol=0, atol=0)


def test_original_is_untouched_unless_inplace():
    net = examples.plain_vgg(CFG, 3)
    before = copy.deepcopy(net.state_dict())
    convert(net, "fused")
    assert all(isinstance(m, LIF) for m in net.sns) and not any(is_absorbed(m) for m in net.bns)
    conv, _ = convert(net, "fused", inplace=True)
    assert conv is net and isinstance(net.sns[0], FusedBatchNormNode)
    for k, v in before.items():
        torch.testing.assert_close(net.state_dict()[k], v)


# ----------------------------------------------------------------------------------------------
# time-major: the network rebuilt as TemporalNetwork units

def _mean_grads(model, x):
    """Output averaged over time (the zoo's time-major networks return that), its input and
    parameter gradients, in parameter order."""
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    out = model(x)
    out = out.mean(0) if out.dim() == 3 else out
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), x.grad, [p.grad.clone() for p in model.parameters()]


def _assert_mean_grads_close(a, b, **tol):
    torch.testing.assert_close(a[0], b[0], **tol)
    torch.testing.assert_close(a[1], b[1], **tol)
    assert len(a[2]) == len(b[2])
    for k, (ga, gb) in enumerate(zip(a[2], b[2])):
        torch.testing.assert_close(ga, gb, **tol, msg=f"parameter {k}")


@pytest.mark.parametrize("factory", [examples.plain_vgg, examples.spikingjelly_vgg])
def test_vgg_to_temporal_is_the_zoos_time_major_vgg(factory):
    from revsnn.conversion.temporal import ConvertedTemporalNetwork
    from revsnn.temporal import temporal_vgg

    torch.manual_seed(0)
    net = factory(CFG, 3)
    tm, report = convert(net, "temporal", T=3, strict=True)
    assert isinstance(tm, ConvertedTemporalNetwork) and len(tm.units) == 2
    assert [r.fused_bn for r in report.nodes] == [c for c in ("bns.0", "bns.1", "0.1", "0.5")
                                                  if c in net.state_dict() or
                                                  f"{c}.weight" in net.state_dict()]
    assert all(any("per-timestep BatchNorm" in c for c in r.changes) for r in report.nodes)
    assert "2 of 2 nodes converted, 2 BatchNorms made per-timestep" in report.summary()
    assert any("soft reset" in c for c in report.nodes[0].changes)
    assert "pool" in report.nodes[1].target or "0.3" in report.nodes[1].target
    # the zoo's time-major VGG with the same weights, taken by position from the engine's names
    zoo = temporal_vgg(CFG, in_channels=3, num_classes=3, T=3)
    sd = tm.state_dict()
    assert list(zoo.state_dict()) != list(sd) and len(zoo.state_dict()) == len(tm.state_names)
    zoo.load_state_dict({z: sd[tm.state_names[e]] for z, e in zip(zoo.state_dict(),
                                                                   tm.state_names)})
    x = _seq(T=3)
    assert tm(x).shape == (3, 2, 3)                            # the user's [T, B, K]
    _assert_mean_grads_close(_mean_grads(tm, x), _mean_grads(zoo, x), rtol=0, atol=0)
    ref, _ = convert(net, "temporal", T=3, backward="autograd")
    _assert_mean_grads_close(_mean_grads(tm, x), _mean_grads(ref, x), rtol=1e-5, atol=1e-5)
    # a static batch is presented at every step, as the zoo's is
    img = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(tm(img).mean(0), zoo(img))


@pytest.mark.parametrize("factory", [examples.plain_vgg, examples.spikingjelly_vgg])
def test_temporal_state_dict_moves_across_and_back(factory):
    torch.manual_seed(0)
    net = factory(CFG, 3)
    tm, _ = convert(net, "temporal", T=2)
    assert list(tm.state_dict()) == list(net.state_dict())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(tm.state_dict()[k], v, msg=k)
    tm(_seq(T=2)).sum().backward()                              # statistics move, once
    assert int(tm.state_dict()[tm.state_names["units.0.synapse.bn.num_batches_tracked"]]) == 1
    torch.manual_seed(1)
    other = factory(CFG, 3)
    other.load_state_dict(tm.state_dict())                      # converted → original
    tm2, _ = convert(factory(CFG, 3), "temporal", T=2)
    tm2.load_state_dict(other.state_dict())                     # original → converted
    x = _seq(T=2)
    torch.testing.assert_close(tm2(x), tm(x))
    back, report = to_spikingjelly(tm)                          # the way back
    assert list(back.state_dict()) == list(net.state_dict())
    for k, v in back.state_dict().items():
        torch.testing.assert_close(v, tm.state_dict()[k], msg=k)
    assert all(type(m) is neuron.LIFNode and m.v_reset is None
               for m, _ in find_nodes(back).values())
    assert _sj_out(back, x).shape == (2, 2, 3)
    assert any("T·B BatchNorm again" in n for n in report.notes)


class SpikingResNet(nn.Module):
    """A spiking-ResNet block (the shortcut added before the node) and a SEW ADD connection
    (two nodes' spikes added before the next conv), SpikingJelly layers."""

    def __init__(self, c=4):
        super().__init__()

        def conv_bn(i, o):
            return layer.SeqToANNContainer(nn.Conv2d(i, o, 3, padding=1, bias=False),
                                           nn.BatchNorm2d(o))
        self.stem, self.sn0 = conv_bn(3, c), neuron.LIFNode(step_mode="m")
        self.c1, self.sn1 = conv_bn(c, c), neuron.LIFNode(step_mode="m")
        self.c2, self.sn2 = conv_bn(c, c), neuron.LIFNode(step_mode="m")
        self.c3, self.sn3 = conv_bn(c, c), neuron.LIFNode(step_mode="m")
        self.head = layer.SeqToANNContainer(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 3))

    def forward(self, x):
        a = self.sn0(self.stem(x))
        b = self.sn2(self.c2(self.sn1(self.c1(a))) + a)
        return self.head(self.sn3(self.c3(b + a)))


def test_temporal_residual_units_match_autograd():
    from revsnn.temporal import Residual

    torch.manual_seed(0)
    net = SpikingResNet()
    tm, report = convert(net, "temporal", T=3, strict=True)
    assert [u.sources for u in tm.units] == [(-1,), (0,), (1, 0), (2, 0)]
    assert isinstance(tm.units[2].synapse, Residual) and "+ identity" in report.nodes[2].target
    ref, _ = convert(net, "temporal", T=3, backward="autograd")
    x = _seq(T=3)
    # unit 0's spikes reach three units; the SEW sum hands both summands one gradient tensor
    _assert_mean_grads_close(_mean_grads(tm, x), _mean_grads(ref, x), rtol=1e-5, atol=1e-5)


def test_sew_resnet_whose_head_reads_a_sum_is_refused_with_the_reason():
    net = examples.sew_resnet(width=4, blocks=1)
    for strict in (False, True):
        with pytest.raises(ConversionError, match="readout reads those only") as err:
            convert(net, "temporal", strict=strict)
    report = err.value.report
    assert report.patterns and report.patterns[0][0] == "head" and not report.complete
    assert "fused" in str(err.value)                            # the layer-major way out
    _, report = convert(net, "fused", strict=True)              # which converts it


class _Unit(nn.Module):
    """conv → [BN] → node on [T, B, C, H, W], a probe for the refused patterns."""

    def __init__(self, bn=True, groups=1, between=None, head_bn=False, bn_twice=False):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False, groups=groups)
        self.bn = nn.BatchNorm2d(4) if bn else nn.Identity()
        self.sn = neuron.LIFNode(step_mode="m")
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.sn2 = neuron.LIFNode(step_mode="m")
        self.between, self.bn_twice = between, bn_twice
        self.head_bn = nn.BatchNorm1d(4) if head_bn else nn.Identity()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        T, B = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1)))
        s = self.sn(y.unflatten(0, (T, B))).flatten(0, 1)
        if self.between is not None:
            s = self.between(s)
        s = self.sn2(self.bn2(self.conv2(s)).unflatten(0, (T, B)))
        out = self.fc(self.head_bn(s.flatten(0, 1).mean((2, 3)))).unflatten(0, (T, B))
        return out + y.mean() if self.bn_twice else out


@pytest.mark.parametrize("kw, where, words", [
    (dict(bn=False), "sn", "without BatchNorm is not a unit"),
    (dict(groups=2), "sn", "grouped conv"),
    (dict(between=nn.ReLU()), "sn2", "ReLU"),
    (dict(head_bn=True), "head", "BatchNorm in the head"),
    (dict(bn_twice=True), "sn", "used 2 times")])
def test_unexpressible_patterns_are_refused_by_name(kw, where, words):
    torch.manual_seed(0)
    net = _Unit(**kw)
    assert _sj_out(net, torch.rand(2, 2, 4, 6, 6)).shape == (2, 2, 3)   # the network runs
    with pytest.raises(ConversionError, match="no time-major network can be built") as err:
        convert(net, "temporal")
    report = err.value.report
    reasons = {r.path: r.reason for r in report.left_alone} | dict(report.patterns)
    assert where in reasons and words in reasons[where], str(report)
    with pytest.raises(ConversionError, match=words):
        convert(net, "temporal", strict=True)
    _, ok = convert(_Unit(), "temporal", strict=True)           # the probe itself converts
    assert ok.complete


def test_temporal_network_keywords_and_what_cannot_be_built():
    net = examples.plain_vgg(CFG, 3)
    tm, _ = convert(net, "temporal", T=5, chunk_bytes=None, tau=3)
    assert tm.T == 5 and tm.chunk_bytes is None and tm.units[0].node.params().tau == 3
    with pytest.raises(ValueError, match="unknown node hyperparameters"):
        convert(net, "fused", T=5)                              # a network keyword: time-major only
    with pytest.raises(ConversionError, match="no spiking node"):
        convert(nn.Linear(3, 3), "temporal")
    with pytest.raises(ValueError, match="no layer-major original"):
        to_spikingjelly(revsnn.models.build("vgg11", "temporal"))


# ----------------------------------------------------------------------------------------------
# module:factory strings, the zoo's interface, the commands

def test_load_factory_names_what_is_wrong(tmp_path):
    assert load_factory("revsnn.conversion.examples:plain_vgg11") is examples.plain_vgg11
    for spec, word in (("vgg11", "expected"), ("revsnn.nope:f", "cannot import"),
                       ("revsnn.conversion.examples:nope", "has no 'nope'"),
                       ("revsnn.conversion.examples:VGG11", "not a callable"),
                       (f"{tmp_path}/missing.py:f", "no file")):
        with pytest.raises(ValueError, match=word):
            load_factory(spec)
    f = tmp_path / "mine.py"
    f.write_text("from torch import nn\ndef make(num_classes):\n    return nn.Linear(4, num_classes)\n")
    assert load_factory(f"{f}:make")(num_classes=2).out_features == 2


def test_user_network_has_the_zoo_interface_and_equal_weights_per_mode():
    spec = f"{__file__}:small_vgg"
    a = user_network(spec, "bptt", num_classes=3, T=4, seed=0)
    b = user_network(spec, "fused", num_classes=3, T=4, seed=0)
    assert a.report.complete and len(b.report.fused) == 2 and len(b.nodes()) == 2
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)
    img = torch.rand(2, 3, 8, 8)
    assert a(img).shape == (2, 3)
    assert user_modes("network", ["fused", "bptt"]) == ["fused", "bptt"]
    with pytest.raises(ValueError, match="node strategies and the time-major one only"):
        user_modes("network", ["spikingjelly_memopt"])
    assert {"temporal", "spikingjelly"} <= set(user_modes("network"))
    assert "temporal" in user_modes("budget") and user_modes("train", ["temporal"])


def test_bench_network_measures_a_user_model_like_the_zoo(capsys):
    from revsnn.bench.network import measure_network

    common = dict(T=2, batch=2, image_size=8, num_classes=3, repeats=1, warmup=0,
                  track_memory=False)
    user = measure_network(f"{__file__}:small_vgg", ["spikingjelly", "bptt", "fused", "temporal"],
                           **common)
    zoo = measure_network("convnet", ["spikingjelly", "bptt", "fused"], in_channels=3, **common)
    assert [r["status"] for r in user] == ["ok"] * 4, [r.get("error") for r in user]
    assert [r["arch"] for r in user] == [f"{__file__}:small_vgg"] * 4
    assert user[3]["predicted_act_peak_bytes"] > 0          # the time-major model's prediction
    # the same layers as the zoo's 8-16 convnet minus its head: saved bytes ordered alike
    u = {r["mode"]: r["saved_bytes"] for r in user}
    assert u["fused"] < u["bptt"] == u["spikingjelly"]
    assert zoo[2]["saved_bytes"] < zoo[1]["saved_bytes"]


def test_cli_model_option(capsys):
    from revsnn.cli import main

    spec = f"{__file__}:small_vgg"
    assert main(["bench", "network", "--model", spec, "--T", "2", "--batch", "2",
                 "--image-size", "8", "--modes", "bptt", "fused", "--repeats", "1",
                 "--warmup", "0", "--no-track-memory"]) == 0
    out = capsys.readouterr().out
    assert spec in out and "ReversibleLIF (fused)" in out
    assert f"convert {spec} -> fused: 2 of 2 nodes converted, 2 BatchNorms fused" in out
    from revsnn.cli.options import conversion_lines

    lines = conversion_lines("revsnn.conversion.examples:sew_resnet", ["temporal", "fused"])
    assert "(not built: its rows are errors)" in lines[0]                 # named, not a crash
    assert any("head: left alone" in line and "readout" in line for line in lines)
    assert any(line.startswith("convert") and "fused: 5 of 5" in line for line in lines)
    assert main(["bench", "network", "--model", "nope.mod:f"]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["bench", "budget", "--model", spec, "--modes", "blocks"]) == 2
    assert "node strategies and the time-major one only" in capsys.readouterr().err


def test_train_accepts_a_user_model(tmp_path):
    from revsnn.training import TrainConfig, train

    cfg = TrainConfig(data="digits", arch=f"{__file__}:small_vgg", mode="fused", T=2, batch=16,
                      epochs=1, limit_train=64, limit_test=32, device="cpu", quiet=True)
    result = train(cfg)
    assert 0.0 <= result.final["test_acc"] <= 1.0
    assert result.model.report.complete and len(result.model.report.fused) == 2


def test_top_level_convert_is_the_function():
    assert revsnn.convert is convert
