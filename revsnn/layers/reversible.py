"""Reversible spiking blocks: RevSNN-style couplings of whole sub-blocks, and stacks of them run as
one autograd Function (recomputing F and G as NOTE [what recomputation breaks] in
:mod:`revsnn.nodes.recompute` describes).

NOTE [reversible block equations]
=================================
A reversible block acts on a sequence ``X = [T, B, C, H, W]`` split along channels into X₁ =
channels ``[0, C/2)`` and X₂ = ``[C/2, C)``. F and G are whole spiking sub-blocks (conv → BatchNorm
→ spiking node, over all T steps at once) mapping ``[T, B, C/2, H, W]`` to the same shape (Gomez et
al. 2017; Zhang & Zhang, AAAI 2024):

    (E7.0)  X̄ = q(X)                the stack's input on the grid δ = 2^-Q (straight-through)
    (E7.1)  Y₁ = X̄₁ + F(X̄₂)
    (E7.2)  Y₂ = X̄₂ + G(Y₁)

and inverts without storing anything but Y:

    (E7.3)  X̄₂ = Y₂ − G(Y₁)
    (E7.4)  X̄₁ = Y₁ − F(X̄₂)

:class:`RevSequence` runs a stack of blocks as ONE autograd Function that saves only the stack's
output (which the next layer stores as its input anyway). Its backward walks the blocks last to
first; per block it evaluates G once and F once under autograd, and each evaluation serves both the
inversion (E7.3)/(E7.4) and the vector-Jacobian products (RevNet's backward, Gomez et al. Alg. 1):

    (E7.5)  Ȳ₁* = Ȳ₁ + (∂G/∂Y₁)ᵀ Ȳ₂;     X̄̄₁ = Ȳ₁*;    Ḡθ = (∂G/∂θ_G)ᵀ Ȳ₂
    (E7.6)  X̄̄₂ = Ȳ₂ + (∂F/∂X₂)ᵀ Ȳ₁*;                 F̄θ = (∂F/∂θ_F)ᵀ Ȳ₁*

NOTE [exactness on the grid]
============================
In floating point Y₂ − G(Y₁) is not X₂ in general: Y₂ = fl(X₂ + G) rounds, so the subtraction is
off by up to half an ulp of Y₂. That error is small (≈1e-7 relative in fp32), but F and G contain
threshold decisions, and a value within one ulp of the threshold flips a spike, an error of the size
of a spike. The stack therefore snaps its input to the grid δ = 2^-Q (E7.0) and requires F and G to
return values on a grid (a spiking node's output is 0/1; ReversibleLIF's is on δ'/2 = 2^-13 for
fp32). Sums of grid values with magnitude below 2^(24 - 13) = 2048 in fp32 are exact, so (E7.3) and
(E7.4) reproduce the forward's inputs *bit for bit*, F and G recompute bit-identical values, and the
gradients equal those of plain autograd up to the order of floating-point summations (≤ 1e-6
relative, ``tests/test_blocks.py``). The forward checks the exactness condition per block
(``Y₁ − F == X̄₁`` and ``Y₂ − G == X̄₂``) and raises :class:`~revsnn.ReconstructionError` when it
fails.
``grid_bits=None`` turns the grid off (float arithmetic): reconstruction is then off by rounding and
the gradients by more (measured in ``tests/test_blocks.py``; see :func:`reconstruction_error`).

"""

from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import nn

from ..functional.quantize import quantize
from ..nodes.base import ReconstructionError, saved_or_explain
from ..nodes.recompute import capture_rng, frozen_running_stats, replay_rng, reset_neuron_states, \
    uses_rng

__all__ = ["RevBlock", "RevSequence", "BLOCK_MODES", "reconstruction_error"]

BLOCK_MODES = ("reversible", "plain")
"""``reversible``: one autograd Function per stack, saves only its output; ``plain``: the same
network under ordinary autograd (a standard spiking ResNet, every activation stored)."""


# --------------------------------------------------------------------------------------------
# The coupling


def _halves(x: torch.Tensor):
    c = x.shape[2] // 2
    return x[:, :, :c], x[:, :, c:]


class RevBlock(nn.Module):
    """One additive coupling (E7.1)/(E7.2) with its inverse (E7.3)/(E7.4).

    >>> from revsnn.layers.units import ConvBNNode
    >>> torch.manual_seed(0) is not None
    True
    >>> blk = RevBlock(ConvBNNode(2, 2), ConvBNNode(2, 2)).eval()
    >>> x = torch.randint(0, 3, (2, 1, 4, 3, 3)).float()
    >>> torch.equal(blk.inverse(blk(x)), x)
    True
    """

    def __init__(self, f: nn.Module, g: nn.Module):
        super().__init__()
        self.f, self.g = f, g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = _halves(x)
        y1 = x1 + self.f(x2)                                   # (E7.1)
        y2 = x2 + self.g(y1)                                   # (E7.2)
        return torch.cat([y1, y2], dim=2)

    @torch.no_grad()
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = _halves(y)
        with frozen_running_stats(self):
            x2 = y2 - self.g(y1)                               # (E7.3)
            x1 = y1 - self.f(x2)                               # (E7.4)
        return torch.cat([x1, x2], dim=2)


def _check_exact(sum_, term, addend, grid_bits, which):
    if grid_bits is not None and not torch.equal(sum_ - term, addend):
        raise ReconstructionError(
            f"RevSequence: the coupling {which} is not exactly invertible in "
            f"{sum_.dtype}: its sub-block output is off the grid or the stream left the exact "
            f"range (|x| < 2^(significand bits - {grid_bits} - 1)); end F and G in a spiking "
            f"node, lower grid_bits, or use float64")


class _RevStackFunction(torch.autograd.Function):
    """One autograd node over a stack of :class:`RevBlock`; saves only the stack's output."""

    @staticmethod
    def forward(x, stack, grid_bits, record_rng, *params):
        x = x.detach()  # module hooks (e.g. MemTracker's) must not see a grad-requiring input here
        if grid_bits is not None:
            x = quantize(x, 2.0 ** -grid_bits)                                   # (E7.0)
        x1, x2 = _halves(x)
        states_cpu, states_cuda = [], []

        def call(sub, inp):
            if record_rng:                       # the state each F/G call starts from, in order
                cpu, cuda = capture_rng(x.device)
                states_cpu.append(cpu)
                if cuda is not None:
                    states_cuda.append(cuda)
            reset_neuron_states(sub)
            return sub(inp)

        for blk in stack.blocks:
            f = call(blk.f, x2)
            y1 = x1 + f                                                          # (E7.1)
            _check_exact(y1, f, x1, grid_bits, "Y1 = X1 + F(X2)")
            g = call(blk.g, y1)
            y2 = x2 + g                                                          # (E7.2)
            _check_exact(y2, g, x2, grid_bits, "Y2 = X2 + G(Y1)")
            x1, x2 = y1, y2
        empty = torch.empty(0, dtype=torch.uint8)
        cpu = torch.stack(states_cpu) if states_cpu else empty
        cuda = torch.stack(states_cuda) if states_cuda else empty.to(x.device)
        return torch.cat([x1, x2], dim=2), cpu, cuda

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, stack, grid_bits, record_rng, *params = inputs
        y, cpu, cuda = output
        ctx.mark_non_differentiable(cpu, cuda)
        ctx.save_for_backward(y, *((cpu, cuda) if record_rng else ()))
        ctx.stack, ctx.grid_bits, ctx.record_rng = stack, grid_bits, record_rng

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy, _g_cpu, _g_cuda):
        y, *rng = saved_or_explain(ctx, "RevBlock")
        stack, dev = ctx.stack, y.device
        params = [p for p in stack.parameters() if p.requires_grad]
        grads = {id(p): None for p in params}
        y1, y2 = (h.contiguous() for h in _halves(y))
        gy1, gy2 = (h.contiguous() for h in _halves(gy))

        def rng_at(i):
            if not rng:
                return None, None
            cpu, cuda = rng
            return cpu[i], (cuda[i] if cuda.numel() else None)

        def vjp(sub, inp, gout, i):
            """Evaluate sub(inp) under autograd; return (value, ∂/∂inp, and accumulate θ grads)."""
            own = [p for p in sub.parameters() if p.requires_grad]
            cpu, cuda = rng_at(i)
            with torch.enable_grad(), frozen_running_stats(sub), replay_rng(cpu, cuda, dev):
                reset_neuron_states(sub)
                leaf = inp.detach().requires_grad_()
                out = sub(leaf)
            g = torch.autograd.grad(out, [leaf, *own], gout, allow_unused=True)
            for p, gp in zip(own, g[1:]):
                if gp is not None:
                    grads[id(p)] = gp if grads[id(p)] is None else grads[id(p)] + gp
            return out.detach(), g[0]

        for k in range(len(stack.blocks) - 1, -1, -1):
            blk = stack.blocks[k]
            g_val, g_in = vjp(blk.g, y1, gy2, 2 * k + 1)
            x2 = y2 - g_val                                                      # (E7.3)
            gy1 = gy1 + g_in if g_in is not None else gy1                        # (E7.5)
            f_val, f_in = vjp(blk.f, x2, gy1, 2 * k)
            x1 = y1 - f_val                                                      # (E7.4)
            gx2 = gy2 + f_in if f_in is not None else gy2                        # (E7.6)
            y1, y2, gy2 = x1, x2, gx2
        gx = torch.cat([gy1, gy2], dim=2)
        return (gx, None, None, None, *(grads[id(p)] for p in params))


class RevSequence(nn.Module):
    """A stack of :class:`RevBlock` run as one reversible autograd Function (or plainly).

    Args:
        blocks: the blocks, each mapping ``[T, B, C, H, W]`` to the same shape.
        grid_bits: Q of the stream grid δ = 2^-Q (NOTE [exactness on the grid]); ``None`` turns the
            grid off (inexact float reconstruction).
        mode: ``"reversible"`` (default) or ``"plain"`` (ordinary autograd, stores everything).
    """

    def __init__(self, blocks: Iterable[RevBlock], grid_bits: Optional[int] = 12,
                 mode: str = "reversible"):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        if not len(self.blocks):
            raise ValueError("RevSequence: needs at least one block")
        if mode not in BLOCK_MODES:
            raise ValueError(f"RevSequence: mode must be one of {BLOCK_MODES}, got {mode!r}")
        self.grid_bits = grid_bits
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[2] % 2:
            raise ValueError(f"RevSequence: expected [T, B, C, ...] with even C, got "
                             f"{tuple(x.shape)}")
        params = [p for p in self.parameters() if p.requires_grad]
        if self.mode == "plain" or not (torch.is_grad_enabled()
                                        and (x.requires_grad or params)):
            if self.grid_bits is not None:
                x = quantize(x, 2.0 ** -self.grid_bits)                          # (E7.0)
            for blk in self.blocks:
                x = blk(x)
            return x
        record = self.training and uses_rng(self)
        y, _, _ = _RevStackFunction.apply(x, self, self.grid_bits, record, *params)
        return y

    @torch.no_grad()
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct the (gridded) stack input from its output."""
        for blk in reversed(self.blocks):
            y = blk.inverse(y)
        return y

    def extra_repr(self) -> str:
        return f"grid_bits={self.grid_bits}, mode={self.mode!r}"


def reconstruction_error(stack: RevSequence, x: torch.Tensor) -> float:
    """max |inverse(forward(x)) − q(x)|: 0 on the grid, rounding-sized without it."""
    with torch.no_grad(), frozen_running_stats(stack):
        xq = x if stack.grid_bits is None else quantize(x, 2.0 ** -stack.grid_bits)
        y = xq
        for blk in stack.blocks:
            y = blk(y)
        return float((stack.inverse(y) - xq).abs().max())
