"""The units the zoo's networks are made of: conv-BN-node units, the binary units that recompute
their synapse, residual blocks and classifier heads, all over time-first ``[T, B, C, H, W]``.

Stateless layers (conv, BN, pooling, linear) run on all timesteps at once with time folded into the
batch (:mod:`revsnn.layers.containers`), so BN statistics are taken over T·B·H·W; spiking nodes see
the whole sequence.

:class:`NodeSpec` carries one strategy (a preset of :mod:`revsnn.strategy`) and the node
hyperparameters to every layer, and builds each layer's conv-BN-node unit: a :class:`ConvBNNode`,
or for the binary node family a :class:`~revsnn.BinarySpikingUnit` that recomputes its synapse.

>>> import torch
>>> block = ConvBNNode(4, 8, NodeSpec("fused"))
>>> block(torch.randn(3, 2, 4, 6, 6)).shape
torch.Size([3, 2, 8, 6, 6])
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

import torch
from torch import nn

from .. import strategy as _strategy
from ..nodes.base import SpikingNode, check_sequence
from ..nodes.binary import BinaryReversibleLIF, _apply
from .bn_node import apply_bn_node
from .containers import FitMaxPool2d, SeqMaxPool

__all__ = ["NodeSpec", "ConvBNNode", "ConvBN", "LinearNode", "Readout", "MeanReadout",
           "BasicBlock", "BinarySpikingUnit", "is_node"]


class NodeSpec:
    """Which node every layer gets: a strategy (a preset, its name or a MemoryMode) and the node
    hyperparameters.

    ``fuse_bn`` overrides the preset's BatchNorm fusion where the strategy can fuse (``False``
    never fuses); the spec then names the preset of the resulting strategy (``"fused"`` with
    ``fuse_bn=False`` is ``"fused_nobn"``).

    >>> NodeSpec("fused", fuse_bn=False).preset.name
    'fused_nobn'
    """

    def __init__(self, mode="bptt", kwargs: Optional[dict] = None,
                 fuse_bn: Optional[bool] = None):
        preset = _strategy.get(mode)
        strat = preset.strategy
        if fuse_bn is not None:
            can = strat.node == "reversible" and strat.backward != "autograd"
            strat = dataclasses.replace(strat, fuse_bn=bool(fuse_bn) and can)
        self.strategy = strat
        self.preset = _strategy.preset_for(strat) or preset
        self.kwargs = dict(kwargs or {})

    @property
    def fuse_bn(self) -> bool:
        return self.strategy.fuse_bn

    @property
    def units(self) -> bool:
        """Whether conv-BN-node layers are recomputing binary units (the binary node family)."""
        return self.strategy.node == "binary"

    def __repr__(self) -> str:
        return f"NodeSpec({self.preset.name!r}, kwargs={self.kwargs!r})"

    def make(self) -> nn.Module:
        """A fresh node module."""
        return _strategy._node_for(self.strategy, **self.kwargs)

    def check_channels(self, channels: int, where: str) -> None:
        if self.strategy.node == "reversible" and not self.strategy.uses_spikingjelly \
                and channels % 2:
            raise ValueError(f"{where}: {channels} channels; the reversible node needs an even "
                             f"count")

    def conv_unit(self, in_channels: int, out_channels: int, *, pool: bool = False) -> list:
        """The layers of one ``[pool →] conv3×3 → BN → node`` stage.

        Binary units fold the pool into the synapse they recompute (every activation they keep is
        then a packed spike tensor); otherwise the pool is its own :class:`SeqMaxPool`.
        """
        if self.units:
            synapse = ([FitMaxPool2d(2)] if pool else []) + [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels)]
            return [BinarySpikingUnit(nn.Sequential(*synapse), self.make())]
        return ([SeqMaxPool(2)] if pool else []) + [ConvBNNode(in_channels, out_channels, self)]


def is_node(module: nn.Module) -> bool:
    """Whether ``module`` is a spiking node: it implements the node protocol
    (:class:`~revsnn.nodes.base.SpikingNode`; a wrapper such as :class:`~revsnn.Checkpointed`
    counts)."""
    return isinstance(module, SpikingNode)


NodeLike = Union[NodeSpec, nn.Module, None]


def _node(node: NodeLike) -> nn.Module:
    if isinstance(node, NodeSpec):
        return node.make()
    if node is None:
        from ..nodes.lif import LIF
        return LIF()
    return node


class ConvBNNode(nn.Module):
    """``conv k×k (no bias) → BatchNorm → node`` on ``[T, B, C, H, W]``.

    ``node`` is a :class:`NodeSpec` (the zoo), a node module, or None (a default :class:`~revsnn.LIF`).
    With a reversible node whose backward is fused/revnet and BN fusion on, BN and node run as one
    :class:`~revsnn.layers.bn_node.BNNodeFunction` (the BN input is not stored). ``forward`` takes
    an optional ``addend`` added between BN and node (a residual shortcut).
    """

    def __init__(self, in_channels: int, out_channels: int, node: NodeLike = None,
                 kernel_size: int = 3, stride: int = 1, padding=None):
        super().__init__()
        if isinstance(node, NodeSpec):
            node.check_channels(out_channels, type(self).__name__)
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.node = _node(node)
        self.fuse_bn = node.fuse_bn if isinstance(node, NodeSpec) else False

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

    def __init__(self, in_features: int, out_features: int, node: NodeLike):
        super().__init__()
        if isinstance(node, NodeSpec):
            node.check_channels(out_features, type(self).__name__)
        self.fc = nn.Linear(in_features, out_features)
        self.node = _node(node)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.node(self.fc(x))


class Readout(nn.Module):
    """Classifier head: average pool to ``pool_size``², flatten, linear; logits ``[T, B, K]``.

    ``hidden`` inserts ``linear → node`` (:class:`LinearNode`) before the output layer.
    """

    def __init__(self, channels: int, num_classes: int, pool_size: int = 1,
                 hidden: int = 0, spec: NodeLike = None):
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


class MeanReadout(nn.Module):
    """Classifier head: the mean over time and space, then one linear layer; logits ``[B, K]``.

    Equal to :class:`Readout` with a global average pool up to float rounding (the layer is
    linear), but it keeps only the ``[B, C]`` mean for backward, not a ``[T, B, C]`` tensor.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(0, *range(3, x.dim()))))


class BasicBlock(nn.Module):
    """Two conv-BN-node layers with a shortcut added before the second node (ResNet basic block)::

        out = node₂( BN₂(conv₂( node₁(BN₁(conv₁(x))) )) + shortcut(x) )

    ``shortcut`` is the identity, or ``conv1×1(stride)-BN`` when the shape changes.
    """

    def __init__(self, in_channels: int, channels: int, stride: int, spec: NodeSpec):
        super().__init__()
        self.conv1 = ConvBNNode(in_channels, channels, spec, 3, stride)
        self.conv2 = ConvBNNode(channels, channels, spec, 3, 1)
        self.shortcut = (ConvBN(in_channels, channels, 1, stride)
                         if stride != 1 or in_channels != channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x if self.shortcut is None else self.shortcut(x)
        return self.conv2(self.conv1(x), addend=a)


class BinarySpikingUnit(nn.Module):
    """Synapse (e.g. [pool →] conv → BatchNorm) followed by a :class:`BinaryReversibleLIF`.

    The synapse maps one step ``[B, ...]`` (it is applied to the merged ``T·B`` batch); the unit
    maps ``[T, B, ...]`` to binary spikes ``[T, B, ...]``. A binary input (the previous unit's
    spikes) is saved packed — the very tensor the previous unit saved, so it is counted once — and
    the synapse is recomputed in backward; an analog input (an image) is kept by reference. See NOTE
    [what is stored, and where the input comes from].

    Args:
        synapse: module applied per step (on ``T·B``); its BatchNorms are frozen and its RNG
            replayed when recomputed.
        node: the :class:`BinaryReversibleLIF` (default: ``BinaryReversibleLIF()``). With
            ``backward="autograd"`` the unit is plain autograd (synapse and node), the reference.
        pack_input: save a binary input packed (default True); False keeps it by reference.

    >>> unit = BinarySpikingUnit(nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)))
    >>> s = unit((torch.rand(3, 2, 2, 5, 5) > 0.5).float())
    >>> s.shape, bool(((s == 0) | (s == 1)).all())
    (torch.Size([3, 2, 4, 5, 5]), True)
    """

    def __init__(self, synapse: nn.Module, node: Optional[BinaryReversibleLIF] = None,
                 pack_input: bool = True):
        super().__init__()
        self.synapse = synapse
        self.node = node if node is not None else BinaryReversibleLIF()
        if not isinstance(self.node, BinaryReversibleLIF):
            raise TypeError("BinarySpikingUnit: node must be a BinaryReversibleLIF")
        self.pack_input = pack_input

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        """Spikes ``[T, B, ...]`` (and the node's final membrane, as :meth:`BinaryReversibleLIF.forward`)."""
        check_sequence(x, node="BinarySpikingUnit")
        self.node._refuse_state(state)
        spikes, v = _apply(self.node, self.synapse, x, self.pack_input)
        return (spikes, v) if return_state else spikes
