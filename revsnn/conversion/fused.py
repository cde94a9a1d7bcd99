"""A user's ``BatchNorm → node`` run as one fused unit, with every weight left where the user put it.

NOTE [absorbed BatchNorm]
=========================
The zoo fuses a BatchNorm into the reversible node after it inside its own ``ConvBNNode``
(:func:`revsnn.layers.bn_node.apply_bn_node`). A user's network has its BN somewhere in its own
modules, applied by its own ``forward`` code. To fuse without changing the user's code or the
names in its state dict:

- the BN module stays at its place with its parameters and buffers, but is *absorbed*: its class
  becomes a subclass (:func:`absorb`, as ``torch.nn.utils.parametrize`` does) whose ``forward`` is
  the identity; the BN's own computation is still there as :meth:`_Absorbed.absorbed_forward`;
- the node is replaced by a :class:`FusedBatchNormNode` that holds the strategy's node and a
  reference to the BN (not a submodule, so the BN is not counted or saved twice) and computes
  ``node(BN(x))`` with the BN input folded to ``[T·B, C, ...]`` exactly as the user's shape
  operations did (NOTE [what a fusable chain is] in :mod:`revsnn.conversion.graph`).

The values are those of the user's network: the BN sees the folded batch either way, and the
shape operations between BN and node only reshape. :func:`release` turns an absorbed BN back into
its own class (the reverse conversion). An absorbed module pickles with its state dict, not as a
whole object (its class is made at run time), like a parametrized module.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers.bn_node import apply_bn_node, can_fuse
from ..nodes.base import SpikingNode
from ..nodes.binary import BinaryReversibleLIF, _apply

__all__ = ["FusedBatchNormNode", "BinaryUnitNode", "absorb", "release", "is_absorbed",
           "plain_forward"]

_CLASSES: dict = {}


class _Absorbed:
    """Mixin of an absorbed module: ``forward`` is the identity (NOTE [absorbed BatchNorm])."""

    _revsnn_absorbed = True

    def forward(self, x, *args, **kwargs):
        return x

    def absorbed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module's own computation on a folded ``[T·B, C, ...]`` batch: the forward of its
        first ``torch.nn`` class (``_BatchNorm.forward``, ``Conv2d.forward``, ...), whatever a
        step-mode subclass such as SpikingJelly's does on top."""
        return plain_forward(self, x)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", absorbed into the node after it"


def plain_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module``'s computation on one folded batch, by the forward of the first class in its
    MRO that ``torch.nn`` defines (skipping absorbed and step-mode subclasses)."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.modules") and "forward" in vars(cls):
            return cls.forward(module, x)
    raise TypeError(f"{type(module).__name__} is not a torch.nn layer")  # pragma: no cover


def absorb(module: nn.Module) -> nn.Module:
    """Make ``module`` (a BatchNorm, or a conv or pool folded into a binary unit) the identity at
    its place, keeping its parameters."""
    cls = type(module)
    if getattr(cls, "_revsnn_absorbed", False):
        return module
    sub = _CLASSES.get(cls)
    if sub is None:
        name = f"Absorbed{cls.__name__}"
        key = f"_{name}_{cls.__module__.replace('.', '_')}"
        sub = type(name, (_Absorbed, cls), {"__module__": __name__, "__qualname__": key})
        _CLASSES[cls] = globals()[key] = sub          # found by name when pickled in-process
    module.__class__ = sub
    return module


def is_absorbed(module: nn.Module) -> bool:
    return getattr(type(module), "_revsnn_absorbed", False)


def release(module: nn.Module) -> nn.Module:
    """The absorbed ``module`` back as its own class (no-op for any other module)."""
    if is_absorbed(module):
        module.__class__ = type(module).__mro__[2]
    return module


class _WrappedNode(SpikingNode):
    """A user's layers and their node run as one unit: the state and what is stored are the
    wrapped node's, and the unit returns its output only."""

    _revsnn_fused_node = True

    def initial_state(self, x: torch.Tensor):
        return self.node.initial_state(x)

    def stored(self, dtype: torch.dtype) -> tuple:
        return self.node.stored(dtype)

    def _output_only(self, state, return_state: bool) -> None:
        self._refuse_state(state)
        if return_state:
            raise ValueError(f"{type(self).__name__}: the unit returns its output only")


class FusedBatchNormNode(_WrappedNode):
    """``node(BN(x))`` on ``x = [T, B, C, ...]`` (the BN's input reshaped as the user's code does)
    through :func:`~revsnn.layers.bn_node.apply_bn_node`: fused (the BN input is not stored) where
    :func:`~revsnn.layers.bn_node.can_fuse` allows, plain BN then node otherwise (e.g. bf16).

    ``bn`` is absorbed (:func:`absorb`) and kept by reference; it stays registered where it was.
    """

    def __init__(self, node: nn.Module, bn: nn.Module, bn_path: str = ""):
        super().__init__()
        self.node = node
        object.__setattr__(self, "_bn", absorb(bn))   # not a submodule (NOTE above)
        self.bn_path = bn_path

    @property
    def bn(self) -> nn.Module:
        return self._bn

    @property
    def kind(self) -> str:
        return f"{getattr(self.node, 'kind', type(self.node).__name__)} + BN (fused)"

    @property
    def fuses_bn(self) -> bool:
        return False                                  # already fused

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        self._output_only(state, return_state)
        T = x.shape[0]
        folded = x.flatten(0, 1)
        if can_fuse(self._bn, self.node, folded):
            return apply_bn_node(folded, self._bn, self.node, T, fuse=True)
        z = self._bn.absorbed_forward(folded)
        return self.node(z.view(x.shape[0], x.shape[1], *z.shape[1:]))

    def extra_repr(self) -> str:
        return f"bn={self.bn_path or type(self._bn).__name__}"


class _Synapse(nn.Module):
    """The absorbed ``[pool →] conv/linear → BN`` of a :class:`BinaryUnitNode`, run by their own
    computations on the folded batch (registered here so that recomputation finds the BN)."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(absorb(m) for m in layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.layers:
            x = plain_forward(m, x)
        return x


class BinaryUnitNode(_WrappedNode):
    """A user's ``[pool →] conv/linear → BN → node`` run as the zoo's recomputing binary unit
    (:class:`~revsnn.layers.units.BinarySpikingUnit`): the synapse is recomputed in backward from
    the packed input spikes instead of storing its input and its BN input.

    The layers stay registered where they were, absorbed (NOTE [absorbed BatchNorm]); the node
    receives what the user's code hands the first of them (reshaped to ``[T, B, ...]``).
    """

    def __init__(self, node: BinaryReversibleLIF, layers, paths=()):
        super().__init__()
        self.node = node
        object.__setattr__(self, "_synapse", _Synapse(*layers))   # not a submodule
        self.paths = tuple(paths)

    @property
    def kind(self) -> str:
        return f"{self.node.kind} unit (recomputes {' → '.join(self.paths)})"

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        self._output_only(state, return_state)
        self._synapse.training = self.training
        return _apply(self.node, self._synapse, x, True)[0]

    def extra_repr(self) -> str:
        return f"synapse={' → '.join(self.paths)}"
