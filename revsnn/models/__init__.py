"""The model zoo: spiking VGG-11/13/16, ResNet-18/19 and a small digits ConvNet, time first.

Every model takes ``[B, C, H, W]`` (encoded to T steps, ``encoder="direct"`` or ``"rate"``) or
``[T, B, C, H, W]`` and returns the time-averaged logits ``[B, K]``. One argument, ``mode`` (a
:class:`~revsnn.MemoryMode` or its value), switches every node; ``node_kwargs`` (tau, v_threshold,
surrogate, …) configure them; ``node="spikingjelly"`` builds the same network with SpikingJelly's
``LIFNode`` (the comparison baseline). In the reversible modes with a fused or revnet backward,
each BatchNorm is fused into the node that follows it and its input is not stored
(:mod:`revsnn.models.bn_node`); ``fuse_bn=False`` turns that off.

The parameter and buffer names do not depend on the mode, so a state dict moves between modes:

>>> import torch
>>> a = build("convnet", mode="bptt", seed=0)
>>> b = copy_weights(a, build("convnet", mode="checkpoint"))
>>> x = torch.rand(2, 1, 8, 8)
>>> torch.equal(a(x), b(x))
True
>>> sorted(MODELS)
['convnet', 'resnet18', 'resnet19', 'vgg11', 'vgg13', 'vgg16']
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from ..modes import MemoryMode
from .bn_node import BNNodeFunction, apply_bn_node
from .convnet import spiking_convnet
from .encoders import DirectEncoder, RateEncoder
from .layers import ConvBN, ConvBNNode, NodeSpec, Readout, SeqMaxPool, SeqToANN, is_node
from .net import SpikingNet
from .resnet import BasicBlock, spiking_resnet
from .vgg import VGG_CONFIGS, spiking_vgg

__all__ = [
    "MODELS", "build", "copy_weights", "to_spikingjelly", "SpikingNet", "NodeSpec",
    "ConvBNNode", "ConvBN", "BasicBlock", "SeqToANN", "SeqMaxPool", "Readout",
    "DirectEncoder", "RateEncoder", "BNNodeFunction", "apply_bn_node", "is_node", "DEFAULT_IN_CHANNELS",
]

MODELS: dict[str, Callable[..., SpikingNet]] = {
    "vgg11": lambda spec, **kw: spiking_vgg(VGG_CONFIGS["vgg11"], spec, **kw),
    "vgg13": lambda spec, **kw: spiking_vgg(VGG_CONFIGS["vgg13"], spec, **kw),
    "vgg16": lambda spec, **kw: spiking_vgg(VGG_CONFIGS["vgg16"], spec, **kw),
    "resnet18": lambda spec, **kw: spiking_resnet("resnet18", spec, **kw),
    "resnet19": lambda spec, **kw: spiking_resnet("resnet19", spec, **kw),
    "convnet": lambda spec, **kw: spiking_convnet(spec, **kw),
}
"""Architecture name → builder ``(spec, in_channels=, num_classes=, T=, encoder=, seed=)``."""

DEFAULT_IN_CHANNELS = {"convnet": 1}
"""Input channels when not given: 1 for the digits ConvNet, 3 (RGB) otherwise."""


def build(name: str, mode=MemoryMode.BPTT, *, num_classes: int = 10,
          in_channels: Optional[int] = None, node_kwargs: Optional[dict] = None, T: int = 4,
          encoder: str = "direct", seed: Optional[int] = None, node: str = "revsnn",
          fuse_bn: bool = True, encoder_seed: int = 0) -> SpikingNet:
    """Build zoo model ``name`` with every node in ``mode``.

    Args:
        mode: a :class:`~revsnn.MemoryMode` or its value/name; ``"spikingjelly"`` is short for
            ``node="spikingjelly"``.
        node: ``"revsnn"`` or ``"spikingjelly"`` (SpikingJelly's LIFNode, BPTT; needs it installed).
        seed: when given, parameters are initialised from ``torch.manual_seed(seed)`` inside a
            forked RNG (the global RNG is left as it was), so equal seeds give equal weights in
            every mode.
        fuse_bn: fuse BatchNorm into reversible nodes (fused/revnet backward).
        encoder, T, encoder_seed: how a static ``[B, C, H, W]`` input is turned into T steps.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    if str(mode) == "spikingjelly":
        mode, node = MemoryMode.BPTT, "spikingjelly"
    mode = MemoryMode.parse(mode)
    in_channels = DEFAULT_IN_CHANNELS.get(name, 3) if in_channels is None else int(in_channels)
    if in_channels < 1 or int(num_classes) < 1:
        raise ValueError(f"in_channels and num_classes must be >= 1, got {in_channels}, "
                         f"{num_classes}")
    spec = NodeSpec(mode, node_kwargs, kind=node, fuse_bn=fuse_bn)
    config = dict(name=name, mode=mode.value, num_classes=int(num_classes),
                  in_channels=in_channels, node_kwargs=dict(node_kwargs or {}), T=int(T),
                  encoder=encoder, seed=seed, node=node, fuse_bn=fuse_bn,
                  encoder_seed=encoder_seed)
    kw = dict(in_channels=in_channels, num_classes=int(num_classes), T=T, encoder=encoder,
              seed=encoder_seed, config=config)
    if seed is None:
        return MODELS[name](spec, **kw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return MODELS[name](spec, **kw)


def copy_weights(src: nn.Module, dst: nn.Module) -> nn.Module:
    """Load ``src``'s parameters and buffers into ``dst`` (strict: same architecture); returns ``dst``."""
    dst.load_state_dict(src.state_dict())
    return dst


def to_spikingjelly(model: SpikingNet) -> SpikingNet:
    """The same architecture and weights with SpikingJelly ``LIFNode`` nodes (BPTT).

    Node hyperparameters carry over (``v_reset``, ``tau``, surrogate…); SpikingJelly must be installed.
    """
    if "name" not in getattr(model, "config", {}):
        raise ValueError("to_spikingjelly: the model was not made by revsnn.models.build (no "
                         "config to rebuild it from)")
    cfg = dict(model.config)
    cfg.update(node="spikingjelly", mode=MemoryMode.BPTT.value)
    name = cfg.pop("name")
    new = build(name, **cfg)
    return copy_weights(model, new.to(next(model.parameters()).device))
