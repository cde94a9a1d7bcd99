"""Optional comparison baselines: SpikingJelly's ``LIFNode`` (and its ``memopt``) when installed.

SpikingJelly is not a dependency of revsnn; install it with
``pip install --no-deps spikingjelly==2.0.0 numpy 'loguru>=0.7,<1'`` (a plain install replaces the
CPU torch with a CUDA build).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

import torch

from .nodes.base import SpikingNode, Stored

__all__ = ["spikingjelly_available", "spikingjelly_version", "SpikingJellyLIF"]


def spikingjelly_available() -> bool:
    """True when ``spikingjelly.activation_based`` can be imported."""
    if importlib.util.find_spec("spikingjelly") is None:
        return False
    try:
        import spikingjelly.activation_based.neuron  # noqa: F401
    except Exception:  # a broken install (e.g. a mismatched torchvision) counts as absent
        return False
    return True


def spikingjelly_version() -> str | None:
    try:
        return importlib.metadata.version("spikingjelly")
    except importlib.metadata.PackageNotFoundError:
        return None


def _require():
    if not spikingjelly_available():
        raise ImportError(
            "SpikingJelly is not installed: pip install --no-deps spikingjelly==2.0.0 numpy "
            "'loguru>=0.7,<1'")


class SpikingJellyLIF(SpikingNode):
    """SpikingJelly ``LIFNode(step_mode='m')`` that starts every call from rest (state reset first).

    Keyword arguments use revsnn's names (``surrogate`` is a revsnn surrogate, translated).
    """

    kind = "SpikingJelly LIFNode"

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset=0.0, surrogate=None, detach_reset: bool = False, **_ignored):
        super().__init__()
        _require()
        from spikingjelly.activation_based import neuron, surrogate as sj_surrogate

        from .surrogate import ATan, Sigmoid
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
        self._refuse_state(state)
        self.node.reset()
        y = self.node(x)
        return (y, self.node.v) if return_state else y
