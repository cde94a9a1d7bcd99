"""Standard spiking nodes with SpikingJelly's semantics: :class:`LIF` and :class:`IF`.

Equations (labels are cited in the notebooks and tests):

- (E1.1) charge, ``decay_input=True``:   H[t] = V[t-1] + (X[t] − (V[t-1] − V_reset)) / τ
- (E1.2) charge, ``decay_input=False``:  H[t] = V[t-1] − (V[t-1] − V_reset) / τ + X[t]
- (E1.3) IF charge:                      H[t] = V[t-1] + X[t]
- (E1.4) fire:                           S[t] = Θ(H[t] − V_th), gradient from the surrogate
- (E1.5) hard reset:                     V[t] = S[t]·V_reset + (1 − S[t])·H[t]
- (E1.6) soft reset (``v_reset=None``):  V[t] = H[t] − S[t]·V_th

Nodes take a whole sequence, time first ``[T, B, ...]`` (SpikingJelly's ``step_mode='m'``), and
start every call from rest (V = V_reset, or 0 for soft reset) unless an initial state is passed, so
no state leaks between batches. The maths lives in the pure step functions :func:`lif_step` and
:func:`if_step`; the modules only hold hyperparameters.

>>> import torch
>>> lif = LIF()
>>> x = torch.full((4, 1, 1), 1.5)
>>> lif(x).flatten().tolist()      # H = 0.75, 1.125 → fire, reset to 0, 0.75, 1.125 → fire
[0.0, 1.0, 0.0, 1.0]
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .nodes.base import SpikingNode, Stored, check_sequence
from .surrogate import Sigmoid, Surrogate

__all__ = ["LIFParams", "lif_step", "if_step", "LIF", "IF", "Checkpointed"]


class LIFParams(NamedTuple):
    """Hyperparameters of a LIF/IF node.

    tau: membrane time constant τ (timesteps, > 1); ignored by IF.
    v_threshold: firing threshold V_th.
    v_reset: reset potential V_reset; ``None`` selects the soft reset (E1.6).
    decay_input: whether the input is divided by τ (E1.1) or added directly (E1.2).
    surrogate: surrogate gradient of Θ.
    detach_reset: whether the reset term is excluded from the gradient.
    """

    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: Optional[float] = 0.0
    decay_input: bool = True
    surrogate: Surrogate = Sigmoid()
    detach_reset: bool = False


def _fire_and_reset(h: torch.Tensor, p: LIFParams):
    s = p.surrogate(h - p.v_threshold)                      # (E1.4)
    sd = s.detach() if p.detach_reset else s
    if p.v_reset is None:
        v = h - sd * p.v_threshold                          # (E1.6)
    else:
        v = sd * p.v_reset + (1.0 - sd) * h                 # (E1.5)
    return s, v


def lif_step(x: torch.Tensor, v: torch.Tensor, p: LIFParams):
    """One LIF step: ``(X[t], V[t-1]) -> (S[t], V[t])``."""
    v_reset = 0.0 if p.v_reset is None else p.v_reset
    if p.decay_input:
        h = v + (x - (v - v_reset)) / p.tau                 # (E1.1)
    else:
        h = v - (v - v_reset) / p.tau + x                   # (E1.2)
    return _fire_and_reset(h, p)


def if_step(x: torch.Tensor, v: torch.Tensor, p: LIFParams):
    """One IF step: ``(X[t], V[t-1]) -> (S[t], V[t])``."""
    return _fire_and_reset(v + x, p)                        # (E1.3)


class _MultiStepNode(SpikingNode):
    _step = staticmethod(lif_step)

    def __init__(self, params: LIFParams):
        super().__init__()
        if params.v_reset is not None and params.v_reset >= params.v_threshold:
            raise ValueError(
                f"v_reset ({params.v_reset}) must be below v_threshold ({params.v_threshold})")
        self.params = params

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        """The resting state for a sequence ``x``: V_reset (0 for soft reset), shape ``x[0]``."""
        v0 = 0.0 if self.params.v_reset is None else self.params.v_reset
        return torch.full_like(x[0], v0)

    def stored(self, dtype: torch.dtype) -> tuple:
        """Per neuron-step: H − θ (the surrogate's input), and with a hard reset 1 − S and H (the
        reset's product; 1 − S only with ``detach_reset``)."""
        p = self.params
        if p.v_reset is None:
            return (Stored("H−θ per step", "neuron-step"),)
        if p.detach_reset:
            return (Stored("H−θ, 1−S per step", "neuron-step", count=2),)
        return (Stored("H−θ, 1−S, H per step", "neuron-step", count=3),)

    def forward(self, x: torch.Tensor, state: Optional[torch.Tensor] = None,
                return_state: bool = False):
        """Run the node over ``x = [T, B, ...]`` from ``state`` (V, default: rest); returns spikes
        ``[T, B, ...]`` (and the final V)."""
        check_sequence(x, node=type(self).__name__)
        v = state
        if v is None:
            v = self.initial_state(x)
        elif v.shape != x.shape[1:]:
            raise ValueError(f"{type(self).__name__}: state shape {tuple(v.shape)} does not match "
                             f"the per-step input shape {tuple(x.shape[1:])}")
        spikes = []
        # unbind, not x[t]: one backward node for all steps instead of T zero-filled [T, ...] grads
        for xt in x.unbind(0):
            s, v = self._step(xt, v, self.params)
            spikes.append(s)
        out = torch.stack(spikes)
        return (out, v) if return_state else out

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.params._asdict().items())


class LIF(_MultiStepNode):
    """Leaky integrate-and-fire node, equal to SpikingJelly's ``LIFNode(step_mode='m')``.

    Args mirror SpikingJelly: ``tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0`` (``None`` =
    soft reset), ``surrogate=Sigmoid(alpha=4)``, ``detach_reset=False``.
    """

    HYPERPARAMETERS = frozenset({"tau", "decay_input", "v_threshold", "v_reset", "surrogate",
                                 "detach_reset"})

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: Optional[float] = 0.0, surrogate: Optional[Surrogate] = None,
                 detach_reset: bool = False):
        if not tau > 1.0:
            raise ValueError(f"LIF: tau must be > 1, got {tau!r}")
        super().__init__(LIFParams(float(tau), float(v_threshold),
                                   None if v_reset is None else float(v_reset), bool(decay_input),
                                   surrogate or Sigmoid(), bool(detach_reset)))


class IF(_MultiStepNode):
    """Integrate-and-fire node, equal to SpikingJelly's ``IFNode(step_mode='m')``."""

    _step = staticmethod(if_step)

    def __init__(self, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 surrogate: Optional[Surrogate] = None, detach_reset: bool = False):
        super().__init__(LIFParams(2.0, float(v_threshold),
                                   None if v_reset is None else float(v_reset), True,
                                   surrogate or Sigmoid(), bool(detach_reset)))


class Checkpointed(SpikingNode):
    """Run a node under non-reentrant activation checkpointing: keep its input, recompute in backward."""

    def __init__(self, node: nn.Module):
        super().__init__()
        self.node = node

    @property
    def kind(self) -> str:
        return f"{getattr(self.node, 'kind', type(self.node).__name__)} (checkpoint)"

    def initial_state(self, x: torch.Tensor):
        return self.node.initial_state(x)

    def stored(self, dtype: torch.dtype) -> tuple:
        return (Stored("node input (recomputed from it)", "input"),)

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        if torch.is_grad_enabled() and x.requires_grad:
            return checkpoint(self.node, x, state, return_state, use_reentrant=False)
        return self.node(x, state, return_state)
