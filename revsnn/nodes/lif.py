"""Standard spiking nodes with SpikingJelly's semantics: :class:`LIF` and :class:`IF` (equations
(E1.x) and step functions in :mod:`revsnn.functional.lif`), and :class:`Checkpointed`.

Nodes take a whole sequence, time first ``[T, B, ...]`` (SpikingJelly's ``step_mode='m'``), and
start every call from rest (V = V_reset, or 0 for soft reset) unless an initial state is passed, so
no state leaks between batches. The modules only hold hyperparameters.

>>> import torch
>>> lif = LIF()
>>> x = torch.full((4, 1, 1), 1.5)
>>> lif(x).flatten().tolist()      # H = 0.75, 1.125 → fire, reset to 0, 0.75, 1.125 → fire
[0.0, 1.0, 0.0, 1.0]
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..functional.lif import LIFParams, if_step, lif_step
from ..surrogate import Sigmoid, Surrogate
from .base import SpikingNode, Stored, check_numbers, check_sequence

__all__ = ["LIF", "IF", "Checkpointed"]


class _MultiStepNode(SpikingNode):
    _step = staticmethod(lif_step)

    def __init__(self, params: LIFParams):
        super().__init__()
        if params.v_reset is not None and params.v_reset >= params.v_threshold:
            raise ValueError(
                f"{type(self).__name__}: v_reset ({params.v_reset}) must be below v_threshold "
                f"({params.v_threshold}); raise v_threshold, lower v_reset, or use v_reset=None "
                f"(soft reset)")
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
        check_numbers("LIF", tau=tau, v_threshold=v_threshold, v_reset=v_reset)
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
            try:
                return checkpoint(self.node, x, state, return_state, use_reentrant=False)
            except RuntimeError as exc:
                if "saved tensor hooks" not in str(exc):
                    raise
                raise NotImplementedError(
                    f"{self.kind}: torch.utils.checkpoint relies on saved-tensor hooks, which "
                    f"torch.func.grad / vjp / jacrev do not support; use loss.backward(), or the "
                    f"node without checkpointing (mode 'bptt'), under torch.func") from None
        return self.node(x, state, return_state)
