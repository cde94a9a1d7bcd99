"""Building blocks of the spiking networks: time-folded layers, conv-BN-node blocks, node factory.

Every tensor between blocks is time first, ``[T, B, C, H, W]`` (SpikingJelly's multi-step mode).
Stateless layers (conv, BN, pooling, linear) run on all timesteps at once with time folded into the
batch, ``[T·B, C, H, W]`` (:class:`SeqToANN`, like SpikingJelly's ``SeqToANNContainer``), so BN
statistics are taken over T·B·H·W. Spiking nodes see the whole sequence.

>>> import torch
>>> block = ConvBNNode(4, 8, NodeSpec("fused"))
>>> block(torch.randn(3, 2, 4, 6, 6)).shape
torch.Size([3, 2, 8, 6, 6])
"""

from __future__ import annotations

import torch
from torch import nn

from ..modes import Checkpointed, MemoryMode, make_node
from ..neuron import LIF
from ..reversible import ReversibleLIF
from .bn_node import apply_bn_node

__all__ = ["NodeSpec", "SeqToANN", "SeqMaxPool", "ConvBNNode", "LinearNode", "Readout",
           "NODE_TYPES", "is_node"]

NODE_KINDS = ("revsnn", "spikingjelly")


class NodeSpec:
    """Which node every block gets: a memory mode (or SpikingJelly's LIFNode) and its hyperparameters.

    ``kind="spikingjelly"`` builds :class:`revsnn.baselines.SpikingJellyLIF` (plain BPTT, the
    comparison baseline) and ignores ``mode``. ``fuse_bn`` lets reversible modes with a fused or
    revnet backward fuse BatchNorm into the node (:mod:`revsnn.models.bn_node`).
    """

    def __init__(self, mode=MemoryMode.BPTT, kwargs=None, kind: str = "revsnn",
                 fuse_bn: bool = True):
        if kind not in NODE_KINDS:
            raise ValueError(f"node kind must be one of {NODE_KINDS}, got {kind!r}")
        self.mode = MemoryMode.parse(mode)
        self.kwargs = dict(kwargs or {})
        self.kind = kind
        self.fuse_bn = bool(fuse_bn)

    def __repr__(self) -> str:
        return (f"NodeSpec(mode={self.mode.value!r}, kwargs={self.kwargs!r}, kind={self.kind!r}, "
                f"fuse_bn={self.fuse_bn})")

    def make(self) -> nn.Module:
        """A fresh node module."""
        if self.kind == "spikingjelly":
            from ..baselines import SpikingJellyLIF
            return SpikingJellyLIF(**self.kwargs)
        return make_node(self.mode, **self.kwargs)


def _spikingjelly_node_type():
    try:
        from ..baselines import SpikingJellyLIF
        return (SpikingJellyLIF,)
    except ImportError:  # pragma: no cover - baselines imports nothing optional at module level
        return ()


NODE_TYPES = (LIF, Checkpointed, ReversibleLIF) + _spikingjelly_node_type()
"""Module types that are spiking nodes (what a mode switch replaces)."""


def is_node(module: nn.Module) -> bool:
    return isinstance(module, NODE_TYPES)


class SeqToANN(nn.Module):
    """Apply stateless ``module`` to every timestep at once: ``[T, B, ...] → [T·B, ...] → [T, B, ...]``."""

    def __init__(self, *modules: nn.Module):
        super().__init__()
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(x.flatten(0, 1))
        return y.view(x.shape[0], x.shape[1], *y.shape[1:])


class SeqMaxPool(nn.Module):
    """2-d max pooling over ``[T, B, C, H, W]``; the identity when H or W is below the kernel size
    (so that deep VGGs accept small images)."""

    def __init__(self, kernel_size: int = 2):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size)
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.kernel_size or x.shape[-2] < self.kernel_size:
            return x
        y = self.pool(x.flatten(0, 1))
        return y.view(x.shape[0], x.shape[1], *y.shape[1:])


def _check_even(channels: int, spec: NodeSpec, where: str) -> None:
    if spec.kind == "revsnn" and spec.mode.is_reversible and channels % 2:
        raise ValueError(f"{where}: {channels} channels; the reversible node needs an even count")


class ConvBNNode(nn.Module):
    """``conv k×k (no bias) → BatchNorm → node`` on ``[T, B, C, H, W]``.

    With a reversible node whose backward is fused/revnet, BN and node run as one
    :class:`~revsnn.models.bn_node.BNNodeFunction` (the BN input is not stored). ``forward`` takes
    an optional ``addend`` added between BN and node (a residual shortcut).
    """

    def __init__(self, in_channels: int, out_channels: int, spec: NodeSpec, kernel_size: int = 3,
                 stride: int = 1, padding=None):
        super().__init__()
        _check_even(out_channels, spec, type(self).__name__)
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.node = spec.make()
        self.fuse_bn = spec.fuse_bn

    def forward(self, x: torch.Tensor, addend=None) -> torch.Tensor:
        y = self.conv(x.flatten(0, 1))
        return apply_bn_node(y, self.bn, self.node, x.shape[0], addend=addend, fuse=self.fuse_bn)


class ConvBN(nn.Module):
    """``conv → BatchNorm`` on ``[T, B, C, H, W]`` without a node (a downsampling shortcut)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x.flatten(0, 1)))
        return y.view(x.shape[0], x.shape[1], *y.shape[1:])


class LinearNode(nn.Module):
    """``linear → node`` on ``[T, B, F]`` (a hidden fully connected layer)."""

    def __init__(self, in_features: int, out_features: int, spec: NodeSpec):
        super().__init__()
        _check_even(out_features, spec, type(self).__name__)
        self.fc = nn.Linear(in_features, out_features)
        self.node = spec.make()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.node(self.fc(x))


class Readout(nn.Module):
    """Classifier head: average pool to ``pool_size``², flatten, linear; logits ``[T, B, K]``.

    ``hidden`` inserts ``linear → node`` (:class:`LinearNode`) before the output layer.
    """

    def __init__(self, channels: int, num_classes: int, pool_size: int = 1,
                 hidden: int = 0, spec: "NodeSpec | None" = None):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        features = channels * pool_size * pool_size
        self.hidden = LinearNode(features, hidden, spec) if hidden else None
        self.fc = nn.Linear(hidden or features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.pool(x.flatten(0, 1)).flatten(1).view(T, B, -1)
        if self.hidden is not None:
            y = self.hidden(y)
        return self.fc(y)
