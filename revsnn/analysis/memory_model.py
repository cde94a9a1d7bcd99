"""Analytic memory model: what each layer of a zoo network stores for backward, per strategy.

:func:`predict_saved_bytes` walks a :mod:`revsnn.models` network layer by layer, tracks the shape of
every activation and lists each tensor autograd keeps for backward, with its size. A tensor kept by
two layers (a node's output that the next conv also keeps as its input) is listed once, at the layer
that keeps it first, and the later layer's row says ``shared``. The total is what
:func:`revsnn.analysis.measure.saved_tensor_bytes` counts as ``saved_bytes`` (storage-deduplicated, parameters
excluded); ``tests/test_memory_model.py`` checks the two agree.

What a spiking node stores it says itself (``node.stored(dtype)``, NOTE [node protocol] in
:mod:`revsnn.nodes.base`); the layers, per neuron-step (N = T·B·C·H·W elements of a layer's output,
s = itemsize):

======================  ============================================================================
layer                   stores
======================  ============================================================================
conv / linear           its input (the previous layer's output; shared when already kept)
BatchNorm (autograd)    its input x (s·N) and the per-channel batch mean and 1/σ
BN fused into the node  the residual code (1 byte per element, 2 with 16-bit codes) and 1/σ; not x
  (fused / revnet)      (NOTE [BN + node fusion] in :mod:`revsnn.layers.bn_node`)
binary unit             its synapse nothing (recomputed); the previous unit's packed spikes (shared)
                        or its analog input by reference; then what its node stores
time-major unit         packed spikes and remainders per step, V_T per neuron (``temporal``,
                        :mod:`revsnn.temporal.memory`, which also predicts the activation peak)
reversible stack        its output only (``blocks``); run plainly, every block's layers
max pool 2×2            its input (shared) and int64 argmax indices of its output (8 bytes each)
global average pool     nothing (its backward needs only the shape); pooling to k×k, k > 1: its input
======================  ============================================================================

>>> df = predict_saved_bytes("vgg11", "fused", T=2, batch=2, image_size=32)
>>> df.attrs["total_bytes"]
5802752
>>> int(df["bytes"].sum()) == df.attrs["total_bytes"]
True
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

__all__ = ["predict_saved_bytes", "predict_total", "layer_table"]

_COLUMNS = ["layer", "kind", "tensor", "shape", "elements", "itemsize", "bytes", "shared"]


class _Accountant:
    """Tracks activations by id and the rows of stored tensors, deduplicated by id."""

    def __init__(self, T: int, batch: int, dtype: torch.dtype):
        self.T, self.batch, self.dtype = int(T), int(batch), dtype
        self.s = torch.empty((), dtype=dtype).element_size()
        self.rows: list = []
        self.kept: set = set()
        self.packed: dict = {}            # activation id -> id of its packed copy (binary units)
        self._next = 0

    def new(self, shape) -> tuple:
        """A fresh activation: ``(id, per-step-per-sample shape)``."""
        self._next += 1
        return (self._next, tuple(int(v) for v in shape))

    def n(self, shape) -> int:
        return self.T * self.batch * math.prod(shape)

    def keep(self, layer: str, kind: str, what: str, act=None, *, elements: Optional[int] = None,
             shape=None, itemsize: Optional[int] = None, key=None):
        """Record a stored tensor: an activation ``act`` or a fresh one (deduplicated by ``key``
        when given)."""
        shared = False
        if act is not None:
            shape = act[1]
            elements = self.n(shape)
            key = act[0]
        if key is not None:
            shared = key in self.kept
            self.kept.add(key)
        itemsize = self.s if itemsize is None else itemsize
        self.rows.append(dict(layer=layer, kind=kind, tensor=what,
                              shape="×".join(map(str, shape)) if shape else "",
                              elements=int(elements), itemsize=int(itemsize),
                              bytes=0 if shared else int(elements) * int(itemsize),
                              shared=shared))


def _stats_itemsize(dtype: torch.dtype) -> int:
    return max(torch.empty((), dtype=dtype).element_size(), 4)


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _conv_out(conv: nn.Conv2d, shape):
    c, h, w = shape
    k, st, p, d = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    ho = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // st[0] + 1
    wo = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // st[1] + 1
    return (conv.out_channels, ho, wo)


def _pool_out(pool, shape):
    c, h, w = shape
    k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
    return shape if h < k or w < k else (c, h // k, w // k)


def _node(acc: _Accountant, name: str, node: nn.Module, z, out, *, skip_input: bool = False):
    """Rows for a spiking node with input activation ``z`` and output ``out``: what the node says
    it stores (NOTE [node protocol])."""
    from ..nodes.base import SpikingNode

    if not isinstance(node, SpikingNode):
        raise TypeError(f"memory model: {type(node).__name__} does not implement the node "
                        f"protocol (revsnn.nodes.base.SpikingNode)")
    steps = out[1]
    n_step = acc.batch * math.prod(steps)
    for item in node.stored(acc.dtype):
        size = acc.s if item.dtype is None else _itemsize(item.dtype)
        if item.per == "input":
            if not skip_input:
                acc.keep(name, node.kind, item.what, z)
        elif item.per == "output":
            acc.keep(name, node.kind, item.what, out)
        elif item.per == "neuron-step" and item.bits:
            acc.keep(name, node.kind, item.what, elements=acc.T * item.bits * -(-n_step // 8),
                     shape=steps, itemsize=1, key=("packed", out[0]) if item.bits == 1 and
                     item.what.startswith("spikes") else None)
        elif item.per == "neuron-step":
            acc.keep(name, node.kind, item.what, elements=item.count * acc.n(steps), shape=steps,
                     itemsize=size)
        elif item.per == "neuron":
            acc.keep(name, node.kind, item.what, elements=item.count * n_step, shape=steps,
                     itemsize=size)
        else:
            raise ValueError(f"memory model: unknown Stored.per {item.per!r} of {node.kind}")


def _conv_bn_node(acc: _Accountant, name: str, block, x, addend=None, kept_input=None):
    """``kept_input``: the activation the conv's saved input belongs to, when ``x`` is a view of
    it (a reversible block's half)."""
    from ..functional.bn_inverse import residual_bits
    from ..layers.bn_node import can_fuse

    acc.keep(f"{name}.conv", "conv", "input", kept_input or x)
    shape = _conv_out(block.conv, x[1])
    y = acc.new(shape)                                          # conv output = BN input
    c = shape[0]
    probe = torch.empty(0, dtype=acc.dtype)
    st = _stats_itemsize(acc.dtype)
    if block.fuse_bn and can_fuse(block.bn, block.node, probe):
        grid = block.node.params(acc.dtype).grid
        bits = residual_bits(block.bn.weight, grid, acc.dtype)
        kind = "BN fused into node"
        if addend is not None:
            acc.keep(f"{name}.bn", kind, "addend (shortcut)", addend)
        if bits:
            acc.keep(f"{name}.bn", kind, f"residual code z − q(z), int{bits}",
                     elements=acc.n(shape), shape=shape, itemsize=bits // 8)
        else:
            acc.keep(f"{name}.bn", kind, "BN input (|γ| too small to invert)", y)
            acc.keep(f"{name}.bn", kind, "batch mean", elements=c, shape=(c,), itemsize=st)
        acc.keep(f"{name}.bn", kind, "1/σ per channel", elements=c, shape=(c,), itemsize=st)
        out = acc.new(shape)
        _node(acc, f"{name}.node", block.node, None, out)
        return out
    acc.keep(f"{name}.bn", "BatchNorm", "input", y)
    acc.keep(f"{name}.bn", "BatchNorm", "batch mean and 1/σ", elements=2 * c, shape=(2, c),
             itemsize=st)
    z = acc.new(shape)                                          # BN output (+ addend): node input
    out = acc.new(shape)
    _node(acc, f"{name}.node", block.node, z, out)
    return out


def _conv_bn(acc: _Accountant, name: str, block, x):
    acc.keep(f"{name}.conv", "conv", "input", x)
    shape = _conv_out(block.conv, x[1])
    acc.keep(f"{name}.bn", "BatchNorm", "input", acc.new(shape))
    acc.keep(f"{name}.bn", "BatchNorm", "batch mean and 1/σ", elements=2 * shape[0],
             shape=(2, shape[0]), itemsize=_stats_itemsize(acc.dtype))
    return acc.new(shape)


def _maxpool(acc: _Accountant, name: str, pool, x):
    shape = _pool_out(pool, x[1])
    if shape == x[1]:
        return x
    acc.keep(name, "max pool", "input", x)
    acc.keep(name, "max pool", "argmax indices (int64)", elements=acc.n(shape), shape=shape,
             itemsize=8)
    return acc.new(shape)


def _binary_unit(acc: _Accountant, name: str, unit, x):
    """A unit recomputes its synapse from its input's source: the previous unit's packed spikes
    (kept once, by that unit) or its analog input by reference; its node stores the rest."""
    node = unit.node
    if node.backward_algorithm == "autograd":
        raise ValueError(f"memory model: {name} is a binary unit under plain autograd (the "
                         f"reference), which it does not model; use backward='fused'")
    shape = x[1]
    for m in unit.synapse:
        if isinstance(m, nn.Conv2d):
            shape = _conv_out(m, shape)
        elif isinstance(m, nn.MaxPool2d):
            shape = _pool_out(m, shape)
        elif not isinstance(m, nn.modules.batchnorm._BatchNorm):
            raise TypeError(f"memory model: no rule for {type(m).__name__} in the synapse of "
                            f"{name}")
    out = acc.new(shape)
    if x[0] in acc.packed:
        acc.keep(name, node.kind, "input spikes, packed (the previous unit's)",
                 elements=acc.T * -(-acc.batch * math.prod(x[1]) // 8), shape=x[1], itemsize=1,
                 key=("packed", x[0]))
    else:
        acc.keep(name, node.kind, "input X (by reference)", x)
    _node(acc, f"{name}.node", node, None, out, skip_input=True)
    acc.packed[out[0]] = True
    return out


def _rev_sequence(acc: _Accountant, name: str, stack, x):
    """A reversible stack keeps only its output; run plainly, each block keeps what its F and G
    keep (F's conv keeps the whole stream, of which its input is a view)."""
    if stack.mode == "reversible":
        out = acc.new(x[1])
        acc.keep(name, "reversible stack", "output Y", out)
        return out
    c, rest = x[1][0], x[1][1:]
    half = (c // 2, *rest)
    stream = x if stack.grid_bits is None else acc.new(x[1])    # q(X) (E7.0): a fresh tensor
    for i, blk in enumerate(stack.blocks):
        f = _conv_bn_node(acc, f"{name}.blocks.{i}.f", blk.f, (stream[0], half),
                          kept_input=stream)
        y1 = acc.new(half)                                      # X₁ + F(X₂)
        _conv_bn_node(acc, f"{name}.blocks.{i}.g", blk.g, y1)
        del f
        stream = acc.new(x[1])                                  # cat(Y₁, Y₂)
    return stream


def _readout(acc: _Accountant, name: str, head, x):
    from ..layers.units import MeanReadout

    c = x[1][0]
    if isinstance(head, MeanReadout):   # the mean saves nothing; the linear keeps [B, C]
        acc.keep(f"{name}.fc", "linear", "input (mean over T and space)", elements=acc.batch * c,
                 shape=(c,))
        return
    p = head.pool.output_size if isinstance(head.pool.output_size, int) else head.pool.output_size[0]
    if p != 1:          # output size 1 runs as a mean (saves nothing); others keep their input
        acc.keep(f"{name}.pool", "average pool", "input", x)
    f = acc.new((c * p * p,))                                   # pooled + flattened
    if head.hidden is not None:
        acc.keep(f"{name}.hidden.fc", "linear", "input", f)
        z = acc.new((head.hidden.fc.out_features,))
        f = acc.new(z[1])
        _node(acc, f"{name}.hidden.node", head.hidden.node, z, f)
    acc.keep(f"{name}.fc", "linear", "input", f)


def _walk(acc: _Accountant, name: str, layer, x):
    from ..layers.units import BinarySpikingUnit
    from ..layers.reversible import RevSequence
    from ..layers.containers import SeqMaxPool
    from ..layers.units import BasicBlock, ConvBNNode

    if isinstance(layer, ConvBNNode):
        return _conv_bn_node(acc, name, layer, x)
    if isinstance(layer, SeqMaxPool):
        return _maxpool(acc, name, layer, x)
    if isinstance(layer, BasicBlock):
        h = _conv_bn_node(acc, f"{name}.conv1", layer.conv1, x)
        a = x if layer.shortcut is None else _conv_bn(acc, f"{name}.shortcut", layer.shortcut, x)
        return _conv_bn_node(acc, f"{name}.conv2", layer.conv2, h, addend=a)
    if isinstance(layer, BinarySpikingUnit):
        return _binary_unit(acc, name, layer, x)
    if isinstance(layer, RevSequence):
        return _rev_sequence(acc, name, layer, x)
    raise TypeError(f"memory model: no rule for layer {name} ({type(layer).__name__})")


def predict_saved_bytes(model_or_arch, mode=None, *, T: int = 4, batch: int = 1,
                        image_size: int = 32, dtype="float32", in_channels: Optional[int] = None,
                        num_classes: int = 10, node_kwargs: Optional[dict] = None,
                        fuse_bn: Optional[bool] = None, **arch_kwargs):
    """Predicted bytes saved for backward, one row per stored tensor of each layer.

    ``model_or_arch`` is a :class:`revsnn.models.SpikingNet` (its nodes and BN weights are used as
    they are; ``mode`` must then be None) or a zoo name built with ``mode`` (a preset of
    :mod:`revsnn.strategy`), ``node_kwargs``, ``fuse_bn`` and ``arch_kwargs`` (as
    :func:`revsnn.models.build`). Returns a pandas DataFrame with columns
    layer, kind, tensor, shape (per sample and step), elements, itemsize, bytes, shared (kept
    already by an earlier layer: 0 bytes here); ``df.attrs["total_bytes"]`` is the sum, the
    predicted ``saved_bytes`` of :mod:`revsnn.analysis.measure` for a static input ``[batch, C, S, S]``.
    """
    import pandas as pd

    from ..models import SpikingNet, build
    from ..temporal import TemporalNetwork
    from ..temporal.memory import predict_saved_rows
    from .measure import parse_dtype

    if isinstance(model_or_arch, (SpikingNet, TemporalNetwork)):
        if mode is not None:
            raise ValueError("predict_saved_bytes: pass mode only with an architecture name")
        model = model_or_arch
        in_channels = model.config.get("in_channels", 3) if in_channels is None else in_channels
    else:
        model = build(str(model_or_arch), mode if mode is not None else "bptt",
                      in_channels=in_channels, num_classes=num_classes, node_kwargs=node_kwargs,
                      T=T, fuse_bn=fuse_bn, seed=0, **arch_kwargs)
        in_channels = model.config["in_channels"]
    for name, val in (("T", T), ("batch", batch), ("image_size", image_size)):
        if int(val) < 1:
            raise ValueError(f"predict_saved_bytes: {name} must be >= 1, got {val}")
    if isinstance(model, TemporalNetwork):              # time-major: the engine's own account
        x = torch.zeros(batch, in_channels, image_size, image_size, dtype=parse_dtype(dtype))
        df = pd.DataFrame(predict_saved_rows(model.to(x.dtype), x, T), columns=_COLUMNS)
        df.attrs["total_bytes"] = int(df["bytes"].sum())
        return df
    acc = _Accountant(T, batch, parse_dtype(dtype))
    x = acc.new((in_channels, image_size, image_size))          # the encoder's output
    for i, layer in enumerate(model.features):
        x = _walk(acc, f"features.{i}", layer, x)
    _readout(acc, "head", model.head, x)
    df = pd.DataFrame(acc.rows, columns=_COLUMNS)
    df.attrs["total_bytes"] = int(df["bytes"].sum())
    return df


def predict_total(model_or_arch, mode=None, **kw) -> int:
    """Total predicted saved bytes (see :func:`predict_saved_bytes`)."""
    return predict_saved_bytes(model_or_arch, mode, **kw).attrs["total_bytes"]


def layer_table(df):
    """Bytes per layer (summing the tensors of each layer) with a final ``total`` row."""
    import pandas as pd

    per = df.groupby("layer", sort=False).agg(kind=("kind", "first"), bytes=("bytes", "sum"))
    per = per.reset_index()
    total = pd.DataFrame([dict(layer="total", kind="", bytes=int(per["bytes"].sum()))])
    return pd.concat([per, total], ignore_index=True)
