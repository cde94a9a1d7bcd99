"""Analytic memory model: what each layer of a zoo network stores for backward, per memory mode.

:func:`predict_saved_bytes` walks a :mod:`revsnn.models` network layer by layer, tracks the shape of
every activation and lists each tensor autograd keeps for backward, with its size. A tensor kept by
two layers (a node's output that the next conv also keeps as its input) is listed once, at the layer
that keeps it first, and the later layer's row says ``shared``. The total is what
:func:`revsnn.measure.saved_tensor_bytes` counts as ``saved_bytes`` (storage-deduplicated, parameters
excluded); ``tests/test_memory_model.py`` checks the two agree.

What is stored, per neuron-step (N = T·B·C·H·W elements of a layer's output, s = itemsize):

======================  ============================================================================
layer                   stores
======================  ============================================================================
conv / linear           its input (the previous layer's output; shared when already kept)
BatchNorm (autograd)    its input x (s·N) and the per-channel batch mean and 1/σ
LIF, SpikingJelly LIF   H − θ (surrogate), 1 − S and H (hard reset): 3·s·N; soft reset: H − θ only
LIF under checkpoint    its input (s·N); recomputes the rest in backward
ReversibleLIF autograd  H − θ of both groups: s·N
ReversibleLIF fused /   its output Y (s·N, shared with the next layer) and the final membranes
  revnet                (s·N/T); reconstructs its input and all membranes in backward
BN fused into the node  the residual code (1 byte per element, 2 with 16-bit codes) and 1/σ; not x
  (fused / revnet)      (NOTE [BN + node fusion] in :mod:`revsnn.models.bn_node`)
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
        self._next = 0

    def new(self, shape) -> tuple:
        """A fresh activation: ``(id, per-step-per-sample shape)``."""
        self._next += 1
        return (self._next, tuple(int(v) for v in shape))

    def n(self, shape) -> int:
        return self.T * self.batch * math.prod(shape)

    def keep(self, layer: str, kind: str, what: str, act=None, *, elements: Optional[int] = None,
             shape=None, itemsize: Optional[int] = None):
        """Record a stored tensor: an activation ``act`` (deduplicated) or a fresh one."""
        shared = False
        if act is not None:
            shape = act[1]
            elements = self.n(shape)
            shared = act[0] in self.kept
            self.kept.add(act[0])
        itemsize = self.s if itemsize is None else itemsize
        self.rows.append(dict(layer=layer, kind=kind, tensor=what,
                              shape="×".join(map(str, shape)) if shape else "",
                              elements=int(elements), itemsize=int(itemsize),
                              bytes=0 if shared else int(elements) * int(itemsize),
                              shared=shared))


def _stats_itemsize(dtype: torch.dtype) -> int:
    return max(torch.empty((), dtype=dtype).element_size(), 4)


def _conv_out(conv: nn.Conv2d, shape):
    c, h, w = shape
    k, st, p, d = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    ho = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // st[0] + 1
    wo = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // st[1] + 1
    return (conv.out_channels, ho, wo)


def _node(acc: _Accountant, name: str, node: nn.Module, z, out):
    """Rows for a spiking node with input activation ``z`` and output ``out``."""
    from .baselines import SpikingJellyLIF
    from .modes import Checkpointed
    from .neuron import LIF
    from .reversible import ReversibleLIF

    n = acc.n(out[1])
    if isinstance(node, (LIF, SpikingJellyLIF)):
        v_reset = node.params.v_reset if isinstance(node, LIF) else node.node.v_reset
        per_step = 3 if v_reset is not None else 1
        kind = "LIF" if isinstance(node, LIF) else "SpikingJelly LIFNode"
        what = "H−θ, 1−S, H per step" if per_step == 3 else "H−θ per step"
        acc.keep(name, kind, what, elements=per_step * n, shape=out[1])
    elif isinstance(node, Checkpointed):
        acc.keep(name, "LIF (checkpoint)", "node input (recomputed from it)", z)
    elif isinstance(node, ReversibleLIF):
        cd = torch.empty((), dtype=node.compute_dtype(acc.dtype)).element_size()
        if node.backward_algorithm == "autograd":
            acc.keep(name, "ReversibleLIF (autograd)", "H−θ of both groups per step",
                     elements=n, shape=out[1], itemsize=cd)
        else:
            acc.keep(name, f"ReversibleLIF ({node.backward_algorithm})", "output Y", out)
            acc.keep(name, f"ReversibleLIF ({node.backward_algorithm})", "final membranes V₁, V₂",
                     elements=n // acc.T, shape=out[1], itemsize=cd)
    else:
        raise TypeError(f"memory model: unknown node type {type(node).__name__}")


def _conv_bn_node(acc: _Accountant, name: str, block, x, addend=None):
    from .models.bn_node import can_fuse, residual_bits

    acc.keep(f"{name}.conv", "conv", "input", x)
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
    c, h, w = x[1]
    k = pool.kernel_size
    if h < k or w < k:
        return x
    acc.keep(name, "max pool", "input", x)
    shape = (c, h // k, w // k)
    acc.keep(name, "max pool", "argmax indices (int64)", elements=acc.n(shape), shape=shape,
             itemsize=8)
    return acc.new(shape)


def _readout(acc: _Accountant, name: str, head, x):
    c = x[1][0]
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
    from .models.layers import ConvBNNode, SeqMaxPool
    from .models.resnet import BasicBlock

    if isinstance(layer, ConvBNNode):
        return _conv_bn_node(acc, name, layer, x)
    if isinstance(layer, SeqMaxPool):
        return _maxpool(acc, name, layer, x)
    if isinstance(layer, BasicBlock):
        h = _conv_bn_node(acc, f"{name}.conv1", layer.conv1, x)
        a = x if layer.shortcut is None else _conv_bn(acc, f"{name}.shortcut", layer.shortcut, x)
        return _conv_bn_node(acc, f"{name}.conv2", layer.conv2, h, addend=a)
    raise TypeError(f"memory model: no rule for layer {name} ({type(layer).__name__})")


def predict_saved_bytes(model_or_arch, mode=None, *, T: int = 4, batch: int = 1,
                        image_size: int = 32, dtype="float32", in_channels: Optional[int] = None,
                        num_classes: int = 10, node_kwargs: Optional[dict] = None,
                        fuse_bn: bool = True):
    """Predicted bytes saved for backward, one row per stored tensor of each layer.

    ``model_or_arch`` is a :class:`revsnn.models.SpikingNet` (its nodes and BN weights are used as
    they are; ``mode`` must then be None) or a zoo name built with ``mode`` (a MemoryMode value or
    ``"spikingjelly"``), ``node_kwargs`` and ``fuse_bn``. Returns a pandas DataFrame with columns
    layer, kind, tensor, shape (per sample and step), elements, itemsize, bytes, shared (kept
    already by an earlier layer: 0 bytes here); ``df.attrs["total_bytes"]`` is the sum, the
    predicted ``saved_bytes`` of :mod:`revsnn.measure` for a static input ``[batch, C, S, S]``.
    """
    import pandas as pd

    from .measure import parse_dtype
    from .models import SpikingNet, build

    if isinstance(model_or_arch, SpikingNet):
        if mode is not None:
            raise ValueError("predict_saved_bytes: pass mode only with an architecture name")
        model = model_or_arch
        in_channels = model.config.get("in_channels", 3) if in_channels is None else in_channels
    else:
        model = build(str(model_or_arch), mode if mode is not None else "bptt",
                      in_channels=in_channels, num_classes=num_classes, node_kwargs=node_kwargs,
                      T=T, fuse_bn=fuse_bn, seed=0)
        in_channels = model.config["in_channels"]
    for name, val in (("T", T), ("batch", batch), ("image_size", image_size)):
        if int(val) < 1:
            raise ValueError(f"predict_saved_bytes: {name} must be >= 1, got {val}")
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
