"""Fixed-point rounding with a straight-through gradient, and the exactness limits of each dtype.

The reversible nodes compute on a fixed-point grid δ = 2^-Q in floating point; rounding to it is
invisible to the gradient (straight-through), and the arithmetic on it is exact while every value
is below 2^(significand bits) grid steps.
"""

from __future__ import annotations

import torch

__all__ = ["straight_through", "quantize", "SIGNIFICAND_BITS"]

SIGNIFICAND_BITS = {torch.float64: 53, torch.float32: 24, torch.float16: 11, torch.bfloat16: 8}
"""Significand bits per floating dtype: integers up to 2^bits are exact."""


class _StraightThrough(torch.autograd.Function):
    """``grid·rounding(z/grid)`` forward, identity backward (straight-through)."""

    @staticmethod
    def forward(z, rounding, grid):
        return rounding(z * (1.0 / grid)) * grid

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return g, None, None


def straight_through(z: torch.Tensor, grid: float = 1.0, rounding=torch.round) -> torch.Tensor:
    """``grid · rounding(z / grid)`` (``rounding`` = ``torch.round`` or ``torch.floor``) whose
    gradient is the identity: the rounding is invisible to the gradient.

    >>> straight_through(torch.tensor([0.1, -0.3]), 0.25)
    tensor([ 0.0000, -0.2500])
    >>> straight_through(torch.tensor([1.7, -0.2]), rounding=torch.floor)
    tensor([ 1., -1.])
    """
    if torch.is_grad_enabled() and z.requires_grad:
        return _StraightThrough.apply(z, rounding, grid)
    return rounding(z * (1.0 / grid)) * grid


def quantize(z: torch.Tensor, grid: float) -> torch.Tensor:
    """q(z) = δ·round(z/δ) (E2.0): snap ``z`` to multiples of ``grid`` (a power of two);
    straight-through gradient.

    >>> quantize(torch.tensor([0.1, -0.3]), 0.25)
    tensor([ 0.0000, -0.2500])
    """
    return straight_through(z, grid)
