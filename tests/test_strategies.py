"""The strategy registry: one list of presets that every command, build() and the dashboard take
their names from; each preset offered by a command runs there (registry × commands on a tiny
configuration, failing on any error row or traceback), and the others are refused at parse time."""

import json

import pandas as pd
import pytest
import torch
from torch import nn

from revsnn import MemoryMode, strategy
from revsnn.cli import main
from revsnn.models import MODELS, build

pytestmark = pytest.mark.usefixtures("one_thread")


# -- the registry ---------------------------------------------------------------------------------

def test_every_preset_builds_zoo_architectures_and_every_architecture_has_presets():
    for p in strategy.presets():
        assert p.archs and set(p.archs) <= set(MODELS), p.name
        assert p.commands <= set(strategy.COMMANDS) and p.default_for <= p.commands
        assert p.label and p.colour.startswith("#")
    for arch in MODELS:
        assert strategy.names(arch=arch), arch
    labels = [p.label for p in strategy.presets()]
    assert len(set(labels)) == len(labels)                  # one label per preset


def test_memory_mode_names_are_presets():
    for mode in MemoryMode:
        assert strategy.get(mode) is strategy.get(mode.value) is strategy.get(mode.name)
        assert mode.label == strategy.get(mode).label
    assert strategy.get("SJ").name == "spikingjelly" and strategy.get("memopt").name == \
        "spikingjelly_memopt"


def test_parse_refuses_what_is_not_offered_and_lists_what_is():
    with pytest.raises(ValueError, match="unknown memory mode 'magic'; choose from spikingjelly"):
        strategy.get("magic")
    with pytest.raises(ValueError, match="'blocks' is not offered by nodes.*bptt"):
        strategy.parse("blocks", command="nodes")
    with pytest.raises(ValueError, match=r"'binary' does not build 'resnet18' \(it builds vgg11"):
        strategy.parse("binary", arch="resnet18")
    with pytest.raises(ValueError, match="unknown memory mode 'nope'.*'fused' does not build"):
        strategy.parse_many(["bptt,nope", "fused"], arch="revresnet_s")
    assert [p.name for p in strategy.parse_many(["fused,bptt", "FUSED"])] == ["fused", "bptt"]


def test_strategy_records_refuse_meaningless_combinations():
    assert strategy.Strategy().schedule == "layer"
    assert strategy.Strategy(node="binary", backward="fused", reconstruct="replay")
    for bad in (dict(node="lif", backward="fused"), dict(node="reversible", backward="fused"),
                dict(backward="autograd", reconstruct="reverse"), dict(fuse_bn=True),
                dict(node="binary", backward="revnet", reconstruct="reverse"),
                dict(checkpoint=True, baseline="spikingjelly"), dict(schedule="sideways")):
        with pytest.raises(ValueError, match="Strategy"):
            strategy.Strategy(**bad)


@pytest.fixture
def custom_preset():
    """A preset registered the way a new strategy would be: its own builder and node builder."""
    calls = []

    def builder(arch, preset, **kw):
        calls.append((arch, preset.name, kw["T"]))
        return build(arch, "bptt", T=kw["T"], num_classes=kw["num_classes"],
                     in_channels=kw["in_channels"])

    def node_builder(preset, **kw):
        return strategy.make_node("bptt", **kw)

    preset = strategy.register(strategy.Preset(
        "custom_test", strategy.Strategy(schedule="temporal"), "Custom test preset", "#123456",
        families=("convnet",), commands={"nodes", "network"}, builder=builder,
        node_builder=node_builder))
    yield preset, calls
    strategy.unregister("custom_test")


def test_a_registered_preset_is_offered_and_built_by_its_own_builder(custom_preset, tmp_path):
    preset, calls = custom_preset
    assert "custom_test" in strategy.names(command="network", arch="convnet")
    assert "custom_test" not in strategy.names(command="train")
    net = build("convnet", "custom_test", T=3)
    assert calls == [("convnet", "custom_test", 3)] and net.T == 3
    with pytest.raises(ValueError, match="already names a preset"):
        strategy.register(preset)
    out = tmp_path / "n.csv"
    assert main(["bench", "network", "--arch", "convnet", "--T", "2", "--batch", "2",
                 "--image-size", "8", "--modes", "custom_test", "--repeats", "1", "--warmup", "0",
                 "--no-track-memory", "--out", str(out), "--quiet"]) == 0
    row = pd.read_csv(out).iloc[0]
    assert row["status"] == "ok" and row["label"] == "Custom test preset"


# -- registry × commands ----------------------------------------------------------------------------

NETWORK_ARCHS = ("convnet", "vgg11", "revresnet_s")
"""One architecture per builder path: the zoo's conv stack, binary units on VGG (pools folded into
the units' synapses, down to 8×8 inputs), reversible stacks."""


def _presets(command):
    return [p for p in strategy.presets(command=command) if p.available()[0]]


def _rows_ok(path):
    df = pd.read_csv(path)
    bad = df[df["status"] != "ok"]
    assert bad.empty, bad[["mode", "arch", "status", "error"]].to_string()
    return df


def test_every_node_preset_runs_in_bench_nodes(tmp_path):
    names = [p.name for p in _presets("nodes")]
    out = tmp_path / "nodes.csv"
    assert main(["bench", "nodes", "--T", "2", "--batch", "2", "--neurons", "8", "--repeats", "1",
                 "--warmup", "0", "--modes", *names, "--out", str(out), "--quiet"]) == 0
    assert list(_rows_ok(out)["mode"]) == names


@pytest.mark.parametrize("arch", NETWORK_ARCHS)
def test_every_network_preset_runs_in_bench_network(arch, tmp_path):
    names = [p.name for p in _presets("network") if p.supports(arch)]
    out = tmp_path / "net.csv"
    assert main(["bench", "network", "--arch", arch, "--T", "2", "--batch", "2",
                 "--image-size", "8", "--repeats", "1", "--warmup", "0", "--modes", *names,
                 "--out", str(out), "--quiet"]) == 0
    df = _rows_ok(out)
    assert list(df["mode"]) == names
    model = df[df["predicted_saved_bytes"].notna()]     # the analytic model: exact where it runs
    assert (model["predicted_saved_bytes"] == model["saved_bytes"]).all()
    own_builder = {p.name for p in strategy.presets() if p.builder is not None}
    assert set(df["mode"]) - set(model["mode"]) <= {"spikingjelly_memopt"} | own_builder


@pytest.mark.parametrize("arch, budget", [("convnet", "3MiB"), ("revresnet_s", "8MiB")])
def test_every_budget_preset_runs_in_bench_budget(arch, budget, tmp_path):
    names = [p.name for p in _presets("budget") if p.supports(arch)]
    out = tmp_path / "budget.csv"
    assert main(["bench", "budget", "--arch", arch, "--image-size", "8", "--budget", budget,
                 "--T", "2", "--search", "batch", "--modes", *names, "--out", str(out),
                 "--quiet"]) == 0
    df = _rows_ok(out)
    assert list(df["mode"]) == names and (df["max_value"] >= 1).all()


@pytest.mark.parametrize("preset", [p.name for p in strategy.presets(command="train")])
def test_every_train_preset_trains(preset, tmp_path):
    p = strategy.get(preset)
    if not p.available()[0]:
        pytest.skip(p.available()[1])
    arch = "convnet" if p.supports("convnet") else p.archs[0]
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--arch", arch, "--mode", preset, "-T", "2",
                 "--batch", "32", "--epochs", "1", "--limit-train", "64", "--limit-test", "32",
                 "--device", "cpu", "--out-dir", str(out), "--quiet"]) == 0
    final = json.loads((out / "results.json").read_text())["final"]
    assert final["epoch"] == 1 and final["train_loss"] == final["train_loss"]    # not NaN


def test_the_registry_covers_every_command_it_offers():
    """The tests above cover every (preset, command) pair the registry offers."""
    covered = {(p.name, "nodes") for p in _presets("nodes")}
    covered |= {(p.name, "network") for p in _presets("network")
                if any(p.supports(a) for a in NETWORK_ARCHS)}
    covered |= {(p.name, "budget") for p in _presets("budget")
                if p.supports("convnet") or p.supports("revresnet_s")}
    covered |= {(p.name, "train") for p in _presets("train")}
    offered = {(p.name, c) for p in strategy.presets(available=True) for c in p.commands}
    assert offered == covered


# -- refused at parse time, not run ----------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["bench", "nodes", "--modes", "blocks"], "'blocks' is not offered by nodes"),
    (["bench", "network", "--arch", "vgg11", "--modes", "blocks"], "'blocks' does not build"),
    (["bench", "budget", "--arch", "vgg11", "--modes", "binary", "blocks"],
     "'blocks' does not build 'vgg11'"),
    (["bench", "budget", "--arch", "resnet18", "--modes", "binary"], "'binary' does not build"),
    (["train", "--mode", "blocks", "--arch", "convnet"], "'blocks' does not build 'convnet'"),
    (["train", "--mode", "spikingjelly_memopt"], "not offered by train"),
])
def test_unsupported_combinations_are_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "modes for" in err


def test_help_offers_only_what_runs(capsys):
    assert main(["bench", "nodes", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "fused" in text and "blocks" not in text and "memopt" not in text


def test_dashboard_options_come_from_the_registry():
    pytest.importorskip("streamlit")
    from dashboard import state
    nodes = state.mode_options("nodes")
    assert list(nodes.values()) == [p.name for p in _presets("nodes")]
    assert set(state.mode_options("budget", "revresnet_s").values()) == {
        p.name for p in _presets("budget") if p.supports("revresnet_s")}


# -- the bugs this registry fixed ------------------------------------------------------------------

def test_binary_networks_are_zoo_networks():
    """One code path: build(), the network benchmark and the memory model see the same binary
    network, and SpikingNet.nodes() finds its nodes."""
    from revsnn.bench.network import network_case
    from revsnn.layers.units import BinarySpikingUnit
    from revsnn.nodes.binary import BinaryReversibleLIF
    from revsnn.analysis.memory_model import predict_total
    from revsnn.analysis.measure import saved_tensor_bytes

    net = build("vgg11", "binary", T=2, seed=0)
    assert len(net.nodes()) == 8 and all(isinstance(n, BinaryReversibleLIF) for n in net.nodes())
    assert all(isinstance(m, BinarySpikingUnit) for m in net.features)
    case = network_case("vgg11", "binary", T=2, batch=2, image_size=8)
    assert case.build().state_dict().keys() == net.state_dict().keys()
    x = torch.rand(2, 3, 8, 8)
    _, sb = saved_tensor_bytes(net, x, params=[*net.parameters(), *net.buffers()])
    assert predict_total("vgg11", "binary", T=2, batch=2, image_size=8) == sb.own


def test_binary_units_train_like_the_standalone_nodes():
    """The units recompute their synapse; their gradients equal those of the same layers with
    standalone binary nodes (which keep their input), bit for bit."""
    from revsnn.nodes.binary import BinaryReversibleLIF
    from revsnn.models import ConvBNNode, SeqMaxPool, SpikingNet, NodeSpec, Readout

    units = build("convnet", "binary", T=2, seed=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        plain = SpikingNet(nn.Sequential(ConvBNNode(1, 32, BinaryReversibleLIF()), SeqMaxPool(2),
                                         ConvBNNode(32, 64, BinaryReversibleLIF()), SeqMaxPool(2)),
                           Readout(64, 10, pool_size=2), NodeSpec("binary"), T=2)
    x = torch.rand(4, 1, 8, 8)
    grads = []
    for net in (units, plain):
        net(x).pow(2).sum().backward()
        grads.append([p.grad for p in net.parameters()])
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_bench_beyond_runs_the_binary_vgg_on_small_images():
    from revsnn.bench.beyond import run_beyond
    rows = run_beyond("vgg11", cases=["binary", "binary_replay"], T=2, batch=2, size=8,
                      repeats=1, warmup=0, track_memory=False, quiet=True)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert [r["bits_per_neuron_step"] for r in rows] == [2.0, 1.0]
