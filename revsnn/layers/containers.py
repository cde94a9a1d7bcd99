"""Per-step containers: stateless layers over time-first sequences ``[T, B, ...]``, applied to all
timesteps at once with time folded into the batch ``[T·B, ...]`` (like SpikingJelly's
``SeqToANNContainer``).

>>> import torch
>>> SeqMaxPool(2)(torch.ones(3, 2, 4, 6, 6)).shape
torch.Size([3, 2, 4, 3, 3])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SeqToANN", "SeqMaxPool", "FitMaxPool2d"]


class SeqToANN(nn.Module):
    """Apply stateless ``module`` to every timestep at once: ``[T, B, ...] → [T·B, ...] → [T, B, ...]``."""

    def __init__(self, *modules: nn.Module):
        super().__init__()
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # unflatten, not view(T, B, *y.shape[1:]): the same view, and torch.fx traces it
        return self.module(x.flatten(0, 1)).unflatten(0, (x.shape[0], x.shape[1]))


class FitMaxPool2d(nn.MaxPool2d):
    """2-d max pooling that is the identity when H or W is below the kernel size (so that deep
    VGGs accept small images)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size if isinstance(self.kernel_size, int) else min(self.kernel_size)
        if x.shape[-1] < k or x.shape[-2] < k:
            return x
        return super().forward(x)


class SeqMaxPool(nn.Module):
    """2-d max pooling over ``[T, B, C, H, W]``; the identity when H or W is below the kernel size."""

    def __init__(self, kernel_size: int = 2):
        super().__init__()
        self.pool = FitMaxPool2d(kernel_size)
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.kernel_size or x.shape[-2] < self.kernel_size:
            return x
        y = self.pool(x.flatten(0, 1))
        return y.view(x.shape[0], x.shape[1], *y.shape[1:])
