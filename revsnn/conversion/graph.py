"""Where the data flows in a user's network: which BatchNorm feeds which node, and what happens to a
node's output, read from the ``forward`` code with ``torch.fx`` (module order alone cannot say it
for a residual block or a hand-written ``forward``).

NOTE [what a fusable chain is]
==============================
``conv/linear → BN → node`` is fused (the BN runs inside the node's autograd Function and its input
is not stored, :mod:`revsnn.layers.bn_node`) only when running the BN inside the node computes the
same thing as the user's code:

- the node's input is the BN's output, through shape operations only (``view``, ``reshape``,
  ``flatten``, ``unflatten``, ``contiguous``; SpikingJelly's step-mode layers and
  ``SeqToANNContainer`` fold time into the batch exactly so), so that BN over the folded
  ``[T·B, C, ...]`` batch and then the node see the same values;
- the BN's output (and every reshaped view of it) has no other use: afterwards the BN module is the
  identity at its place, so another consumer would see its input instead;
- the BN and the node are called once per forward (a shared module would be fused for every use).

A node whose output is changed in place (``out += x``, ``relu_``, ``ReLU(inplace=True)``) is not
converted to a reconstructing node: its backward rebuilds everything from that very output.

When the ``forward`` code cannot be traced (data-dependent control flow), the analysis falls back to
module order inside ``nn.Sequential`` containers, whose ``forward`` is known: a BN (or a container
ending in one) directly before a node in the same ``Sequential`` is a chain.
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
import torch
from torch import fx, nn

from .nodes import classify

__all__ = ["Flow", "analyse", "SHAPE_METHODS"]

SHAPE_METHODS = frozenset({"view", "reshape", "flatten", "unflatten", "contiguous", "view_as",
                           "reshape_as"})
"""Tensor methods that only reshape (the values a node sees are the BN's)."""

_SHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.unflatten}
_QUERIES = {"size", "dim"}
_INPLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv,
                      operator.ior, operator.iand}


@dataclass
class Flow:
    """What :func:`analyse` learnt about a network.

    traced: whether ``torch.fx`` traced the whole ``forward``; trace_error: why not.
    chains: node path → ``(bn path, producer path or None)`` for every fusable chain (NOTE above);
        the producer is the conv/linear (or the module holding it) that feeds the BN.
    not_fused: node path → why the BN before it cannot be fused.
    inplace: node path → the in-place operation on its output.
    calls: module path → how many times ``forward`` calls it (traced only).
    units: node path → ``(pool path or None, conv/linear path, bn path)`` for every chain whose
        conv (and the pool module before it) can be recomputed with the BN (binary units; traced
        only).
    """

    traced: bool
    trace_error: str = ""
    chains: dict = field(default_factory=dict)
    not_fused: dict = field(default_factory=dict)
    inplace: dict = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    units: dict = field(default_factory=dict)


def _is_bn(m) -> bool:
    return isinstance(m, nn.modules.batchnorm._BatchNorm)


def _holds(module: nn.Module, pred) -> bool:
    return any(pred(m) for m in module.modules())


class _Tracer(fx.Tracer):
    """Leaves: nodes, BatchNorms and every module holding neither (no need to look inside)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if classify(m) is not None or _is_bn(m):
            return True
        if getattr(m, "_revsnn_fused_node", False):
            return True
        return not _holds(m, lambda x: x is not m and (classify(x) is not None or _is_bn(x)))


def _data_arg(n: fx.Node):
    return n.args[0] if n.args and isinstance(n.args[0], fx.Node) else None


def _is_shape_op(n: fx.Node) -> bool:
    return ((n.op == "call_method" and n.target in SHAPE_METHODS)
            or (n.op == "call_function" and n.target in _SHAPE_FUNCTIONS))


def _is_query(n: fx.Node, src: fx.Node) -> bool:
    """``src.shape``, ``src.size()``, ``src.dim()``: reads the shape, not the values."""
    if n.op == "call_function" and n.target is getattr and n.args[1] in ("shape", "ndim"):
        return True
    return n.op == "call_method" and n.target in _QUERIES


def _data_users(n: fx.Node) -> list:
    return [u for u in n.users
            if not _is_query(u, n) and not (_is_shape_op(u) and _data_arg(u) is not n)]


def _inplace_use(n: fx.Node, modules: dict) -> str:
    """The first in-place operation on ``n``'s value or a view of it, or ''."""
    for u in n.users:
        if _is_shape_op(u) and _data_arg(u) is n:
            found = _inplace_use(u, modules)
            if found:
                return found
            continue
        if u.op == "call_method" and str(u.target).endswith("_") and _data_arg(u) is n:
            return f"{u.target}() on its output"
        if u.op == "call_function" and u.target in _INPLACE_FUNCTIONS and _data_arg(u) is n:
            return f"an augmented assignment ({u.target.__name__}) on its output"
        if u.op == "call_function" and u.kwargs.get("inplace") and _data_arg(u) is n:
            return f"{getattr(u.target, '__name__', u.target)}(inplace=True) on its output"
        if u.op == "call_module" and getattr(modules.get(u.target), "inplace", False):
            return f"{type(modules[u.target]).__name__}(inplace=True) ({u.target}) on its output"
    return ""


def _trace(model: nn.Module, nodes: dict, flow: Flow) -> None:
    graph = _Tracer().trace(model)
    modules = dict(model.named_modules())
    flow.traced = True
    for n in graph.nodes:
        if n.op == "call_module":
            flow.calls[n.target] += 1
    for n in graph.nodes:
        if n.op != "call_module" or n.target not in nodes:
            continue
        path = n.target
        why = _inplace_use(n, modules)
        if why:
            flow.inplace[path] = why
        # walk back from the node through shape operations to a BN
        src, hops = _data_arg(n), []
        while src is not None and _is_shape_op(src):
            hops.append(src)
            src = _data_arg(src)
        if src is None or src.op != "call_module" or not _is_bn(modules.get(src.target)):
            continue
        bn_path = src.target
        chain = [src] + hops[::-1]
        lone = all(len(_data_users(c)) == 1 for c in chain)
        if not lone:
            flow.not_fused[path] = (f"the output of {bn_path} is used elsewhere too (fusing would "
                                    f"hand the other use the BatchNorm's input)")
            continue
        if flow.calls[bn_path] > 1 or flow.calls[path] > 1:
            flow.not_fused[path] = (f"{bn_path if flow.calls[bn_path] > 1 else path} is called "
                                    f"more than once per forward")
            continue
        producer, between = _back(_data_arg(src))
        prod_path = (producer.target if producer is not None and producer.op == "call_module"
                     else None)
        flow.chains[path] = (bn_path, prod_path)
        unit = _unit(producer, between, modules, flow)
        if unit is not None:
            flow.units[path] = unit + (bn_path,)


def _back(n) -> tuple:
    """The first node before ``n`` that is not a shape operation, and the shape operations on
    the way (from that node forward)."""
    hops = []
    while n is not None and _is_shape_op(n):
        hops.append(n)
        n = _data_arg(n)
    return n, hops[::-1]


_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.MaxPool1d, nn.AvgPool1d)


def _lone(*nodes) -> bool:
    return all(len(_data_users(c)) == 1 for c in nodes)


def _unit(producer, between: list, modules: dict, flow: Flow):
    """``(pool path or None, producer path)`` when ``[pool →] producer → BN`` can be recomputed
    as one binary unit (NOTE [what a fusable chain is], for the conv and pool as for the BN)."""
    if producer is None or producer.op != "call_module":
        return None
    if not isinstance(modules.get(producer.target), (nn.Conv1d, nn.Conv2d, nn.Linear)):
        return None
    if flow.calls[producer.target] > 1 or not _lone(producer, *between):
        return None
    pool, hops = _back(_data_arg(producer))
    if (pool is not None and pool.op == "call_module"
            and isinstance(modules.get(pool.target), _POOLS)
            and flow.calls[pool.target] == 1 and _lone(pool, *hops)):
        return (pool.target, producer.target)
    return (None, producer.target)


def _sequential_chains(model: nn.Module, nodes: dict, flow: Flow) -> None:
    """Module order inside ``nn.Sequential`` containers (the fallback; NOTE above)."""
    seq_forwards = {nn.Sequential.forward}
    try:
        from spikingjelly.activation_based import layer
        seq_forwards.add(layer.SeqToANNContainer.forward)
        seq_forwards.add(layer.MultiStepContainer.forward)
    except Exception:  # noqa: BLE001 - SpikingJelly is optional
        pass
    for prefix, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential) or type(seq).forward not in seq_forwards:
            continue
        names = list(seq._modules)
        for i, name in enumerate(names):
            path = f"{prefix}.{name}" if prefix else name
            if path not in nodes or i == 0:
                continue
            prev_name = names[i - 1]
            prev = seq._modules[prev_name]
            prev_path = f"{prefix}.{prev_name}" if prefix else prev_name
            if isinstance(prev, nn.Sequential) and type(prev).forward in seq_forwards and prev:
                last = list(prev._modules)[-1]
                if _is_bn(prev._modules[last]):
                    producer = (f"{prev_path}.{list(prev._modules)[-2]}" if len(prev) > 1
                                else None)
                    flow.chains[path] = (f"{prev_path}.{last}", producer)
            elif _is_bn(prev):
                producer = (f"{prefix}.{names[i - 2]}" if prefix else names[i - 2]) if i > 1 \
                    else None
                flow.chains[path] = (prev_path, producer)


def analyse(model: nn.Module, nodes: dict) -> Flow:
    """The :class:`Flow` of ``model``, whose spiking nodes are ``nodes`` (path → module)."""
    flow = Flow(traced=False)
    try:
        _trace(model, nodes, flow)
    except Exception as exc:  # noqa: BLE001 - untraceable forward code: fall back, and say so
        flow = Flow(traced=False, trace_error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                    if str(exc) else type(exc).__name__)
        _sequential_chains(model, nodes, flow)
    return flow

