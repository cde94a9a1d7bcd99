"""The zoo's architectures as time-major networks (:class:`~revsnn.temporal.TemporalNetwork`).

Each is built from the zoo's own configuration tables, so the layer sequence equals the layer-major
model of the same name: every ``conv → BN → node`` becomes a :class:`~revsnn.temporal.TemporalUnit`
whose synapse is ``[max pool →] conv → per-timestep BN`` (a pool that follows a node is folded into
the next synapse), the node is the exact binary LIF, and the head runs per step.

>>> import torch
>>> net = temporal_model("vgg11", T=2, num_classes=3)
>>> net(torch.rand(2, 3, 8, 8)).shape
torch.Size([2, 3])
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from ..nodes.binary import BinaryReversibleLIF
from ..models.configs import CONVNET_CONFIGS, RESNET_CONFIGS, VGG_CONFIGS
from .engine import TemporalNetwork, TemporalUnit
from .synapse import ConvBN, LinearSynapse, Residual, StepMaxPool

__all__ = ["temporal_vgg", "temporal_resnet", "temporal_convnet", "temporal_model",
           "build_temporal", "TEMPORAL_ARCHS"]

_NODE_KEYS = {"tau", "v_threshold", "surrogate", "grid_bits", "on_drift"}


def _node(node_kwargs: Optional[dict]) -> BinaryReversibleLIF:
    kw = {k: v for k, v in (node_kwargs or {}).items() if k in _NODE_KEYS}
    if "tau" in kw and float(kw["tau"]).is_integer():
        kw["tau"] = int(kw["tau"])
    return BinaryReversibleLIF(**kw)


def _head(channels: int, num_classes: int, pool: bool, pool_size: int = 1) -> nn.Sequential:
    layers = [StepMaxPool(2)] if pool else []
    layers += [nn.AdaptiveAvgPool2d(pool_size), nn.Flatten(),
               nn.Linear(channels * pool_size * pool_size, num_classes)]
    return nn.Sequential(*layers)


def _conv_stack(cfg, in_channels: int, node_kwargs: Optional[dict]) -> tuple:
    """``(units, channels, pool pending)`` for a channel list (``"M"`` = 2×2 max pool, folded into
    the next unit's synapse; a trailing one is left to the head)."""
    units, c, pool = [], in_channels, False
    for v in cfg:
        if v == "M":
            pool = True
            continue
        units.append(TemporalUnit(ConvBN(c, int(v), pool=pool), (len(units) - 1,),
                                  _node(node_kwargs)))
        c, pool = int(v), False
    return units, c, pool


def temporal_vgg(cfg, *, in_channels: int = 3, num_classes: int = 10,
                 node_kwargs: Optional[dict] = None, **net_kw) -> TemporalNetwork:
    """A time-major spiking VGG from a channel list like :data:`revsnn.models.configs.VGG_CONFIGS`."""
    if isinstance(cfg, str):
        cfg = VGG_CONFIGS[cfg]
    units, c, pool = _conv_stack(cfg, in_channels, node_kwargs)
    return TemporalNetwork(units, _head(c, num_classes, pool), **net_kw)


def temporal_resnet(name: str, *, in_channels: int = 3, num_classes: int = 10,
                    node_kwargs: Optional[dict] = None, **net_kw) -> TemporalNetwork:
    """A time-major spiking ResNet (:data:`revsnn.models.resnet.RESNET_CONFIGS`): each basic block
    is two units, the second fed by the first and by the block input through the shortcut
    (identity, or conv1×1-BN when the shape changes), added before its node."""
    stem, stages, hidden = RESNET_CONFIGS[name]
    units = [TemporalUnit(ConvBN(in_channels, stem), (-1,), _node(node_kwargs))]
    c = stem
    for channels, blocks, stride in stages:
        for b in range(blocks):
            s = stride if b == 0 else 1
            block_in = len(units) - 1
            units.append(TemporalUnit(ConvBN(c, channels, 3, s), (block_in,), _node(node_kwargs)))
            shortcut = ConvBN(c, channels, 1, s) if s != 1 or c != channels else None
            units.append(TemporalUnit(Residual(ConvBN(channels, channels), shortcut),
                                      (len(units) - 1, block_in), _node(node_kwargs)))
            c = channels
    if hidden:
        units.append(TemporalUnit(LinearSynapse(c, hidden), (len(units) - 1,), _node(node_kwargs)))
        head = nn.Linear(hidden, num_classes)
    else:
        head = _head(c, num_classes, False)
    return TemporalNetwork(units, head, **net_kw)


def temporal_convnet(name: str = "convnet", *, in_channels: int = 1, num_classes: int = 10,
                     node_kwargs: Optional[dict] = None, **net_kw) -> TemporalNetwork:
    """The digits ConvNet (:data:`revsnn.models.configs.CONVNET_CONFIGS`) time-major:
    ``[conv-BN-node, max pool] × 2``, then average pooling to the table's size and a classifier."""
    cfg, pool_size = CONVNET_CONFIGS[name]
    units, c, pool = _conv_stack(cfg, in_channels, node_kwargs)
    return TemporalNetwork(units, _head(c, num_classes, pool, pool_size=pool_size), **net_kw)


TEMPORAL_ARCHS = tuple(VGG_CONFIGS) + tuple(RESNET_CONFIGS) + tuple(CONVNET_CONFIGS)
"""Zoo architectures that have a time-major form."""


def temporal_model(name: str, *, in_channels: Optional[int] = None, num_classes: int = 10,
                   node_kwargs: Optional[dict] = None, **net_kw) -> TemporalNetwork:
    """The time-major form of zoo architecture ``name`` (one of :data:`TEMPORAL_ARCHS`)."""
    if name not in TEMPORAL_ARCHS:
        raise ValueError(f"no time-major form of {name!r}; choose from {', '.join(TEMPORAL_ARCHS)}")
    kw = dict(num_classes=num_classes, node_kwargs=node_kwargs, **net_kw)
    if name in CONVNET_CONFIGS:
        return temporal_convnet(name, in_channels=1 if in_channels is None else in_channels, **kw)
    in_channels = 3 if in_channels is None else in_channels
    if name.startswith("vgg"):
        return temporal_vgg(name, in_channels=in_channels, **kw)
    return temporal_resnet(name, in_channels=in_channels, **kw)


def build_temporal(name: str, preset=None, *, node_kwargs: Optional[dict] = None,
                   in_channels: Optional[int] = None, num_classes: int = 10,
                   **net_kw) -> TemporalNetwork:
    """The builder of the ``temporal`` preset (:mod:`revsnn.strategy`): what
    ``revsnn.models.build(name, "temporal", ...)`` calls."""
    return temporal_model(name, in_channels=in_channels, num_classes=num_classes,
                          node_kwargs=node_kwargs, **net_kw)
