"""One-step synapses the time-major engine can compute a few output channels at a time.

NOTE [channel ranges]
=====================
A unit's largest transient is its synapse output and everything derived from it during one step
(the conv output kept for BatchNorm's backward, the grid input x̂, the charge H, its VJP): a handful
of ``[B, C, H, W]`` tensors. Conv, per-timestep BatchNorm (E8.*) and the node are independent per
output channel, so the engine computes channels ``c0 … c1 − 1`` at a time with the matching slices
of the weights. The forward and the backward use the same ranges, hence the same kernels on the
same shapes, and the recomputation gives the forward's bits (NOTE [time-major backward]).

A synapse splits into

- ``prepare(*sources)``: what all channels share (a max pool of the input spikes), under autograd;
- ``parameter_slices(c0, c1)``: ``(parameter, index)`` pairs, the parts the range uses;
- ``input_channels(c0, c1)``: per prepared input, the channels the range reads (``None``: all of
  them; an identity shortcut reads only the range's own channels);
- ``compute(prepared, c0, c1, tensors)``: the range's output, from the prepared inputs (already
  narrowed to ``input_channels``) and stand-ins for those parameter slices. The engine passes
  detached leaves in backward, so that the gradient of a slice is a slice, not a full-size tensor
  per range.

``forward(*sources)`` computes every channel at once (what a layer-major caller uses).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..layers.containers import FitMaxPool2d
from .bn import TimestepBatchNorm2d

__all__ = ["Synapse", "ConvBN", "Residual", "LinearSynapse", "ModuleSynapse", "StepMaxPool",
           "as_synapse", "narrow_inputs"]


StepMaxPool = FitMaxPool2d
"""2-d max pooling of one step; the identity when the map is smaller than the kernel."""


class Synapse(nn.Module):
    """Base class of the protocol in NOTE [channel ranges]."""

    sliceable = True
    """Whether a range of output channels can be computed alone."""

    def prepare(self, *sources: torch.Tensor) -> tuple:
        return sources

    def out_shape(self, prepared: Sequence[torch.Tensor]) -> Optional[tuple]:
        """Shape of the full output for these prepared inputs (``None``: only known by running)."""
        raise NotImplementedError

    def parameter_slices(self, c0: int, c1: int) -> list:
        raise NotImplementedError

    def input_channels(self, c0: int, c1: int) -> tuple:
        """Per prepared input, the channel slice the range reads, or ``None`` for all."""
        return ()

    def compute(self, prepared: Sequence[torch.Tensor], c0: int, c1: int,
                tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, *sources: torch.Tensor) -> torch.Tensor:
        prepared = self.prepare(*sources)
        shape = self.out_shape(prepared)
        c1 = shape[1] if shape is not None else None
        pairs = self.parameter_slices(0, c1)
        return self.compute(narrow_inputs(self, prepared, 0, c1), 0, c1,
                            [q if i is None else q[i] for q, i in pairs])


def narrow_inputs(synapse: Synapse, prepared: Sequence[torch.Tensor], c0: int, c1) -> list:
    """``prepared`` with each input narrowed to the channels ``synapse`` reads for the range."""
    slices = synapse.input_channels(c0, c1)
    return [q if k >= len(slices) or slices[k] is None else q[:, slices[k]]
            for k, q in enumerate(prepared)]


class ConvBN(Synapse):
    """``[2×2 max pool →] conv k×k (no bias) → per-timestep BatchNorm`` on one step."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 pool: bool = False):
        super().__init__()
        self.pool = StepMaxPool(2) if pool else None
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                              bias=False)
        self.bn = TimestepBatchNorm2d(out_channels)

    def prepare(self, x: torch.Tensor) -> tuple:
        return (self.pool(x) if self.pool is not None else x,)

    def out_shape(self, prepared) -> tuple:
        x = prepared[0]
        (k, _), (s, _), (p, _) = self.conv.kernel_size, self.conv.stride, self.conv.padding
        return (x.shape[0], self.conv.out_channels, (x.shape[2] + 2 * p - k) // s + 1,
                (x.shape[3] + 2 * p - k) // s + 1)

    def parameter_slices(self, c0: int, c1: int) -> list:
        rows = slice(c0, c1)
        pairs = [(self.conv.weight, rows)]
        if self.bn.affine:
            pairs += [(self.bn.weight, rows), (self.bn.bias, rows)]
        return pairs

    def compute(self, prepared, c0, c1, tensors) -> torch.Tensor:
        weight, *affine = tensors
        y = F.conv2d(prepared[0], weight, None, self.conv.stride, self.conv.padding)
        return self.bn.normalise(y, c0, *(affine or (None, None)))


class Residual(Synapse):
    """Two sources: ``main(a) + shortcut(b)``; the shortcut is a :class:`ConvBN` or the identity."""

    def __init__(self, main: ConvBN, shortcut: Optional[ConvBN] = None):
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def prepare(self, a: torch.Tensor, b: torch.Tensor) -> tuple:
        return self.main.prepare(a) + (self.shortcut.prepare(b) if self.shortcut is not None
                                       else (b,))

    def out_shape(self, prepared) -> tuple:
        return self.main.out_shape(prepared[:1])

    def parameter_slices(self, c0: int, c1: int) -> list:
        extra = self.shortcut.parameter_slices(c0, c1) if self.shortcut is not None else []
        return self.main.parameter_slices(c0, c1) + extra

    def input_channels(self, c0: int, c1: int) -> tuple:
        return (None, slice(c0, c1) if self.shortcut is None else None)

    def compute(self, prepared, c0, c1, tensors) -> torch.Tensor:
        k = len(self.main.parameter_slices(c0, c1))
        z = self.main.compute(prepared[:1], c0, c1, tensors[:k])
        if self.shortcut is None:
            return z + prepared[1]
        return z + self.shortcut.compute(prepared[1:], c0, c1, tensors[k:])


class LinearSynapse(Synapse):
    """``global average pool → flatten → linear`` on one step (a hidden fully connected layer)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def prepare(self, x: torch.Tensor) -> tuple:
        return (F.adaptive_avg_pool2d(x, 1).flatten(1) if x.dim() == 4 else x,)

    def out_shape(self, prepared) -> tuple:
        return (prepared[0].shape[0], self.fc.out_features)

    def parameter_slices(self, c0: int, c1: int) -> list:
        return [(self.fc.weight, slice(c0, c1)), (self.fc.bias, slice(c0, c1))]

    def compute(self, prepared, c0, c1, tensors) -> torch.Tensor:
        return F.linear(prepared[0], *tensors)


class ModuleSynapse(Synapse):
    """Any one-step module as a synapse computed whole (one channel range: no slicing)."""

    sliceable = False

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def out_shape(self, prepared) -> None:
        return None

    def parameter_slices(self, c0, c1) -> list:
        return [(q, None) for q in self.module.parameters()]

    def compute(self, prepared, c0, c1, tensors) -> torch.Tensor:
        names = [n for n, _ in self.module.named_parameters()]
        return functional_call(self.module, dict(zip(names, tensors)), tuple(prepared))


def as_synapse(module: nn.Module) -> Synapse:
    """``module`` itself when it follows the protocol, else wrapped in :class:`ModuleSynapse`."""
    return module if isinstance(module, Synapse) else ModuleSynapse(module)
