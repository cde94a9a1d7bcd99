"""A small spiking ConvNet for digits (28×28 MNIST, 8×8 scikit-learn digits, any size ≥ 4×4):
``[conv3×3-BN-node, maxpool]`` × 2 with 32/64 channels, average pooling to 2×2, linear classifier.

The average pool makes the head independent of the input size, so one model class serves both
digit sets.
"""

from __future__ import annotations

from torch import nn

from .layers import ConvBNNode, NodeSpec, Readout, SeqMaxPool
from .net import SpikingNet

__all__ = ["spiking_convnet"]


def spiking_convnet(spec: NodeSpec, *, in_channels: int = 1, num_classes: int = 10,
                    channels=(32, 64), **net_kw) -> SpikingNet:
    layers, c = [], in_channels
    for ch in channels:
        layers += [ConvBNNode(c, ch, spec), SeqMaxPool(2)]
        c = ch
    return SpikingNet(nn.Sequential(*layers), Readout(c, num_classes, pool_size=2), spec, **net_kw)
