"""The model zoo: spiking VGG-11/13/16, ResNet-18/19, a small digits ConvNet and the reversible-block
ResNets ``revresnet_s/m/l``, time first.

Every model takes ``[B, C, H, W]`` (encoded to T steps, ``encoder="direct"`` or ``"rate"``) or
``[T, B, C, H, W]`` and returns the time-averaged logits ``[B, K]``. One argument, ``mode`` (a
preset of :mod:`revsnn.strategy`: its name, a :class:`~revsnn.MemoryMode`, or the preset), switches
every node and how the network stores what its backward needs; ``node_kwargs`` (tau, v_threshold,
surrogate, …) configure the nodes. ``mode="spikingjelly"`` builds the same network with
SpikingJelly's ``LIFNode`` (the comparison baseline). With the revnet or fused reversible presets
each BatchNorm is fused into the node that follows it and its input is not stored
(:mod:`revsnn.layers.bn_node`); ``fuse_bn=False`` turns that off. Every network is built by one code
path from the tables in :mod:`revsnn.models.configs` (:mod:`revsnn.models.builders`); a preset
registered with its own ``builder`` is built by that.

The parameter and buffer names do not depend on the mode, so a state dict moves between modes:

>>> import torch
>>> a = build("convnet", mode="bptt", seed=0)
>>> b = copy_weights(a, build("convnet", mode="checkpoint"))
>>> x = torch.rand(2, 1, 8, 8)
>>> torch.equal(a(x), b(x))
True
>>> sorted(MODELS)[:3]
['convnet', 'resnet18', 'resnet19']
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from .. import strategy as _strategy
from ..layers.bn_node import BNNodeFunction, apply_bn_node
from .builders import rev_spiking_resnet, spiking_convnet, spiking_resnet, spiking_vgg
from .configs import CONVNET_CONFIGS, RESNET_CONFIGS, REVRESNET_CONFIGS, VGG_CONFIGS
from .encoders import DirectEncoder, RateEncoder
from ..layers.containers import SeqMaxPool, SeqToANN
from ..layers.units import BasicBlock, ConvBN, ConvBNNode, MeanReadout, NodeSpec, Readout, is_node
from .net import SpikingNet

__all__ = [
    "MODELS", "build", "copy_weights", "to_spikingjelly", "SpikingNet", "NodeSpec",
    "ConvBNNode", "ConvBN", "BasicBlock", "SeqToANN", "SeqMaxPool", "Readout", "MeanReadout",
    "DirectEncoder", "RateEncoder", "BNNodeFunction", "apply_bn_node", "is_node",
    "DEFAULT_IN_CHANNELS", "MEMOPT_TARGETS",
]


def _entry(builder, name):
    return lambda spec, **kw: builder(name, spec, **kw)


MODELS: dict[str, Callable[..., SpikingNet]] = {
    **{name: _entry(spiking_vgg, name) for name in VGG_CONFIGS},
    **{name: _entry(spiking_resnet, name) for name in RESNET_CONFIGS},
    **{name: (lambda spec, _n=name, **kw: spiking_convnet(spec, name=_n, **kw))
       for name in CONVNET_CONFIGS},
    **{name: _entry(rev_spiking_resnet, name) for name in REVRESNET_CONFIGS},
}
"""Architecture name → builder ``(spec, in_channels=, num_classes=, T=, encoder=, seed=, …)``;
every name belongs to one family of :data:`revsnn.strategy.FAMILIES`."""

DEFAULT_IN_CHANNELS = {"convnet": 1}
"""Input channels when not given: 1 for the digits ConvNet, 3 (RGB) otherwise."""

MEMOPT_TARGETS = (BasicBlock, ConvBNNode)
"""The module types SpikingJelly's ``optimize_memory`` may checkpoint (every conv-BN-node block and
residual block)."""


def build(name: str, mode="bptt", *, num_classes: int = 10, in_channels: Optional[int] = None,
          node_kwargs: Optional[dict] = None, T: int = 4, encoder: str = "direct",
          seed: Optional[int] = None, fuse_bn: Optional[bool] = None, encoder_seed: int = 0,
          example: Optional[Callable[[], torch.Tensor]] = None, memopt_level: int = 1,
          **arch_kwargs) -> nn.Module:
    """Build zoo model ``name`` with the strategy ``mode``.

    Args:
        mode: a preset of :mod:`revsnn.strategy` (its name or alias, a :class:`~revsnn.MemoryMode`,
            or the preset); one that does not build ``name`` is refused with the ones that do.
        seed: when given, parameters are initialised from ``torch.manual_seed(seed)`` inside a
            forked RNG (the global RNG is left as it was), so equal seeds give equal weights in
            every mode.
        fuse_bn: override the preset's BatchNorm fusion where it can fuse (False: never fuse).
        encoder, T, encoder_seed: how a static ``[B, C, H, W]`` input is turned into T steps.
        example: a zero-argument callable returning a representative input, for presets that
            tune the built network on one (SpikingJelly's memopt: the network is moved to the
            example's device and dtype and optimised there, at ``memopt_level``).
        arch_kwargs: options of one family (``width=``, ``grid_bits=`` of the revresnets).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    preset = _strategy.parse(mode, arch=name)
    in_channels = DEFAULT_IN_CHANNELS.get(name, 3) if in_channels is None else int(in_channels)
    if in_channels < 1 or int(num_classes) < 1:
        raise ValueError(f"in_channels and num_classes must be >= 1, got {in_channels}, "
                         f"{num_classes}")
    spec = NodeSpec(preset, node_kwargs, fuse_bn=fuse_bn)
    config = dict(name=name, mode=spec.preset.name, num_classes=int(num_classes),
                  in_channels=in_channels, node_kwargs=dict(node_kwargs or {}), T=int(T),
                  encoder=encoder, seed=seed, encoder_seed=encoder_seed, **arch_kwargs)
    kw = dict(in_channels=in_channels, num_classes=int(num_classes), T=T, encoder=encoder,
              seed=encoder_seed, config=config, **arch_kwargs)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        if preset.builder is not None:
            model = preset.builder(name, spec.preset, node_kwargs=spec.kwargs, **kw)
        else:
            model = MODELS[name](spec, **kw)
    if spec.strategy.baseline == "memopt":
        model = _memopt(model, example, memopt_level)
    return model


def _memopt(model: nn.Module, example, level: int) -> nn.Module:
    """SpikingJelly's ``optimize_memory`` over every conv-BN-node and residual block, probed on
    ``example()`` where it lives (level 4 measures CUDA memory there)."""
    if example is None:
        raise ValueError("the spikingjelly_memopt preset optimises the network on a "
                         "representative input: pass example=lambda: <an input batch>")
    from spikingjelly.activation_based.memopt import optimize_memory

    x = example()
    model = model.to(device=x.device, dtype=x.dtype) if x.is_floating_point() else model.to(x.device)
    return optimize_memory(model, MEMOPT_TARGETS, lambda m: m(example()), level=level)


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
    cfg.update(mode="spikingjelly")
    name = cfg.pop("name")
    new = build(name, **cfg)
    return copy_weights(model, new.to(next(model.parameters()).device))
