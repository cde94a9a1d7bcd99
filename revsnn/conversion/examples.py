"""Networks written the way users write them, outside the zoo, for :func:`revsnn.convert` and
``--model revsnn.conversion.examples:<factory>``; each factory has the zoo's VGG layer order, so
a converted one can be measured against the zoo's.

- :func:`plain_vgg` / :func:`plain_vgg11`: plain PyTorch (``nn.Conv2d``, ``nn.BatchNorm2d``,
  ``F.max_pool2d``) applied per step to the folded ``[T·B, ...]`` batch by hand-written
  ``forward`` code, revsnn's :class:`~revsnn.LIF` nodes (any multi-step node via ``node=``).
- :func:`spikingjelly_vgg` / :func:`spikingjelly_vgg11`: SpikingJelly's step-mode ``layer`` and
  ``neuron`` modules in ``nn.Sequential``, ``functional.set_step_mode(net, "m")``.
- :func:`sew_resnet`: SpikingJelly SEW-ResNet-style residual blocks (``SeqToANNContainer`` conv-BN,
  the shortcut added after the node).

They import nothing from revsnn but its nodes (the plain VGG's default node).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VGG11", "plain_vgg", "plain_vgg11", "spikingjelly_vgg", "spikingjelly_vgg11",
           "sew_resnet", "PlainVGG", "SEWBlock"]

VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
"""VGG-11's channels, ``"M"`` a 2×2 max pool (the zoo's ``vgg11``)."""


class PlainVGG(nn.Module):
    """A spiking VGG in plain PyTorch: every conv and BN runs on the folded batch, the nodes on the
    sequence ``[T, B, C, H, W]``; global average pool and a linear layer per step."""

    def __init__(self, cfg=VGG11, num_classes: int = 10, in_channels: int = 3, node=None):
        super().__init__()
        if node is None:
            from ..nodes.lif import LIF
            node = LIF
        self.convs, self.bns, self.sns = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.pool_before, pool, c = [], False, in_channels
        for v in cfg:
            if v == "M":
                pool = True
                continue
            self.convs.append(nn.Conv2d(c, v, 3, padding=1, bias=False))
            self.bns.append(nn.BatchNorm2d(v))
            self.sns.append(node())
            self.pool_before.append(pool)
            pool, c = False, v
        self.pool_last = pool
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[0], x.shape[1]
        for conv, bn, sn, pool in zip(self.convs, self.bns, self.sns, self.pool_before):
            y = x.flatten(0, 1)
            if pool:
                y = F.max_pool2d(y, 2)
            y = bn(conv(y))
            x = sn(y.unflatten(0, (T, B)))
        y = x.flatten(0, 1)
        if self.pool_last:
            y = F.max_pool2d(y, 2)
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return self.fc(y).view(T, B, -1)


def plain_vgg(cfg=VGG11, num_classes: int = 10, in_channels: int = 3, node=None) -> PlainVGG:
    return PlainVGG(cfg, num_classes, in_channels, node)


def plain_vgg11(num_classes: int = 10, in_channels: int = 3) -> PlainVGG:
    """VGG-11 in plain PyTorch with revsnn's LIF nodes."""
    return PlainVGG(VGG11, num_classes, in_channels)


def spikingjelly_vgg(cfg=VGG11, num_classes: int = 10, in_channels: int = 3,
                     node=None) -> nn.Sequential:
    """A spiking VGG from SpikingJelly's ``layer`` and ``neuron`` modules (multi-step)."""
    from spikingjelly.activation_based import functional, layer, neuron

    node = node or neuron.LIFNode
    layers, c = [], in_channels
    for v in cfg:
        if v == "M":
            layers.append(layer.MaxPool2d(2, 2))
            continue
        layers += [layer.Conv2d(c, v, 3, padding=1, bias=False), layer.BatchNorm2d(v), node()]
        c = v
    net = nn.Sequential(nn.Sequential(*layers),
                        nn.Sequential(layer.AdaptiveAvgPool2d(1), layer.Flatten(),
                                      layer.Linear(c, num_classes)))
    functional.set_step_mode(net, "m")
    return net


def spikingjelly_vgg11(num_classes: int = 10, in_channels: int = 3) -> nn.Sequential:
    """VGG-11 from SpikingJelly's layers and ``LIFNode``."""
    return spikingjelly_vgg(VGG11, num_classes, in_channels)


class SEWBlock(nn.Module):
    """SEW-ResNet's basic block (Fang et al. 2021) with the ADD connection: two
    ``SeqToANNContainer(conv, BN)`` → node stages, the block input added to the second node's
    spikes."""

    def __init__(self, channels: int, node=None):
        super().__init__()
        from spikingjelly.activation_based import layer, neuron

        node = node or neuron.LIFNode
        self.conv1 = layer.SeqToANNContainer(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.sn1 = node(step_mode="m")
        self.conv2 = layer.SeqToANNContainer(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.sn2 = node(step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.sn1(self.conv1(x))
        out = self.sn2(self.conv2(out))
        return out + x


def sew_resnet(num_classes: int = 10, in_channels: int = 3, width: int = 16,
               blocks: int = 2) -> nn.Sequential:
    """A small SEW-ResNet: stem conv-BN-node, ``blocks`` SEW blocks, average pool, linear."""
    from spikingjelly.activation_based import layer, neuron

    return nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                nn.BatchNorm2d(width)),
        neuron.LIFNode(step_mode="m"),
        *[SEWBlock(width) for _ in range(blocks)],
        layer.SeqToANNContainer(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width,
                                                                                 num_classes)))
