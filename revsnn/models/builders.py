"""One code path from the configuration tables (:mod:`revsnn.models.configs`) to a
:class:`~revsnn.models.SpikingNet`, for every strategy.

Each builder takes a :class:`~revsnn.layers.units.NodeSpec` (a strategy and the node
hyperparameters); the spec decides what a conv-BN-node stage is (:meth:`NodeSpec.conv_unit`):

- revsnn's and SpikingJelly's nodes: ``[SeqMaxPool →] ConvBNNode``; heads as in the tables.
- the binary node family: :class:`~revsnn.BinarySpikingUnit`, with each max pool folded into the
  next unit's synapse, so every activation the network keeps is a packed spike tensor. A last pool
  before a global average is dropped and the head averages over time and space before its linear
  layer (:class:`MeanReadout`): keeping it would store the last spikes in float (for VGG's 2×2 map
  this replaces max-then-average pooling by averaging).
- the reversible-block ResNets: stages of :class:`~revsnn.layers.reversible.RevSequence`, reversible for the
  ``blocks`` strategy and plain otherwise.
"""

from __future__ import annotations

from torch import nn

from .configs import CONVNET_CONFIGS, RESNET_CONFIGS, REVRESNET_CONFIGS, VGG_CONFIGS
from ..layers.containers import SeqMaxPool
from ..layers.units import BasicBlock, ConvBNNode, MeanReadout, NodeSpec, Readout
from .net import SpikingNet

__all__ = ["spiking_vgg", "spiking_convnet", "spiking_resnet", "rev_spiking_resnet", "conv_stack"]


def _spec(spec) -> NodeSpec:
    return spec if isinstance(spec, NodeSpec) else NodeSpec(spec)


def conv_stack(cfg, spec: NodeSpec, in_channels: int) -> tuple:
    """``(layers, channels, pool_pending)`` for a channel list (``"M"`` = 2×2 max pool): each pool
    goes before the next stage (folded into it for binary units); a trailing pool is returned as
    pending."""
    layers, c, pending = [], in_channels, False
    for v in cfg:
        if v == "M":
            if pending:
                layers.append(SeqMaxPool(2))
            pending = True
            continue
        layers += spec.conv_unit(c, int(v), pool=pending)
        c, pending = int(v), False
    return layers, c, pending


def _classifier(spec: NodeSpec, layers: list, channels: int, num_classes: int, pending: bool,
                pool_size: int = 1, hidden: int = 0):
    """The head after ``layers`` (see the module docstring for the binary units' head)."""
    if spec.units and pool_size == 1 and not hidden:
        return MeanReadout(channels, num_classes)
    if pending:
        layers.append(SeqMaxPool(2))
    return Readout(channels, num_classes, pool_size=pool_size, hidden=hidden, spec=spec)


def spiking_vgg(name, spec, *, in_channels: int = 3, num_classes: int = 10,
                **net_kw) -> SpikingNet:
    """A spiking VGG from :data:`VGG_CONFIGS` (a name, or a channel list like its entries)."""
    spec = _spec(spec)
    cfg = VGG_CONFIGS[name] if isinstance(name, str) else tuple(name)
    layers, c, pending = conv_stack(cfg, spec, in_channels)
    head = _classifier(spec, layers, c, num_classes, pending)
    return SpikingNet(nn.Sequential(*layers), head, spec, **net_kw)


def spiking_convnet(spec, *, in_channels: int = 1, num_classes: int = 10, name: str = "convnet",
                    **net_kw) -> SpikingNet:
    """The digits ConvNet of :data:`CONVNET_CONFIGS`; its average pool makes the head
    independent of the input size, so one model serves 28×28 MNIST and 8×8 digits."""
    spec = _spec(spec)
    cfg, pool_size = CONVNET_CONFIGS[name]
    layers, c, pending = conv_stack(cfg, spec, in_channels)
    head = _classifier(spec, layers, c, num_classes, pending, pool_size=pool_size)
    return SpikingNet(nn.Sequential(*layers), head, spec, **net_kw)


def spiking_resnet(name: str, spec, *, in_channels: int = 3, num_classes: int = 10,
                   **net_kw) -> SpikingNet:
    """Spiking ResNet-18/19 of :data:`RESNET_CONFIGS` (basic blocks, node after the addition)."""
    spec = _spec(spec)
    stem, stages, hidden = RESNET_CONFIGS[name]
    layers, c = [ConvBNNode(in_channels, stem, spec)], stem
    for channels, blocks, stride in stages:
        for i in range(blocks):
            layers.append(BasicBlock(c, channels, stride if i == 0 else 1, spec))
            c = channels
    head = Readout(c, num_classes, hidden=hidden, spec=spec)
    return SpikingNet(nn.Sequential(*layers), head, spec, **net_kw)


def rev_spiking_resnet(name: str, spec="blocks", *, width: int = 32, num_classes: int = 10,
                       in_channels: int = 3, grid_bits=12, **net_kw) -> SpikingNet:
    """A reversible-block ResNet of :data:`REVRESNET_CONFIGS` (RevSNN-style).

    stem ConvBNNode(C_in → w) → stage 1: RevSequence(n₁ blocks, w) → ConvBNNode(w → 2w, stride 2)
    → stage 2: RevSequence(n₂, 2w) → ConvBNNode(2w → 4w, stride 2) → stage 3: RevSequence(n₃, 4w)
    → mean over T and space → Linear(4w → classes). Inside a block F and G are
    ConvBNNode(c/2 → c/2). The stem and the two downsampling layers are ordinary (they store their
    inputs); with the ``blocks`` strategy the stacks store only their outputs, so memory for
    backward does not grow with depth; with any other strategy they run plainly.

    >>> import torch
    >>> net = rev_spiking_resnet("revresnet_s", width=4, num_classes=3)
    >>> net(torch.rand(2, 1, 3, 8, 8)).shape
    torch.Size([1, 3])
    """
    from ..layers.reversible import RevBlock, RevSequence

    spec = _spec(spec)
    try:
        blocks_per_stage = REVRESNET_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(REVRESNET_CONFIGS)}") \
            from None
    if width < 2 or width % 2:
        raise ValueError(f"rev_spiking_resnet: width must be even and >= 2, got {width}")
    mode = "reversible" if spec.strategy.blocks == "reversible" else "plain"
    widths = [width * 2 ** i for i in range(len(blocks_per_stage))]
    layers = [ConvBNNode(in_channels, widths[0], spec)]
    for i, (n, w) in enumerate(zip(blocks_per_stage, widths)):
        if i > 0:
            layers.append(ConvBNNode(widths[i - 1], w, spec, stride=2))
        blocks = [RevBlock(ConvBNNode(w // 2, w // 2, spec), ConvBNNode(w // 2, w // 2, spec))
                  for _ in range(n)]
        layers.append(RevSequence(blocks, grid_bits=grid_bits, mode=mode))
    return SpikingNet(nn.Sequential(*layers), MeanReadout(widths[-1], num_classes), spec,
                      **net_kw)
