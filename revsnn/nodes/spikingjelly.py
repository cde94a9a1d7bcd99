"""SpikingJelly's ``LIFNode`` as a node of the protocol (the comparison baseline; needs SpikingJelly,
:mod:`revsnn.baselines`)."""

from __future__ import annotations

import torch

from ..baselines import require_spikingjelly
from .base import SpikingNode, Stored, check_numbers, check_sequence

__all__ = ["SpikingJellyLIF"]


class SpikingJellyLIF(SpikingNode):
    """SpikingJelly ``LIFNode(step_mode='m')`` that starts every call from rest (state reset first).

    Keyword arguments use revsnn's names (``surrogate`` is a revsnn surrogate, translated).
    """

    kind = "SpikingJelly LIFNode"

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset=0.0, surrogate=None, detach_reset: bool = False, **_ignored):
        super().__init__()
        check_numbers("SpikingJellyLIF", tau=tau, v_threshold=v_threshold, v_reset=v_reset)
        if not tau > 1.0:          # SpikingJelly's own check is a bare assert
            raise ValueError(f"SpikingJellyLIF: tau must be > 1, got {tau!r}")
        if v_reset is not None and not v_reset < v_threshold:
            raise ValueError(f"SpikingJellyLIF: v_reset ({v_reset}) must be below v_threshold "
                             f"({v_threshold}); raise v_threshold, lower v_reset, or use "
                             f"v_reset=None (soft reset)")
        require_spikingjelly()
        from spikingjelly.activation_based import neuron, surrogate as sj_surrogate

        from ..surrogate import ATan, Sigmoid
        surrogate = surrogate or Sigmoid()
        if isinstance(surrogate, ATan):
            sg = sj_surrogate.ATan(alpha=surrogate.alpha)
        elif isinstance(surrogate, Sigmoid):
            sg = sj_surrogate.Sigmoid(alpha=surrogate.alpha)
        else:
            raise ValueError(f"no SpikingJelly equivalent for surrogate {surrogate!r}")
        self.node = neuron.LIFNode(tau=float(tau), decay_input=decay_input,
                                   v_threshold=v_threshold, v_reset=v_reset,
                                   surrogate_function=sg, detach_reset=detach_reset,
                                   step_mode="m")

    def stored(self, dtype: torch.dtype) -> tuple:
        """As revsnn's LIF: H − θ, 1 − S and H per step (hard reset), H − θ only (soft reset)."""
        if self.node.v_reset is None:
            return (Stored("H−θ per step", "neuron-step"),)
        return (Stored("H−θ, 1−S, H per step", "neuron-step", count=3),)

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        v0 = 0.0 if self.node.v_reset is None else self.node.v_reset
        return torch.full_like(x[0], v0)

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        check_sequence(x, node="SpikingJellyLIF")
        self._refuse_state(state)
        self.node.reset()
        try:
            y = self.node(x)
        except RuntimeError as exc:
            if "functorch transforms" not in str(exc):
                raise
            raise NotImplementedError(
                "SpikingJellyLIF: SpikingJelly's own autograd Functions do not run under "
                "torch.func transforms (grad, jvp, vjp); use loss.backward(), or revsnn's LIF "
                "(mode 'bptt', the same equations) under torch.func") from None
        return (y, self.node.v) if return_state else y
