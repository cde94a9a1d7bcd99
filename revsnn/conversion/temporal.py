"""``convert(model, "temporal")``: a user's network rebuilt as the time-major engine's units
(:class:`~revsnn.temporal.TemporalNetwork`), read from its ``forward`` code with ``torch.fx``.

NOTE [what the time-major engine can express]
=============================================
The engine (NOTE [time-major backward] in :mod:`revsnn.temporal.engine`) runs a network as units
u = 1 … L, each a one-step synapse of the spikes of earlier units (or of the input) followed by the
exact binary LIF, and a one-step readout of the last unit's spikes. A layer-major strategy swaps
the nodes and keeps the user's ``forward``; a time-major one must rebuild the network, so its data
flow, read with ``torch.fx`` (the tracer of :mod:`revsnn.conversion.graph`), must consist of these
patterns only:

- a unit: ``source → [pre] → conv2d/linear → BN → node``, with shape operations (``flatten``,
  ``view``, ``unflatten``, ...: time folded into the batch and back) anywhere in between; ``pre``
  is pools (``nn.MaxPool2d``, ``nn.AvgPool2d``, the adaptive ones and SpikingJelly's step-mode
  versions, or ``F.max_pool2d`` / ``F.avg_pool2d`` / ``F.adaptive_*`` with constant arguments)
  and ``nn.Dropout`` (its mask drawn per step and replayed in backward). The source is the input,
  a node's spikes, or a sum of those (SEW-ResNet's ADD connection: a unit with several sources,
  their spikes added first);
- a residual unit (spiking ResNet): the node's input is ``BN(conv(...)) + shortcut``, the
  shortcut the spikes of another source (identity) or ``[pre →] conv → BN`` of them
  (:class:`~revsnn.temporal.synapse.Residual`);
- the head: everything from the last node's spikes to the output, with no BatchNorm and no other
  unit's values; it runs on each step as the readout (the input's shape, which a head may query
  for T and B, is answered for one step).

Every value inside a unit feeds only the next operation of its pattern, and every module of a unit
is called once per forward. A node's spikes may feed any number of units and the head, nothing
else. Anything else (an op between a node and the next conv that is not a pool, shape operation or
dropout; a conv without BN; a grouped conv; a BN in the head; the head reading an earlier unit; a
BN output used twice) is refused with the pattern named, and no network is built: a time-major
network has no place for a layer left as it was.

What changes against the layer-major network (the report says it): BatchNorm over the folded T·B
batch becomes per-timestep BatchNorm (:class:`~revsnn.temporal.bn.TimestepBatchNorm2d`, NOTE [why a
time-major backward needs per-timestep BatchNorm]); the node is the exact binary LIF (integer τ,
soft reset); the head runs per step. Every weight and BN statistic is copied, and the network's
state dict uses the user's names, so a state dict moves across in both directions.
"""

from __future__ import annotations

import copy
import operator
from collections import Counter
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..temporal.bn import TimestepBatchNorm2d
from ..temporal.engine import TemporalNetwork, TemporalUnit
from ..temporal.synapse import ConvBN, Residual, StepMaxPool, Synapse
from .graph import _Tracer, _back, _data_arg, _data_users, _inplace_use, _is_query

__all__ = ["ConvertedTemporalNetwork", "ConvSynapse", "LinearSynapseBN", "StepHead",
           "NETWORK_KEYWORDS", "convert_temporal"]

NETWORK_KEYWORDS = frozenset({"T", "encoder", "seed", "backward", "chunk_bytes",
                              "grad_chunk_bytes"})
"""Keywords of :func:`revsnn.convert` that configure the time-major network, not its nodes."""

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_POOL_FUNCTIONS = {
    F.max_pool2d: (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                  "return_indices")),
    F.avg_pool2d: (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad", "divisor_override")),
    F.adaptive_avg_pool2d: (nn.AdaptiveAvgPool2d, ("output_size",)),
    F.adaptive_max_pool2d: (nn.AdaptiveMaxPool2d, ("output_size", "return_indices")),
}
_ADDS = {operator.add, torch.add}


class Refused(Exception):
    """A pattern the engine cannot express (the message says which and why)."""


# ----------------------------------------------------------------------------------------------
# Synapses and the head

def _torch_class(m: nn.Module) -> type:
    """The first ``torch.nn`` class of ``m`` (SpikingJelly's step-mode layers subclass them)."""
    for cls in type(m).__mro__:
        if cls.__module__.startswith("torch.nn.modules"):
            return cls
    raise TypeError(f"{type(m).__name__} is not a torch.nn layer")  # pragma: no cover


def _plain_copy(m: nn.Module) -> nn.Module:
    """A one-step ``torch.nn`` module equal to ``m`` (a 2×2 max pool becomes the zoo's)."""
    cls = _torch_class(m)
    new = cls(**{k: getattr(m, k) for k in cls.__constants__ if k != "inplace"})
    if isinstance(new, nn.MaxPool2d) and _is_2x2(new):
        return StepMaxPool(2)
    return new


def _is_2x2(p: nn.MaxPool2d) -> bool:
    pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
    return (pair(p.kernel_size) == (2, 2) and pair(p.stride) == (2, 2) and
            pair(p.padding) == (0, 0) and pair(p.dilation) == (1, 1) and not p.ceil_mode)


def _summed(sources: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sources' spikes added (SEW-ResNet's ADD connection), or the one source."""
    return sources[0] if len(sources) == 1 else sum(sources[1:], sources[0])


def _pre_module(pre: Sequence[nn.Module]) -> Optional[nn.Module]:
    pre = list(pre)
    return None if not pre else pre[0] if len(pre) == 1 else nn.Sequential(*pre)


def _step_bn(bn: nn.Module, cls=TimestepBatchNorm2d) -> TimestepBatchNorm2d:
    """A per-timestep BatchNorm holding ``bn``'s affine parameters and running statistics."""
    ref = next(iter(bn.state_dict().values()), None)
    kw = {} if ref is None else dict(device=ref.device, dtype=bn.weight.dtype if bn.affine
                                     else ref.dtype)
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, **kw)
    new.load_state_dict(bn.state_dict())
    new.train(bn.training)
    return new


class _StepBatchNorm1d(TimestepBatchNorm2d):
    """Per-timestep BatchNorm of features ``[B, C]`` (after a linear layer)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"per-timestep BatchNorm1d: expected one step [B, C] or a sequence "
                             f"[T, B, C], got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return super().forward(x.unsqueeze(-1).unsqueeze(-1)).flatten(2)
        return super().forward(x.unsqueeze(-1).unsqueeze(-1)).flatten(1)


def _padding(conv: nn.Conv2d) -> tuple:
    if not isinstance(conv.padding, str):
        return tuple(conv.padding)
    if conv.padding == "valid":
        return (0, 0)
    total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
    if any(t % 2 for t in total):
        raise Refused("padding='same' with an even kernel pads one side more; give the padding "
                       "as numbers")
    return tuple(t // 2 for t in total)


class ConvSynapse(ConvBN):
    """The zoo's :class:`~revsnn.temporal.synapse.ConvBN` with a user's layers: ``[sum of the
    sources →] [pre →] conv (its stride, padding, dilation, bias) → per-timestep BN`` on one
    step; ``pool`` holds ``pre`` (the zoo's 2×2 max pool, any other pool, dropout)."""

    def __init__(self, conv: nn.Conv2d, bn: nn.Module, pre: Sequence[nn.Module] = ()):
        Synapse.__init__(self)
        if conv.groups != 1:
            raise Refused(f"a grouped conv (groups={conv.groups}): the engine computes a range "
                           f"of output channels from every input channel")
        if conv.padding_mode != "zeros":
            raise Refused(f"padding_mode={conv.padding_mode!r}: the engine's conv pads with "
                           f"zeros")
        self.pool = _pre_module(pre)
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                              _padding(conv), conv.dilation, bias=conv.bias is not None,
                              device=conv.weight.device, dtype=conv.weight.dtype)
        self.conv.load_state_dict(conv.state_dict())
        self.bn = _step_bn(bn)

    def prepare(self, *sources: torch.Tensor) -> tuple:
        return super().prepare(_summed(sources))

    def out_shape(self, prepared) -> tuple:
        x, c = prepared[0], self.conv
        size = [(x.shape[2 + k] + 2 * c.padding[k] - c.dilation[k] * (c.kernel_size[k] - 1) - 1)
                // c.stride[k] + 1 for k in (0, 1)]
        return (x.shape[0], c.out_channels, *size)

    def parameter_slices(self, c0: int, c1: int) -> list:
        pairs = super().parameter_slices(c0, c1)
        if self.conv.bias is not None:
            pairs.insert(1, (self.conv.bias, slice(c0, c1)))
        return pairs

    def compute(self, prepared, c0, c1, tensors) -> torch.Tensor:
        weight, *rest = tensors
        bias = rest.pop(0) if self.conv.bias is not None else None
        y = F.conv2d(prepared[0], weight, bias, self.conv.stride, self.conv.padding,
                     self.conv.dilation)
        return self.bn.normalise(y, c0, *(rest or (None, None)))


class LinearSynapseBN(Synapse):
    """``[sum of the sources →] [pre →] flatten → linear → per-timestep BN`` on one step."""

    def __init__(self, linear: nn.Linear, bn: nn.Module, pre: Sequence[nn.Module] = ()):
        super().__init__()
        self.pool = _pre_module(pre)
        self.fc = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None,
                            device=linear.weight.device, dtype=linear.weight.dtype)
        self.fc.load_state_dict(linear.state_dict())
        self.bn = _step_bn(bn, _StepBatchNorm1d)

    def prepare(self, *sources: torch.Tensor) -> tuple:
        x = _summed(sources)
        x = self.pool(x) if self.pool is not None else x
        return (x.flatten(1),)

    def out_shape(self, prepared) -> tuple:
        return (prepared[0].shape[0], self.fc.out_features)

    def parameter_slices(self, c0: int, c1: int) -> list:
        rows = slice(c0, c1)
        pairs = [(self.fc.weight, rows)] + ([(self.fc.bias, rows)] if self.fc.bias is not None
                                            else [])
        return pairs + ([(self.bn.weight, rows), (self.bn.bias, rows)] if self.bn.affine else [])

    def compute(self, prepared, c0, c1, tensors) -> torch.Tensor:
        weight, *rest = tensors
        bias = rest.pop(0) if self.fc.bias is not None else None
        return self.bn.normalise(F.linear(prepared[0], weight, bias), c0,
                                 *(rest or (None, None)))


class StepHead(nn.Module):
    """The user's head (the code after the last node, an ``fx.GraphModule``) run on one step:
    the spikes ``[B, ...]`` enter as a one-step sequence ``[1, B, ...]``; where the head queries
    the network input's shape, it sees a one-step stand-in (no storage). A ``[1, B, K]`` output
    is returned as ``[B, K]``; :attr:`keeps_time` records whether the head kept the time axis."""

    def __init__(self, head: fx.GraphModule, reads_input: bool):
        super().__init__()
        self.head = head
        self.reads_input = reads_input
        self.input_shape: tuple = ()
        self.keeps_time: Optional[bool] = None

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        args = [spikes.unsqueeze(0)]
        if self.reads_input:
            args.append(spikes.new_zeros(()).expand(1, spikes.shape[0], *self.input_shape))
        out = self.head(*args)
        if self.keeps_time is None:
            self.keeps_time = out.dim() == 3
        return out[0] if out.dim() == 3 else out


class ConvertedTemporalNetwork(TemporalNetwork):
    """A user's network rebuilt time-major (NOTE [what the time-major engine can express]).

    It takes what the user's network took, a sequence ``[T, B, C, H, W]`` (or a static batch
    ``[B, C, H, W]``, presented at each of :attr:`T` steps without a copy), and returns what its
    head returned per step: ``[T, B, K]`` (the mean over time when the head reduced time itself).
    :meth:`state_dict` and :meth:`load_state_dict` use the user's names (:attr:`state_names`:
    the engine's name → the user's); :attr:`node_paths` are the user's node paths, unit by unit.
    """

    def __init__(self, units, readout: StepHead, *, state_names: dict, node_paths=(),
                 source: Optional[nn.Module] = None, user_order: Sequence[str] = (), **kw):
        super().__init__(units, readout, **kw)
        self.state_names = dict(state_names)
        self._user_order = {k: i for i, k in enumerate(user_order)}
        self._engine_names = {u: e for e, u in self.state_names.items()}
        self.node_paths = tuple(node_paths)
        object.__setattr__(self, "_source", source)     # the user's structure, no storage
        self.register_state_dict_post_hook(_to_user_names)
        self.register_load_state_dict_pre_hook(_to_engine_names)

    def _prepare(self, x: torch.Tensor) -> tuple:
        x, static, T = super()._prepare(x)
        step = x if static else x[0]
        self.readout.input_shape = tuple(step.shape[1:])
        return x, static, T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._run(x, mean=False)
        return out if self.readout.keeps_time is not False else out.mean(0)


def _to_user_names(module, state_dict, prefix, local_metadata) -> None:
    items = [(k[len(prefix):], state_dict.pop(k)) for k in list(state_dict)
             if k.startswith(prefix)]
    items = [(module.state_names.get(k, k), v) for k, v in items]
    rank = module._user_order                            # the original's order, then the rest
    for k, v in sorted(items, key=lambda kv: rank.get(kv[0], len(rank))):
        state_dict[prefix + k] = v


def _to_engine_names(module, state_dict, prefix, *args) -> None:
    for k in [k for k in state_dict if k.startswith(prefix)]:
        engine = module._engine_names.get(k[len(prefix):])
        if engine is not None:
            state_dict[prefix + engine] = state_dict.pop(k)


# ----------------------------------------------------------------------------------------------
# Reading the graph

def _describe(n: fx.Node, modules: dict) -> str:
    if n.op == "call_module":
        return f"{type(modules[n.target]).__name__} ({n.target})"
    if n.op == "call_function":
        return f"{getattr(n.target, '__name__', n.target)}()"
    if n.op == "call_method":
        return f".{n.target}()"
    return f"{n.op} {n.target}"


def _is_add(n: fx.Node) -> bool:
    return ((n.op == "call_function" and n.target in _ADDS and len(n.args) == 2 and not n.kwargs)
            or (n.op == "call_method" and n.target == "add" and len(n.args) == 2
                and not n.kwargs))


def _is_dropout(m: nn.Module) -> bool:
    return isinstance(m, nn.Dropout) and _torch_class(m) is nn.Dropout


class _Reader:
    """Walks a traced network back from every node and forward from the last one."""

    def __init__(self, model: nn.Module, graph: fx.Graph, nodes: dict):
        self.model, self.graph = model, graph
        self.modules = dict(model.named_modules())
        self.calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
        self.node_calls = [n for n in graph.nodes if n.op == "call_module" and n.target in nodes]
        self.unit_of = {n: i for i, n in enumerate(self.node_calls)}
        self.covered: set = set()
        self.pre_names: list = []
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise Refused(f"forward takes {len(placeholders)} inputs; the engine feeds one "
                           f"sequence")
        self.input = placeholders[0]

    def module(self, n: fx.Node, types) -> Optional[nn.Module]:
        m = self.modules.get(n.target) if n.op == "call_module" else None
        return m if isinstance(m, types) else None

    def _once(self, n: fx.Node, what: str) -> None:
        if self.calls[n.target] > 1:
            raise Refused(f"{what} {n.target} is called more than once per forward (the "
                           f"engine's units do not share layers)")

    def _lone(self, *ns: fx.Node) -> None:
        for n in ns:
            users = _data_users(n)
            if len(users) != 1:
                raise Refused(f"the output of {_describe(n, self.modules)} is used "
                               f"{len(users)} times; inside a unit each value feeds the next "
                               f"layer only")

    def sources(self, v: fx.Node) -> list:
        """The units (−1: the input) whose spikes, summed, are the value ``v``."""
        v, hops = _back(v)
        self.covered.update(hops)
        if v is self.input:
            return [-1]
        if v in self.unit_of:
            return [self.unit_of[v]]
        if _is_add(v) and all(isinstance(a, fx.Node) for a in v.args):
            self.covered.add(v)
            return self.sources(v.args[0]) + self.sources(v.args[1])
        raise Refused(f"{_describe(v, self.modules)} before the conv/linear layer: between "
                       f"nodes the engine takes pools, dropout, shape operations and sums of "
                       f"spikes only")

    def pre(self, v: fx.Node) -> tuple:
        """``(pre modules in order, the value they start from)`` walking back from ``v``."""
        mods = []
        while True:
            v, hops = _back(v)
            self._lone(*hops)
            self.covered.update(hops)
            m = self.module(v, (*_POOLS, nn.Dropout, nn.Flatten))
            if m is not None:
                if isinstance(m, nn.Dropout) and not _is_dropout(m):
                    raise Refused(f"{type(m).__name__} ({v.target}) keeps one mask for all "
                                   f"steps; the engine draws dropout per step (use nn.Dropout)")
                if getattr(m, "return_indices", False):
                    raise Refused(f"{v.target} returns its indices")
                self._once(v, "pool")
                self._lone(v)
                if not isinstance(m, nn.Flatten):
                    mods.append(_plain_copy(m))
                    self.pre_names.append(v.target)
            elif v.op == "call_function" and v.target in _POOL_FUNCTIONS:
                cls, names = _POOL_FUNCTIONS[v.target]
                kw = dict(zip(names, v.args[1:]), **v.kwargs)
                if any(isinstance(a, fx.Node) for a in kw.values()) or kw.get("return_indices"):
                    raise Refused(f"{_describe(v, self.modules)} with computed arguments or "
                                   f"indices")
                kw.pop("return_indices", None)
                if cls is nn.MaxPool2d and kw.get("stride") is None:
                    kw.pop("stride", None)
                self._lone(v)
                mods.append(_plain_copy(cls(**kw)))
                self.pre_names.append(v.target.__name__)
            else:
                self.pre_names.reverse()
                return mods[::-1], v
            self.covered.add(v)
            v = _data_arg(v)
            if v is None:
                raise Refused("a pool without an input tensor")

    def conv_bn(self, bn_node: fx.Node, what: str) -> tuple:
        """``(synapse, sources, paths)`` for ``[pre →] conv/linear → BN`` ending at ``bn_node``."""
        bn = self.modules[bn_node.target]
        self._once(bn_node, "BatchNorm")
        self._lone(bn_node)
        producer, hops = _back(_data_arg(bn_node))
        layer = None if producer is None else self.module(producer, (nn.Conv2d, nn.Linear))
        if layer is None:
            got = "nothing" if producer is None else _describe(producer, self.modules)
            raise Refused(f"{what}: {bn_node.target} follows {got}, not a conv2d/linear layer")
        self._once(producer, "layer")
        self._lone(producer, *hops)
        self.covered.update([bn_node, producer, *hops])
        self.pre_names = []
        pre, start = self.pre(_data_arg(producer))
        sources = self.sources(start)
        names = tuple(self.pre_names)
        want = nn.BatchNorm2d if isinstance(layer, nn.Conv2d) else nn.BatchNorm1d
        if not isinstance(bn, want) or isinstance(bn, nn.SyncBatchNorm):
            raise Refused(f"{bn_node.target} is a {type(bn).__name__}; after a "
                           f"{type(layer).__name__} the per-timestep BatchNorm takes a "
                           f"{want.__name__}")
        syn = (ConvSynapse if isinstance(layer, nn.Conv2d) else LinearSynapseBN)(layer, bn, pre)
        return syn, sources, (producer.target, bn_node.target), names

    def _bn_before(self, v: fx.Node) -> Optional[fx.Node]:
        v, hops = _back(v)
        if v is not None and v.op == "call_module" and isinstance(
                self.modules.get(v.target), nn.modules.batchnorm._BatchNorm):
            self._lone(*hops)
            self.covered.update(hops)
            return v
        return None

    def unit(self, n: fx.Node) -> tuple:
        """``(synapse, sources, {synapse prefix: (layer path, bn path)}, chain text)`` of the
        unit ending at node call ``n``."""
        v, hops = _back(_data_arg(n))
        self._lone(*hops)
        self.covered.update(hops)
        bn = self._bn_before(v) if v is not None else None
        if bn is not None:
            syn, sources, paths, pre = self.conv_bn(bn, f"the node {n.target}")
            return syn, sources, {"": paths}, " → ".join(pre + paths)
        if v is not None and _is_add(v):
            self._lone(v)
            self.covered.add(v)
            branches = []
            for a in v.args:
                b = self._bn_before(a) if isinstance(a, fx.Node) else None
                branches.append(b)
            if branches[0] is None and branches[1] is not None:
                branches, args = branches[::-1], v.args[::-1]
            else:
                args = v.args
            if branches[0] is None:
                raise Refused(f"the input of {n.target} is a sum without a BatchNorm before it")
            main, main_src, main_paths, main_pre = self.conv_bn(branches[0], f"the node {n.target}")
            if not isinstance(main, ConvSynapse) or len(main_src) != 1:
                raise Refused(f"a residual sum before {n.target} whose main path is not one "
                               f"conv-BN of one source")
            if branches[1] is not None:
                short, short_src, short_paths, short_pre = self.conv_bn(branches[1], f"the shortcut of "
                                                                          f"{n.target}")
                if not isinstance(short, ConvSynapse) or len(short_src) != 1:
                    raise Refused(f"a shortcut of {n.target} that is not one conv-BN of one "
                                   f"source")
                names = {"main.": main_paths, "shortcut.": short_paths}
                text = (f"{' → '.join(main_pre + main_paths)} + "
                        f"{' → '.join(short_pre + short_paths)}")
            else:
                short, short_src = None, self.sources(args[1])
                if len(short_src) != 1:
                    raise Refused(f"an identity shortcut of {n.target} that adds several "
                                   f"sources")
                names = {"main.": main_paths}
                text = f"{' → '.join(main_pre + main_paths)} + identity"
            return Residual(main, short), main_src + short_src, names, text
        got = "nothing" if v is None else _describe(v, self.modules)
        raise Refused(f"the node {n.target} follows {got}: a unit is [pool →] conv/linear → "
                       f"BatchNorm → node (a layer without BatchNorm is not a unit)")

    def head(self) -> StepHead:
        """The code after the last node as a one-step readout."""
        last = self.node_calls[-1]
        out = next(n for n in self.graph.nodes if n.op == "output")
        if not isinstance(out.args[0], fx.Node):
            raise Refused("the network returns several values; the engine's readout returns "
                           "one tensor")
        if _inplace_use(last, self.modules):
            raise Refused(f"{_inplace_use(last, self.modules)} of the last node {last.target}")
        upstream = _ancestors([last])
        needed = _ancestors([out.args[0]])
        body = [n for n in self.graph.nodes if n in needed and n not in upstream]
        queries = _queries(self.graph, self.input, body, upstream)
        g = fx.Graph()
        env = {last: g.placeholder("spikes")}
        reads_input = any(self.input in n.all_input_nodes for n in queries + body)
        if reads_input:
            env[self.input] = g.placeholder("x")
        keep = set(body) | set(queries)
        for n in self.graph.nodes:
            if n not in keep:
                continue
            missing = [a for a in n.all_input_nodes if a not in env]
            if missing:
                what = ("the network input's values" if self.input in missing else
                        ", ".join(_describe(a, self.modules) for a in missing))
                raise Refused(f"the head ({_describe(n, self.modules)}) reads {what} besides "
                               f"the last node's spikes; the engine's readout reads those only")
            if n.op == "call_module":
                m = self.modules[n.target]
                if any(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.modules()):
                    raise Refused(f"a BatchNorm in the head ({n.target}): the readout runs per "
                                   f"step and again in backward")
            env[n] = g.node_copy(n, lambda a: env[a])
        for u in self.input.users:
            if u in body and not _is_query(u, self.input):
                raise Refused(f"the head ({_describe(u, self.modules)}) reads the network "
                               f"input's values")
        g.output(env[out.args[0]])
        self.covered.update(keep)
        return StepHead(fx.GraphModule(self.model, g), reads_input)

    def check_fan_out(self) -> None:
        """Every value a unit or the head uses goes nowhere else."""
        for n in list(self.covered) + self.node_calls:
            for u in _data_users(n):
                if u.op != "output" and u not in self.covered and u not in self.unit_of:
                    raise Refused(f"the value of {_describe(n, self.modules)} also goes to "
                                   f"{_describe(u, self.modules)}, which is part of no unit and "
                                   f"not the head")


def _ancestors(roots) -> set:
    seen, stack = set(), list(roots)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack += n.all_input_nodes
    return seen


def _queries(graph: fx.Graph, x: fx.Node, body: list, upstream: set) -> list:
    """The shape queries (of the input, or of each other) that ``body`` uses from upstream."""
    need = [a for n in body for a in n.all_input_nodes if a in upstream]
    out: set = set()
    while need:
        a = need.pop()
        if a in out or a is x or a.op == "placeholder":
            continue
        is_query = ((a.op == "call_function" and a.target is getattr)
                    or (a.op == "call_method" and a.target in ("size", "dim"))
                    or (a.op == "call_function" and a.target is operator.getitem
                        and all(p in out or p.op != "call_module" for p in a.all_input_nodes)))
        if not is_query:
            continue                                     # left for the head check to name
        out.add(a)
        need += [p for p in a.all_input_nodes if p in upstream]
    return [n for n in graph.nodes if n in out]


# ----------------------------------------------------------------------------------------------

def convert_temporal(model: nn.Module, preset, *, nodes: dict, report, node_kwargs: dict,
                     net_kwargs: dict) -> ConvertedTemporalNetwork:
    """The time-major network of ``model`` (already copied and unfused), its records added to
    ``report``; raises :class:`Refused` for a network that does not trace, ``report`` holding
    every refused pattern otherwise (the caller raises)."""
    from .report import NodeRecord
    from .nodes import refusal, source_hyperparameters, target_node

    strat = preset.strategy
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # noqa: BLE001 - untraceable forward code: say so, with the cause
        raise Refused(f"the forward code cannot be traced with torch.fx ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}); a time-major network is "
                       f"rebuilt from the traced data flow") from exc
    report.traced = True
    reader = _Reader(model, graph, nodes)
    units, names, paths = [], {}, []
    for i, n in enumerate(reader.node_calls):
        module, info = nodes[n.target]
        rec = NodeRecord(n.target, info.source, "left alone")
        report.nodes.append(rec)
        why = refusal(module, info)
        if why is not None:
            rec.reason = why
            continue
        if reader.calls[n.target] > 1:
            rec.reason = "called more than once per forward (the engine's units share no node)"
            continue
        hp, changes = source_hyperparameters(module, info)
        try:
            node, more = target_node(preset, info.family, hp, node_kwargs)
            syn, sources, layer_paths, text = reader.unit(n)
        except ValueError as exc:
            rec.reason = f"the {strat.node} node cannot take its hyperparameters: {exc}"
            continue
        except Refused as exc:
            rec.reason = str(exc)
            continue
        if any(s >= i for s in sources):
            rec.reason = "its synapse reads a later node"
            continue
        for prefix, (layer, bn) in layer_paths.items():
            base = f"units.{len(units)}.synapse.{prefix}"
            lname = "conv" if isinstance(syn if not prefix else getattr(syn, prefix[:-1]),
                                          ConvSynapse) else "fc"
            for k in reader.modules[layer].state_dict():
                names[f"{base}{lname}.{k}"] = f"{layer}.{k}"
            for k in reader.modules[bn].state_dict():
                names[f"{base}bn.{k}"] = f"{bn}.{k}"
        units.append(TemporalUnit(syn, sources, node))
        paths.append(n.target)
        rec.action, rec.fused_bn = "converted", next(iter(layer_paths.values()))[1]
        rec.target = f"{type(node).__name__} in time-major unit {len(units) - 1} ({text} → node)"
        rec.changes = tuple(changes + more + [
            f"BatchNorm {', '.join(b for _, b in layer_paths.values())} over the folded T·B batch "
            f"becomes per-timestep BatchNorm (statistics of each step, γ, β and running "
            f"statistics copied)"])
    head = None
    if reader.node_calls:
        try:
            head = reader.head()
            reader.check_fan_out()
        except Refused as exc:
            report.patterns.append(("head" if head is None else "data flow", str(exc)))
    if not report.complete or head is None:
        return None
    for k in head.head.state_dict():
        names[f"readout.head.{k}"] = k
    dropped = sorted(set(model.state_dict()) - set(names.values()))
    if dropped:
        report.notes.append(f"state-dict entries with no place in the time-major network "
                            f"(dropped): {', '.join(dropped)}")
    report.notes += [
        "temporal: the network is rebuilt as time-major units (NOTE [what the time-major engine "
        "can express]); its backward walks t = T−1 … 0 with 2 bits per neuron-step stored",
        "every T·B BatchNorm becomes per-timestep BatchNorm: statistics over B·H·W of each step "
        "(noisier than over T·B·H·W; a step no longer depends on the others, so the network is "
        "causal), running statistics updated once per forward with the mean over steps; a "
        "network trained with T·B statistics gives different outputs until fine-tuned",
        "the head runs on each step (the readout); the network returns per-step outputs "
        "[T, B, ...] as the head did (their mean if the head reduced time itself)",
        "the state dict keeps the original names (load it into the original and back)",
    ]
    on_drift = node_kwargs.get("on_drift", "raise")
    source = copy.deepcopy(model).to("meta")
    return ConvertedTemporalNetwork(units, head, state_names=names, node_paths=paths,
                                    source=source, user_order=list(model.state_dict()),
                                    on_drift=on_drift, **net_kwargs)
