"""Surrogate gradients for the Heaviside spike function.

A spiking neuron fires ``S = Θ(H − V_th)``. Θ has zero derivative almost everywhere, so training
replaces its derivative by that of a smooth *primitive* g (the surrogate). The forward stays binary.

The two surrogates here match SpikingJelly 2.0.0 bit for bit:

- :class:`Sigmoid` (default, α = 4):  g(x) = sigmoid(αx),   g'(x) = α·sigmoid(αx)·(1 − sigmoid(αx))
- :class:`ATan` (α = 2):              g(x) = ½ + atan(π/2·αx)/π,   g'(x) = (α/2) / (1 + (π/2·αx)²)

Every surrogate exposes ``derivative(x)`` (used by the fused reversible backward, which needs no
autograd graph) and ``primitive(x)`` (the smooth function whose derivative it is, used to check
backward algebra with finite differences).

>>> import torch
>>> s = Sigmoid()
>>> x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
>>> s(x)
tensor([0., 1., 1.], grad_fn=<HeavisideBackward>)
>>> s(x).sum().backward(); x.grad
tensor([0.0707, 1.0000, 0.0013])
"""

from __future__ import annotations

import math

import torch

__all__ = ["Surrogate", "Sigmoid", "ATan", "heaviside"]


class _HeavisideTraceable(torch.autograd.Function):
    """Θ(x) forward, surrogate derivative backward; without forward mode, which ``torch.compile``
    cannot trace (:func:`heaviside` uses it while compiling)."""

    @staticmethod
    def forward(x: torch.Tensor, surrogate: "Surrogate") -> torch.Tensor:
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, surrogate = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.surrogate = surrogate  # a parameter object, not a tensor

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.derivative(x), None

    generate_vmap_rule = True     # elementwise PyTorch ops only (torch.vmap)


class Heaviside(_HeavisideTraceable):
    """Θ(x) forward, surrogate derivative backward, and in forward mode (``torch.func.jvp``,
    ``jacfwd``) the same surrogate derivative times the tangent."""

    @staticmethod
    def jvp(ctx, x_tangent, _surrogate):
        (x,) = ctx.saved_tensors
        return x_tangent * ctx.surrogate.derivative(x)




def heaviside(x: torch.Tensor, surrogate: "Surrogate") -> torch.Tensor:
    """Binary spike Θ(x) (Θ(0) = 1, as in SpikingJelly) whose gradient is ``surrogate.derivative``."""
    return (_HeavisideTraceable if torch.compiler.is_compiling() else Heaviside).apply(x, surrogate)


class Surrogate:
    """Base class: a Heaviside forward with the derivative of a smooth primitive as its gradient."""

    def __init__(self, alpha: float):
        if not alpha > 0:
            raise ValueError(f"surrogate alpha must be positive, got {alpha!r}")
        self.alpha = float(alpha)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return heaviside(x, self)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative_(self, x: torch.Tensor) -> torch.Tensor:
        """``derivative(x)`` written into ``x`` where the surrogate can (no temporary tensors)."""
        return x.copy_(self.derivative(x))

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.alpha == other.alpha

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.alpha))


class Sigmoid(Surrogate):
    """g'(x) = α·sigmoid(αx)·(1 − sigmoid(αx)); SpikingJelly's default with α = 4."""

    def __init__(self, alpha: float = 4.0):
        super().__init__(alpha)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        sg = torch.mul(x, self.alpha).sigmoid_()
        return torch.rsub(sg, 1.0).mul_(sg).mul_(self.alpha)

    def derivative_(self, x: torch.Tensor) -> torch.Tensor:
        sg = x.mul_(self.alpha).sigmoid_()
        return torch.addcmul(sg, sg, sg, value=-1.0, out=sg).mul_(self.alpha)   # α·sg·(1 − sg)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x * self.alpha)


class ATan(Surrogate):
    """g'(x) = (α/2) / (1 + (π/2·αx)²); SpikingJelly's ATan with α = 2."""

    def __init__(self, alpha: float = 2.0):
        super().__init__(alpha)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        ax = (math.pi / 2 * self.alpha) * x
        return (self.alpha / 2) / (1 + ax * ax)

    def derivative_(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(math.pi / 2 * self.alpha).square_().add_(1.0).reciprocal_().mul_(self.alpha / 2)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 + torch.atan((math.pi / 2 * self.alpha) * x) / math.pi
