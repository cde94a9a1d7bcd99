"""Spiking VGG-11/13/16 for 32×32 inputs: ``[conv3×3-BN-node]×n`` stages with 2×2 max pooling,
then global average pooling and one linear classifier (the usual CIFAR form of VGG in SNN papers).

A pool is skipped once the feature map is smaller than 2×2, so smaller images also run.
"""

from __future__ import annotations

from torch import nn

from .layers import ConvBNNode, NodeSpec, Readout, SeqMaxPool
from .net import SpikingNet

__all__ = ["VGG_CONFIGS", "spiking_vgg"]

VGG_CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
}
"""Channels per conv block, ``"M"`` for a 2×2 max pool."""


def spiking_vgg(cfg, spec: NodeSpec, *, in_channels: int = 3, num_classes: int = 10,
                **net_kw) -> SpikingNet:
    """A spiking VGG from a channel list like :data:`VGG_CONFIGS` entries."""
    layers, c = [], in_channels
    for v in cfg:
        if v == "M":
            layers.append(SeqMaxPool(2))
        else:
            layers.append(ConvBNNode(c, int(v), spec))
            c = int(v)
    return SpikingNet(nn.Sequential(*layers), Readout(c, num_classes), spec, **net_kw)
