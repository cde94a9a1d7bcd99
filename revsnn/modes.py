"""Memory strategies: one Enum names them all, :func:`make_node` builds a node for any of them.

The same Enum is used by the models, the tests, the benchmarks and the dashboard legend.

>>> MemoryMode("fused") is MemoryMode.REVERSIBLE_FUSED
True
>>> type(make_node(MemoryMode.CHECKPOINT)).__name__
'Checkpointed'
"""

from __future__ import annotations

import enum

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .neuron import LIF
from .reversible import ReversibleLIF

__all__ = ["MemoryMode", "make_node", "Checkpointed"]


class MemoryMode(str, enum.Enum):
    """How a spiking node keeps what its backward needs."""

    BPTT = "bptt"
    """Standard LIF, plain backpropagation through time: every intermediate is stored."""
    CHECKPOINT = "checkpoint"
    """Standard LIF under ``torch.utils.checkpoint`` (non-reentrant): stores the input, recomputes."""
    REVERSIBLE_AUTOGRAD = "autograd"
    """ReversibleLIF run under autograd: the reference, stores everything."""
    REVERSIBLE_REVNET = "revnet"
    """ReversibleLIF, reconstruct each step then re-run it under autograd (RevNet-style)."""
    REVERSIBLE_FUSED = "fused"
    """ReversibleLIF, inversion and vector-Jacobian product fused in one pass."""
    EXACT_BINARY = "binary"
    """BinaryReversibleLIF: binary spikes, integer membrane, ≤ 2 stored bits per neuron-step; in a
    network, :class:`~revsnn.BinarySpikingUnit` recomputes the synapse instead of storing its input."""
    REVERSIBLE_BLOCKS = "blocks"
    """Network level: RevNet-style reversible spiking blocks (:mod:`revsnn.blocks`), memory flat in
    depth. Not a node: :func:`make_node` refuses it."""

    @property
    def label(self) -> str:
        """Human-readable name for legends and tables."""
        return _LABELS[self]

    @property
    def node_level(self) -> bool:
        """False for modes that describe a whole network rather than one node."""
        return self is not MemoryMode.REVERSIBLE_BLOCKS

    @classmethod
    def node_modes(cls) -> list:
        """The modes :func:`make_node` builds a node for."""
        return [m for m in cls if m.node_level]

    @property
    def is_reversible(self) -> bool:
        """Modes built on :class:`~revsnn.ReversibleLIF` (which needs an even channel count)."""
        return self in (MemoryMode.REVERSIBLE_AUTOGRAD, MemoryMode.REVERSIBLE_REVNET,
                        MemoryMode.REVERSIBLE_FUSED)

    @classmethod
    def parse(cls, value) -> "MemoryMode":
        """Accept a MemoryMode, its value (``"fused"``) or its name (``"REVERSIBLE_FUSED"``)."""
        if isinstance(value, cls):
            return value
        text = str(value).strip()
        for mode in cls:
            if text in (mode.value, mode.name, mode.name.lower()):
                return mode
        raise ValueError(f"unknown memory mode {value!r}; choose from "
                         f"{', '.join(m.value for m in cls)}")


_LABELS = {
    MemoryMode.BPTT: "LIF (BPTT)",
    MemoryMode.CHECKPOINT: "LIF (checkpoint)",
    MemoryMode.REVERSIBLE_AUTOGRAD: "ReversibleLIF (autograd)",
    MemoryMode.REVERSIBLE_REVNET: "ReversibleLIF (revnet)",
    MemoryMode.REVERSIBLE_FUSED: "ReversibleLIF (fused)",
    MemoryMode.EXACT_BINARY: "BinaryReversibleLIF (exact binary)",
    MemoryMode.REVERSIBLE_BLOCKS: "Reversible spiking blocks",
}

# Keyword arguments each node family understands; make_node drops the others so that one set of
# hyperparameters can configure every mode.
_LIF_KEYS = {"tau", "decay_input", "v_threshold", "v_reset", "surrogate", "detach_reset"}
_REV_KEYS = {"tau", "decay_input", "v_threshold", "surrogate", "coupling", "spike_scale",
             "grid_bits", "on_drift"}
_BINARY_KEYS = {"tau", "v_threshold", "surrogate", "on_drift"}


class Checkpointed(nn.Module):
    """Run a node under non-reentrant activation checkpointing: keep its input, recompute in backward."""

    def __init__(self, node: nn.Module):
        super().__init__()
        self.node = node

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return checkpoint(self.node, x, use_reentrant=False)
        return self.node(x)


def make_node(mode, **node_kwargs) -> nn.Module:
    """Build a multi-step spiking node for ``mode``.

    ``node_kwargs`` are hyperparameters; those a node family does not have are ignored (e.g.
    ``v_reset`` for the reversible node, which always soft-resets; ``coupling`` for LIF).
    """
    mode = MemoryMode.parse(mode)
    unknown = set(node_kwargs) - _LIF_KEYS - _REV_KEYS
    if unknown:
        raise ValueError(f"make_node: unknown node hyperparameters {sorted(unknown)}")
    if not mode.node_level:
        raise ValueError(f"make_node: {mode.value!r} is a network-level mode (reversible blocks); "
                         f"build revsnn.rev_spiking_resnet(...) instead")
    if mode is MemoryMode.EXACT_BINARY:
        from .binary import BinaryReversibleLIF
        kw = {k: v for k, v in node_kwargs.items() if k in _BINARY_KEYS}
        if "tau" in kw and float(kw["tau"]).is_integer():
            kw["tau"] = int(kw["tau"])
        return BinaryReversibleLIF(**kw)
    if mode.is_reversible:
        kw = {k: v for k, v in node_kwargs.items() if k in _REV_KEYS}
        return ReversibleLIF(backward=mode.value, **kw)
    lif = LIF(**{k: v for k, v in node_kwargs.items() if k in _LIF_KEYS})
    return Checkpointed(lif) if mode is MemoryMode.CHECKPOINT else lif
