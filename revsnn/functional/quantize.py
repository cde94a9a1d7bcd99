"""Fixed-point rounding with a straight-through gradient, and the exactness limits of each dtype.

The reversible nodes compute on a fixed-point grid δ = 2^-Q in floating point; rounding to it is
invisible to the gradient (straight-through), and the arithmetic on it is exact while every value
is below 2^(significand bits) grid steps.
"""

from __future__ import annotations

import torch

__all__ = ["straight_through", "quantize", "SIGNIFICAND_BITS", "compute_dtype", "concrete",
           "is_traced", "under_vmap", "has_tangent"]

SIGNIFICAND_BITS = {torch.float64: 53, torch.float32: 24, torch.float16: 11, torch.bfloat16: 8}
"""Significand bits per floating dtype: integers up to 2^bits are exact."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the nodes compute in: fp32 for the half-precision dtypes (whose few significand
    bits hold only small multiples of the grid), else ``dtype`` itself.

    >>> compute_dtype(torch.bfloat16), compute_dtype(torch.float64)
    (torch.float32, torch.float64)
    """
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _StraightThroughTraceable(torch.autograd.Function):
    """``grid·rounding(z/grid)`` forward, identity backward (straight-through); without forward
    mode, which ``torch.compile`` cannot trace (:func:`straight_through` uses it while compiling)."""

    @staticmethod
    def forward(z, rounding, grid):
        return rounding(z * (1.0 / grid)) * grid

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return g, None, None

    generate_vmap_rule = True      # the forward is elementwise PyTorch (vmap)


class _StraightThrough(_StraightThroughTraceable):
    """The straight-through rounding with forward mode too (``torch.func.jvp``, ``jacfwd``): the
    same identity."""

    @staticmethod
    def jvp(ctx, gz, _rounding, _grid):
        return gz


def straight_through(z: torch.Tensor, grid: float = 1.0, rounding=torch.round) -> torch.Tensor:
    """``grid · rounding(z / grid)`` (``rounding`` = ``torch.round`` or ``torch.floor``) whose
    gradient is the identity: the rounding is invisible to the gradient.

    >>> straight_through(torch.tensor([0.1, -0.3]), 0.25)
    tensor([ 0.0000, -0.2500])
    >>> straight_through(torch.tensor([1.7, -0.2]), rounding=torch.floor)
    tensor([ 1., -1.])
    """
    if torch.compiler.is_compiling():
        # always the Function: while a backward is traced, requires_grad does not tell whether
        # a gradient will flow through here
        return _StraightThroughTraceable.apply(z, rounding, grid)
    if torch.is_grad_enabled() and z.requires_grad or has_tangent(z):
        return _StraightThrough.apply(z, rounding, grid)
    return rounding(z * (1.0 / grid)) * grid


def has_tangent(z: torch.Tensor) -> bool:
    """Whether ``z`` carries a forward-mode tangent (``torch.func.jvp``, ``jacfwd`` or a dual
    tensor of ``torch.autograd.forward_ad``); False while ``torch.compile`` traces."""
    if torch.compiler.is_compiling():
        return False
    import torch.autograd.forward_ad as fwad
    return fwad.unpack_dual(z).tangent is not None


def quantize(z: torch.Tensor, grid: float) -> torch.Tensor:
    """q(z) = δ·round(z/δ) (E2.0): snap ``z`` to multiples of ``grid`` (a power of two);
    straight-through gradient.

    >>> quantize(torch.tensor([0.1, -0.3]), 0.25)
    tensor([ 0.0000, -0.2500])
    """
    return straight_through(z, grid)


def concrete(x: torch.Tensor) -> torch.Tensor:
    """The plain tensor under any ``torch.func`` wrappers (``vmap``'s batched tensor, ``grad``'s and
    ``jvp``'s tracking tensors), detached, holding every batch at once.

    A guard that reads one number from a tensor (``float(x.abs().max())``) cannot do so on a
    ``vmap``-batched tensor; reading it from the tensor underneath checks every batch entry at once.

    >>> x = torch.randn(3, 4)
    >>> torch.vmap(lambda z: (concrete(z).shape, z)[1])(x).shape
    torch.Size([3, 4])
    """
    from torch._C._functorch import get_unwrapped, is_functorch_wrapped_tensor
    while is_functorch_wrapped_tensor(x):
        x = get_unwrapped(x)
    return x.detach()


def is_traced(x: torch.Tensor) -> bool:
    """Whether ``x`` holds no data to read now: under ``torch.compile`` tracing, a fake or a meta
    tensor. Guards then assert on the device (``torch._assert_async``) or skip, never read a value."""
    if torch.compiler.is_compiling() or x.device.type == "meta":
        return True
    from torch._subclasses.fake_tensor import is_fake
    return is_fake(x)


def under_vmap(x: torch.Tensor) -> bool:
    """Whether ``x`` is batched by ``torch.vmap`` at some level (under any other wrappers); False
    while ``torch.compile`` traces."""
    if torch.compiler.is_compiling():
        return False
    from torch._C._functorch import get_unwrapped, is_batchedtensor, is_functorch_wrapped_tensor
    while is_functorch_wrapped_tensor(x):
        if is_batchedtensor(x):
            return True
        x = get_unwrapped(x)
    return False
