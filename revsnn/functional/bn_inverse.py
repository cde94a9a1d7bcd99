"""The maths of BatchNorm fused with a reversible node: BN's affine map inverted from the node's
input, and the 1-byte code of the grid's rounding residual (the unit:
:mod:`revsnn.layers.bn_node`).

NOTE [BN + node fusion]
=======================
Under plain autograd a ``conv → BN → node`` block keeps, per element of its output, the conv input
(the previous node's output), the BN input x (the conv output) and the node's own intermediates.
:class:`~revsnn.ReversibleLIF` keeps only its output Y, which the next layer keeps anyway, and one
final-state snapshot; the BN input is then the largest remaining per-layer activation. This module
removes it.

BatchNorm normalises each channel with statistics μ, σ (of the batch in training, the running ones
in eval; in training over M = T·B·H·W elements, because time is folded into the batch) and an
affine map, optionally followed by a residual addend a (a ResNet block's shortcut):

    (E2.B1)  x̂ = (x − μ)·σ⁻¹,        z = γ·x̂ + β + a

Per channel it is an affine bijection when γ ≠ 0, so the normalised input is recovered from the
node input z:

    (E2.B2)  x̂ = (z − a − β) / γ

and the BN backward needs only x̂, γ and σ⁻¹ (with z̄ the gradient arriving at z):

    (E2.B3)  β̄ = Σ z̄,   γ̄ = Σ z̄·x̂,   x̄ = γ·σ⁻¹·(z̄ − β̄/M − x̂·γ̄/M),   ā = z̄     (training)
             x̄ = γ·σ⁻¹·z̄                                                          (eval)

The catch. Walking back in time, the node reconstructs its input only on its fixed-point grid:
q(z) = δ·round(z/δ) (E2.0), exact bit for bit, but |z − q(z)| ≤ δ/2 with δ = 2^-12 in fp32. An x̂
taken from q(z) alone would be off by up to δ/(2|γ|) ≈ 1.2e-4/|γ| — the grid's error, not float
rounding — and γ̄, x̄ would then differ from autograd's by about 1e-4 relative. So the unit also
keeps the rounding residual r = z − q(z) ∈ [−δ/2, δ/2], coded in k-bit integers:

    (E2.B4)  c = round(r · L·2/δ),  L = 2^(k−1) − 1;     r' = c · δ/(2L);     |r' − r| ≤ δ/(4L)

and reconstructs z = q(z) + r' (q(z) decoded from Y by (E3.1)). With k = 8 (one byte per element
instead of four) the error of x̂ is at most δ/(4·127·|γ|) ≈ 4.8e-7/|γ| in fp32, a few float
roundings for |γ| ≈ 1 (then (E2.B2) adds ordinary float rounding of z − a − β and of the division).
:func:`residual_bits` picks k = 8 when that bound is below a tolerance (2^-17 for fp32, 2^-40 for
fp64), else k = 16, and when even that fails — some |γ| is (near) 0, where (E2.B2) breaks down —
the unit stores the BN input x itself, as plain autograd does.

What is stored: Y (output; the next layer keeps it anyway), the final membranes (V₁, V₂), the code
c (1 byte per element), σ⁻¹ per channel, γ and β (parameters), and the addend a when there is one
(in a residual block it is the block input, which the block's first conv keeps anyway). Running
statistics are updated exactly once, in the forward, by the same call ``nn.BatchNorm2d`` makes, so
the output equals the unfused ``bn(x) (+ a) → node`` bit for bit; the backward only reads them.
The node's own backward is the node's: the same walk (``fused`` or ``revnet``) as
:class:`~revsnn.ReversibleLIF`, with its drift guard (NOTE [drift guard] in
:mod:`revsnn.nodes.reversible`).
In a graph. The width k only decides how precisely r is kept and what is stored; it is a function
of min |γ|, which changes at every optimizer step, so it cannot be fixed once, and reading γ on the
host is a graph break. Traced by ``torch.compile`` (:data:`IN_GRAPH`) the unit makes the same
choice as a graph operation instead: the code is always held in int16, with the level L of the
width :func:`residual_bits` would pick (:func:`eight_bits_in_graph`, the same test |γ|·4L·tol ≥ δ,
exact in float64), so c and r' take the eager values and the bound of (E2.B4) holds on every call,
whatever γ the last update left. The cost: 2 bytes per element where eager would store 1 (with
8 bits). The third choice, storing x when even 16 bits fail (some |γ| < δ/(4·32767·tol), about
2.4e-4 in fp32), changes what is stored and its shape, which a graph cannot decide from values:
the compiled step stops there with an error (``torch._assert_async``), never a wrong gradient.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn  # noqa: F401  (used by the examples)

from .quantize import quantize  # noqa: F401  (used by the examples)
from .reversible import decode_spike

__all__ = ["residual_bits", "residual_step", "encode_residual", "decode_residual",
           "bn_normalized_from_output", "decode_node_input", "RESIDUAL_TOLERANCE", "IN_GRAPH",
           "eight_bits_in_graph", "code_step", "encode_residual_in_graph"]

RESIDUAL_TOLERANCE = {torch.float32: 2.0 ** -17, torch.float64: 2.0 ** -40}
"""Largest accepted bound on |x̂' − x̂| from the residual code (E2.B4), per dtype."""

_CODE_DTYPES = {8: torch.int8, 16: torch.int16}

IN_GRAPH = "in-graph"
"""``bits`` of a fused unit traced by ``torch.compile``: an int16 code whose level L is chosen from
γ in the graph (NOTE [BN + node fusion], "In a graph")."""


def _levels(bits: int) -> int:
    """L = 2^(k−1) − 1, the largest magnitude of a k-bit residual code (E2.B4)."""
    return 2 ** (bits - 1) - 1


def residual_bits(weight: torch.Tensor, grid: float, dtype: torch.dtype) -> int:
    """Bits k of the residual code (E2.B4): 8 or 16, or 0 (keep the BN input) when |γ| is too small.

    >>> residual_bits(torch.ones(4), 2.0 ** -12, torch.float32)
    8
    >>> residual_bits(torch.tensor([1.0, 0.01]), 2.0 ** -12, torch.float32)
    16
    >>> residual_bits(torch.tensor([1.0, 0.0]), 2.0 ** -12, torch.float32)
    0
    """
    gmin = float(weight.detach().abs().min())
    tol = RESIDUAL_TOLERANCE[dtype]
    for bits in (8, 16):
        if gmin > 0 and grid / (4 * _levels(bits) * gmin) <= tol:
            return bits
    return 0


def residual_step(grid: float, bits: int) -> float:
    """δ/(2L), the value of one unit of the residual code (E2.B4)."""
    return grid / (2 * _levels(bits))


def eight_bits_in_graph(weight: torch.Tensor, grid: float, dtype: torch.dtype) -> torch.Tensor:
    """:func:`residual_bits` without a host read: a 0-d bool tensor, True where 8 bits meet the
    tolerance (else 16 bits do). Where even 16 bits fail (some |γ| (near) 0, where eager stores
    the BN input) the step stops with an error instead: a graph cannot choose what it stores
    (NOTE [BN + node fusion], "In a graph").

    >>> bool(eight_bits_in_graph(torch.ones(4), 2.0 ** -12, torch.float32))
    True
    >>> bool(eight_bits_in_graph(torch.tensor([1.0, 0.01]), 2.0 ** -12, torch.float32))
    False
    """
    tol = RESIDUAL_TOLERANCE[dtype]
    # δ/(4·L·|γ|) <= tol  <=>  |γ|·4L·tol >= δ: exact in float64 (δ and tol are powers of 2)
    gmin = weight.detach().abs().amin().double()
    torch._assert_async(gmin * (4 * _levels(16) * tol) >= grid,
                        f"BN + ReversibleLIF under torch.compile: some |γ| < "
                        f"{grid / (4 * _levels(16) * tol):.3g}, too small for the residual code "
                        f"(eager stores the BatchNorm input then, a graph cannot); run this step "
                        f"eagerly or use a mode without BatchNorm fusion")
    return gmin * (4 * _levels(8) * tol) >= grid


def code_step(weight: torch.Tensor, grid: float, dtype: torch.dtype, bits):
    """δ/(2L) of (E2.B4) for a code of ``bits`` 8 or 16 (a float), or :data:`IN_GRAPH` (a 0-d
    tensor: L chosen by :func:`eight_bits_in_graph`)."""
    if bits == IN_GRAPH:
        eight = eight_bits_in_graph(weight, grid, dtype)
        return torch.where(eight, residual_step(grid, 8), residual_step(grid, 16)).to(dtype)
    return residual_step(grid, bits)


def encode_residual(z: torch.Tensor, grid: float, bits: int, inplace: bool = False) -> torch.Tensor:
    """Code c of r = z − q(z) in ``bits``-bit integers (E2.B4); q(z) = δ·round(z/δ) as in (E2.0).

    ``inplace`` overwrites ``z`` (the fused forward's own BN output, no longer needed), so that
    no temporary of z's size is allocated.

    >>> z = torch.tensor([0.30, -0.71])
    >>> c = encode_residual(z, 0.25, 8)
    >>> c.dtype, bool((decode_residual(c, 0.25, 8, torch.float32) + quantize(z, 0.25) - z).abs().max()
    ...                <= 0.25 / 508)
    (torch.int8, True)
    """
    k = z.mul_(1.0 / grid) if inplace else torch.mul(z, 1.0 / grid)   # z/δ, exact (δ = 2^-Q)
    for kt in (k.unbind(0) if k.dim() > 1 else (k,)):                  # per step: small temporaries
        kt.sub_(torch.round(kt))                                       # r/δ ∈ [−½, ½]
    return k.mul_(grid / residual_step(grid, bits)).round_().to(_CODE_DTYPES[bits])


def encode_residual_in_graph(z: torch.Tensor, weight: torch.Tensor, grid: float) -> torch.Tensor:
    """The code of :func:`encode_residual` with the width :func:`eight_bits_in_graph` chooses, in
    int16 either way (the same values as the eager code; functional, for a traced graph)."""
    eight = eight_bits_in_graph(weight, grid, z.dtype)
    levels2 = torch.where(eight, 2 * _levels(8), 2 * _levels(16)).to(z.dtype)       # 2L = δ/step
    k = z * (1.0 / grid)
    return ((k - torch.round(k)) * levels2).round().to(torch.int16)


def decode_residual(code: torch.Tensor, grid: float, bits: int, dtype: torch.dtype) -> torch.Tensor:
    """r' = c·δ/(2L) (E2.B4)."""
    return code.to(dtype).mul_(residual_step(grid, bits))


def decode_node_input(y: torch.Tensor, node) -> torch.Tensor:
    """q(X) from the reversible node's output Y, elementwise (E3.1): S = odd(Y/(δ/2)), X̄ = Y − ϑS.

    Y/δ = n + S/2 for an integer n, so S = 2·|frac(Y/δ)| (:func:`revsnn.functional.reversible.decode_spike`);
    every step is exact.

    >>> from revsnn import ReversibleLIF
    >>> node = ReversibleLIF()
    >>> x = torch.randn(6, 2, 4)
    >>> torch.equal(decode_node_input(node(x), node), node.quantize_input(x))
    True
    """
    p = node.params(y.dtype)
    s = decode_spike(y, p.grid)                                      # (E3.1)
    return torch.add(y, s, alpha=-p.spike_scale, out=s)


def bn_normalized_from_output(z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                              addend: Optional[torch.Tensor] = None) -> torch.Tensor:
    """x̂ = (z − a − β)/γ (E2.B2) for ``z`` of shape [N, C, ...]: the inverse of BN's affine part.

    >>> bn = nn.BatchNorm2d(3).train()
    >>> with torch.no_grad():
    ...     _ = bn.weight.uniform_(0.5, 2.0); _ = bn.bias.uniform_(-1.0, 1.0)
    >>> x = torch.randn(8, 3, 4, 4)
    >>> xhat = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
    ...     x.var((0, 2, 3), unbiased=False, keepdim=True) + bn.eps)
    >>> torch.allclose(bn_normalized_from_output(bn(x), bn.weight, bn.bias), xhat, atol=1e-5)
    True
    """
    shape = (1, -1) + (1,) * (z.dim() - 2)
    if addend is not None:
        z = z - addend
    return (z - bias.view(shape)).div_(weight.view(shape))
