"""The maths of the standard LIF and IF nodes (SpikingJelly's semantics): pure step functions.

Equations (labels are cited in the notebooks and tests):

- (E1.1) charge, ``decay_input=True``:   H[t] = V[t-1] + (X[t] − (V[t-1] − V_reset)) / τ
- (E1.2) charge, ``decay_input=False``:  H[t] = V[t-1] − (V[t-1] − V_reset) / τ + X[t]
- (E1.3) IF charge:                      H[t] = V[t-1] + X[t]
- (E1.4) fire:                           S[t] = Θ(H[t] − V_th), gradient from the surrogate
- (E1.5) hard reset:                     V[t] = S[t]·V_reset + (1 − S[t])·H[t]
- (E1.6) soft reset (``v_reset=None``):  V[t] = H[t] − S[t]·V_th

The maths lives in the pure step functions :func:`lif_step` and :func:`if_step`; the modules
(:mod:`revsnn.nodes.lif`) only hold hyperparameters and run the steps over a sequence.

>>> import torch
>>> p, v = LIFParams(), torch.zeros(1)
>>> s, v = lif_step(torch.tensor([1.5]), v, p); float(s), float(v)   # H = 0.75: no spike
(0.0, 0.75)
>>> s, v = lif_step(torch.tensor([1.5]), v, p); float(s), float(v)   # H = 1.125: fire, reset
(1.0, 0.0)
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from ..surrogate import Sigmoid, Surrogate

__all__ = ["LIFParams", "lif_step", "if_step"]


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
