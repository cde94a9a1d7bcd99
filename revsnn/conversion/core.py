""":func:`convert`: any network's spiking nodes replaced by a strategy's, with a report of everything
it did and did not do; :func:`to_spikingjelly`: the way back.

>>> import torch
>>> from torch import nn
>>> from revsnn import LIF
>>> from revsnn.layers.containers import SeqToANN
>>> net = nn.Sequential(SeqToANN(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)),
...                     LIF(), SeqToANN(nn.Flatten(), nn.Linear(4 * 6 * 6, 3)))
>>> fused, report = convert(net, "fused")
>>> [(r.path, r.action, r.fused_bn) for r in report.nodes]
[('1', 'converted', '0.module.1')]
>>> x = torch.rand(4, 2, 2, 6, 6)
>>> fused(x).shape
torch.Size([4, 2, 3])
>>> sorted(fused.state_dict()) == sorted(net.state_dict())     # every weight where it was
True
"""

from __future__ import annotations

import copy
import torch
from torch import nn

from .. import strategy as _strategy
from ..nodes.binary import BinaryReversibleLIF
from ..nodes.lif import IF, LIF, Checkpointed
from ..nodes.reversible import ReversibleLIF
from .fused import BinaryUnitNode, FusedBatchNormNode, is_absorbed, release
from .graph import analyse
from .temporal import NETWORK_KEYWORDS, Refused, convert_temporal
from .nodes import classify, refusal, source_hyperparameters, target_node
from .report import ConversionReport, NodeRecord

__all__ = ["convert", "to_spikingjelly", "ConversionReport", "NodeRecord", "ConversionError",
           "find_nodes"]


class ConversionError(ValueError):
    """``strict=True`` and a node was left alone, or a time-major network that cannot be built
    (the message lists every node and pattern and why); :attr:`report` is the report."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


# ----------------------------------------------------------------------------------------------

def find_nodes(model: nn.Module) -> dict:
    """Path → ``(module, NodeInfo)`` of every spiking node in ``model`` (not looking inside one),
    in registration order."""
    found: dict = {}

    def walk(prefix: str, m: nn.Module):
        info = classify(m)
        if info is not None:
            found[prefix] = (m, info)
            return
        for name, child in m.named_children():
            walk(f"{prefix}.{name}" if prefix else name, child)

    walk("", model)
    return found


def _unfuse(model: nn.Module) -> nn.Module:
    """Undo an earlier conversion's fusion: each :class:`FusedBatchNormNode` or
    :class:`BinaryUnitNode` becomes its node and its absorbed layers their own classes again, so
    that a converted model converts again."""
    if getattr(model, "_revsnn_fused_node", False):
        return model.node                                 # its absorbed layers: released below
    for name, child in list(model.named_children()):
        new = _unfuse(child)
        if new is not child:
            setattr(model, name, new)
    for m in model.modules():
        if is_absorbed(m):
            release(m)
    return model


def _set(model: nn.Module, path: str, new: nn.Module) -> nn.Module:
    if not path:
        return new
    parent_path, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, name, new)
    return model


def _input_shapes(model: nn.Module, nodes: dict, example) -> dict:
    """Path → the input shape each node sees on ``example`` (one no-grad pass in eval mode, so
    no running statistic moves; SpikingJelly's node states are reset after it)."""
    shapes, handles = {}, []
    def hook(path):
        def record(module, args):
            shapes.setdefault(path, tuple(args[0].shape))     # returns None: args unchanged
        return record

    for path, (m, _) in nodes.items():
        handles.append(m.register_forward_pre_hook(hook(path)))
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(example() if callable(example) else example)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
        for m, _ in nodes.values():
            if hasattr(m, "reset") and callable(m.reset):
                m.reset()
    return shapes


def _name(node: nn.Module) -> str:
    if isinstance(node, Checkpointed):
        return f"{_name(node.node)} (checkpoint)"
    if isinstance(node, (ReversibleLIF, BinaryReversibleLIF)):
        return f"{type(node).__name__} ({node.backward_algorithm})"
    if isinstance(node, (LIF, IF)):
        return f"revsnn {type(node).__name__}"
    return getattr(node, "kind", type(node).__name__)


def _check_preset(preset) -> None:
    strat = preset.strategy
    if strat.blocks != "plain":
        raise ValueError(f"convert: {preset.name!r} is a network-level strategy (reversible "
                         f"blocks of the zoo's revresnets); a network's nodes convert to the "
                         f"node strategies: {', '.join(_node_presets())}")
    if strat.baseline == "memopt":
        raise ValueError("convert: 'spikingjelly_memopt' checkpoints a network's blocks; convert "
                         "to 'spikingjelly' and pass the result to SpikingJelly's "
                         "memopt.optimize_memory with your block types")


def _node_presets() -> list:
    return [p.name for p in _strategy.presets() if p.strategy.blocks == "plain"
            and p.strategy.baseline != "memopt" and p.strategy.schedule == "layer"]


def _known_kwargs() -> set:
    return set().union(*(c.HYPERPARAMETERS for c in (LIF, ReversibleLIF, BinaryReversibleLIF)))


def convert(model: nn.Module, strategy="fused", *, strict: bool = False, example=None,
            inplace: bool = False, **node_kwargs) -> tuple:
    """``(converted model, report)``: every spiking node of ``model`` replaced by ``strategy``'s.

    Args:
        model: any ``nn.Module`` over time-first sequences ``[T, B, ...]`` (SpikingJelly's
            multi-step mode, or plain PyTorch layers applied to the folded ``[T·B, ...]`` batch).
        strategy: a preset of :mod:`revsnn.strategy` (name, alias, :class:`~revsnn.MemoryMode`).
            With ``fuse_bn`` presets (``fused``, ``revnet``) every ``conv/linear → BN → node``
            chain is fused (NOTE [what a fusable chain is] in :mod:`revsnn.conversion.graph`).
            The time-major ``temporal`` preset rebuilds the network as
            :class:`~revsnn.temporal.TemporalNetwork` units with per-timestep BatchNorm (NOTE
            [what the time-major engine can express] in :mod:`revsnn.conversion.temporal`); the
            network-level presets (``blocks``, ``spikingjelly_memopt``) are refused with what
            to do instead.
        strict: raise :class:`ConversionError` when any node is left alone (or none is found).
            A time-major network has no place for a layer left alone, so ``temporal`` raises
            it whether strict or not, naming every refused pattern.
        example: an input (or a zero-argument callable returning one) to learn each node's
            channel count from (checked by the reversible node); without it the count comes from
            the BN before the node, or is checked when the network runs.
        inplace: convert ``model`` itself instead of a copy (``temporal`` builds a new network
            either way; with ``inplace`` it reuses the head's modules instead of copying them).
        node_kwargs: hyperparameters for every converted node (they win over the carried ones);
            with ``temporal`` also the network's ``T`` (steps of a static input), ``encoder``,
            ``seed``, ``backward`` (``"autograd"``: the reference), ``chunk_bytes`` and
            ``grad_chunk_bytes`` (:class:`~revsnn.temporal.TemporalNetwork`).

    Every weight and buffer stays under its name, so a state dict moves between the original and
    the converted network in both directions (a ParametricLIFNode's learnable ``w`` is frozen into
    τ and dropped: the report says so). The report lists every node: converted (with the BN fused
    into it, and every hyperparameter that changed meaning) or left alone, with the reason.
    """
    preset = _strategy.get(strategy)
    _check_preset(preset)
    temporal = preset.strategy.schedule == "temporal"
    known = _known_kwargs() | (NETWORK_KEYWORDS if temporal else set())
    unknown = set(node_kwargs) - known
    if unknown:
        raise ValueError(f"convert: unknown node hyperparameters {sorted(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    if temporal:
        return _convert_temporal(model, preset, inplace=inplace, node_kwargs=node_kwargs)
    return _convert(model, preset, strict=strict, example=example, inplace=inplace,
                    node_kwargs=node_kwargs)


def _convert(model, preset, *, strict, example, inplace, node_kwargs, raw_spikingjelly=False):
    strat = preset.strategy
    model = model if inplace else copy.deepcopy(model)
    model = _unfuse(model)
    nodes = find_nodes(model)
    report = ConversionReport(strategy=preset.name)
    if not nodes:
        report.notes.append("no spiking node found (SpikingJelly's and revsnn's nodes are "
                            "recognised, and modules of other spiking libraries are named)")
    flow = analyse(model, {p: m for p, (m, _) in nodes.items()})
    report.traced = flow.traced
    if not flow.traced and nodes:
        report.notes.append(f"the forward code could not be traced with torch.fx "
                            f"({flow.trace_error}); BatchNorm chains were read from the order "
                            f"of nn.Sequential containers only")
    shapes = _input_shapes(model, nodes, example) if example is not None and nodes else {}
    modules = dict(model.named_modules())
    reconstructs = strat.backward != "autograd" and not strat.uses_spikingjelly
    for path, (module, info) in nodes.items():
        rec = NodeRecord(path or "(the model)", info.source, "left alone")
        report.nodes.append(rec)
        why = refusal(module, info)
        if why is not None:
            rec.reason = why
            continue
        if reconstructs and path in flow.inplace:
            rec.reason = (f"{flow.inplace[path]}: a reconstructing node rebuilds its backward "
                          f"from its output, which must not change")
            continue
        hp, changes = source_hyperparameters(module, info)
        try:
            if raw_spikingjelly:
                from .nodes import from_reversible, spikingjelly_module
                node, more = spikingjelly_module(info.family, hp), from_reversible(hp)
            else:
                node, more = target_node(preset, info.family, hp, node_kwargs)
        except ValueError as exc:
            rec.reason = f"the {strat.node} node cannot take its hyperparameters: {exc}"
            continue
        chain = flow.chains.get(path)
        channels = shapes[path][2] if len(shapes.get(path, ())) >= 3 else None
        if channels is None and chain is not None:
            channels = getattr(modules.get(chain[0]), "num_features", None)
        if isinstance(node, ReversibleLIF):
            if channels is not None and channels % 2:
                rec.reason = (f"odd channel count ({channels}): the reversible node splits the "
                              f"channels into two halves")
                continue
            if channels is None:
                more.append("channel count not known before a run (no example, no BatchNorm "
                            "before it): the node checks that it is even when it runs")
        rec.action, rec.target, rec.changes = "converted", _name(node), tuple(changes + more)
        if isinstance(node, BinaryReversibleLIF) and strat.backward != "autograd":
            unit = flow.units.get(path)
            if unit is None:
                rec.reason = ("no conv/linear → BN chain before it that can be recomputed: the "
                              "layers before it keep their inputs")
            else:
                paths = [q for q in unit if q is not None]
                node = BinaryUnitNode(node, [modules[q] for q in paths], paths)
                rec.fused_bn = unit[-1]
                rec.target = f"{rec.target} unit recomputing {' → '.join(paths)}"
        if strat.fuse_bn:
            bn = modules.get(chain[0]) if chain else None
            if chain is None:
                rec.reason = flow.not_fused.get(path, "no BatchNorm directly before it")
            elif not getattr(bn, "affine", False) or isinstance(bn, nn.SyncBatchNorm):
                rec.reason = (f"{chain[0]} is {'a SyncBatchNorm' if isinstance(bn, nn.SyncBatchNorm) else 'not affine'}: "
                              f"the fused unit needs an affine, per-process BatchNorm")
            else:
                node = FusedBatchNormNode(node, bn, chain[0])
                rec.fused_bn = chain[0]
        model = _set(model, path, node)
    if strat.node == "binary" and report.converted:
        report.notes.append("binary: each traced [pool module →] conv/linear → BN → node chain "
                            "runs as a recomputing binary unit (its input kept as packed "
                            "spikes); unlike the zoo's binary VGGs, a pool written as a function "
                            "(F.max_pool2d) stays outside the unit and keeps its indices, and "
                            "the network's own head is kept")
    if strict and not report.complete:
        raise ConversionError(f"convert(strict=True): {report}", report)
    return model, report


def _convert_temporal(model, preset, *, inplace, node_kwargs):
    """:func:`convert` to a time-major preset (:mod:`revsnn.conversion.temporal`)."""
    net_kwargs = {k: node_kwargs.pop(k) for k in list(node_kwargs) if k in NETWORK_KEYWORDS}
    model = _unfuse(model if inplace else copy.deepcopy(model))
    nodes = find_nodes(model)
    report = ConversionReport(strategy=preset.name)
    layer_major = ", ".join(_node_presets())
    if not nodes:
        raise ConversionError("convert: no spiking node found, so there is no time-major unit to "
                              "build (SpikingJelly's and revsnn's nodes are recognised)", report)
    try:
        net = convert_temporal(model, preset, nodes=nodes, report=report,
                               node_kwargs=dict(node_kwargs), net_kwargs=net_kwargs)
    except Refused as exc:
        report.patterns.append(("network", str(exc)))
        net = None
    if net is None:
        raise ConversionError(f"convert(..., {preset.name!r}): no time-major network can be "
                              f"built, since every node must become a unit: {report}\nA "
                              f"layer-major strategy converts what it can and leaves the rest "
                              f"as it is: {layer_major}", report)
    return net, report                                  # built: every node is a unit


def to_spikingjelly(model: nn.Module, *, strict: bool = False, wrap: bool = False,
                    inplace: bool = False) -> tuple:
    """``(model, report)`` with SpikingJelly nodes in place of every convertible node (the reverse
    of :func:`convert`; fused BatchNorms return to their own class and place; a network
    converted to ``temporal`` becomes its original structure again, with the units' weights and
    per-step BN statistics).

    ``wrap=False`` (default) puts SpikingJelly's own multi-step ``LIFNode`` / ``IFNode`` there
    (reset their state between batches with ``functional.reset_net``, as usual); ``wrap=True``
    the protocol node that starts every sequence from rest (what the ``spikingjelly`` preset
    measures). A reversible or binary node becomes the LIF with the same τ, θ and surrogate and a
    soft reset; the report says what changed.
    """
    preset = _strategy.get("spikingjelly")
    from ..temporal import TemporalNetwork
    from .temporal import ConvertedTemporalNetwork

    if isinstance(model, ConvertedTemporalNetwork):
        model, notes = _layer_major_again(model), [
            "the time-major network's units and head are put back into the original network "
            "(its structure kept by convert), weights and statistics loaded by name; "
            "per-timestep BatchNorm is T·B BatchNorm again"]
        inplace = True
    elif isinstance(model, TemporalNetwork):
        raise ValueError("to_spikingjelly: a TemporalNetwork of the zoo has no layer-major "
                         "original to return to; build the architecture with mode "
                         "'spikingjelly' (revsnn.models.build) and load the weights")
    else:
        notes = []
    model, report = _convert(model, preset, strict=strict, example=None, inplace=inplace,
                             node_kwargs={}, raw_spikingjelly=not wrap)
    report.notes += notes
    return model, report


def _layer_major_again(net) -> nn.Module:
    """The original network of a time-major conversion, with the time-major nodes in place of
    its nodes (so that their hyperparameters carry back) and the current weights."""
    ref = next(iter(net.state_dict().values()))
    model = copy.deepcopy(net._source).to_empty(device=ref.device)
    for path, unit in zip(net.node_paths, net.units):
        model = _set(model, path, copy.deepcopy(unit.node))
    model.load_state_dict(net.state_dict())
    return model.train(net.training)
