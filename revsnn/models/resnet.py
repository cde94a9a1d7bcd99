"""Spiking ResNets with a CIFAR stem (3×3 conv, no initial max pool).

Basic block (spiking ResNet of SpikingJelly / tdBN, node after the addition)::

    out = node₂( BN₂(conv₂( node₁(BN₁(conv₁(x))) )) + shortcut(x) )

``shortcut`` is the identity, or ``conv1×1(stride)-BN`` when the shape changes.

- ResNet-18: stem 64; stages [2, 2, 2, 2] blocks with 64/128/256/512 channels (strides 1, 2, 2, 2).
- ResNet-19 (Zheng et al. 2021, "Going Deeper With Directly-Trained Larger SNNs", tdBN): stem 128;
  stages [3, 3, 2] with 128/256/512 channels (strides 1, 2, 2); global average pool, a 256-unit
  linear-node layer, linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBN, ConvBNNode, NodeSpec, Readout
from .net import SpikingNet

__all__ = ["BasicBlock", "RESNET_CONFIGS", "spiking_resnet"]


class BasicBlock(nn.Module):
    """Two conv-BN-node layers with a shortcut added before the second node."""

    def __init__(self, in_channels: int, channels: int, stride: int, spec: NodeSpec):
        super().__init__()
        self.conv1 = ConvBNNode(in_channels, channels, spec, 3, stride)
        self.conv2 = ConvBNNode(channels, channels, spec, 3, 1)
        self.shortcut = (ConvBN(in_channels, channels, 1, stride)
                         if stride != 1 or in_channels != channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x if self.shortcut is None else self.shortcut(x)
        return self.conv2(self.conv1(x), addend=a)


RESNET_CONFIGS = {
    # stem channels, ((channels, blocks, stride), ...), hidden units of the head
    "resnet18": (64, ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)), 0),
    "resnet19": (128, ((128, 3, 1), (256, 3, 2), (512, 2, 2)), 256),
}


def spiking_resnet(name: str, spec: NodeSpec, *, in_channels: int = 3, num_classes: int = 10,
                   **net_kw) -> SpikingNet:
    stem, stages, hidden = RESNET_CONFIGS[name]
    layers, c = [ConvBNNode(in_channels, stem, spec)], stem
    for channels, blocks, stride in stages:
        for i in range(blocks):
            layers.append(BasicBlock(c, channels, stride if i == 0 else 1, spec))
            c = channels
    head = Readout(c, num_classes, hidden=hidden, spec=spec)
    return SpikingNet(nn.Sequential(*layers), head, spec, **net_kw)
