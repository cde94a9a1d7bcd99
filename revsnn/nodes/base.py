"""The node protocol every spiking node implements, and the helpers the nodes share.

NOTE [node protocol]
====================
A spiking node is a :class:`SpikingNode`, an ``nn.Module`` over a time-first sequence
``x = [T, B, ...]`` that starts from rest unless told otherwise:

- ``forward(x, state=None, return_state=False)``: the output sequence, or ``(output, final
  state)`` with ``return_state``; ``state`` is an initial state (nodes that always start from rest
  refuse one).
- ``initial_state(x)``: the resting state for ``x``.
- ``inverse(...)``: nodes that invert (:attr:`SpikingNode.invertible`) rebuild what their forward
  destroyed, as a public check of the pair (ReversibleLIF: input and initial state from output and
  final state; BinaryReversibleLIF: the membranes from its trace and input).
- ``stored(dtype)``: what the node keeps for its backward, as :class:`Stored` items per neuron-step,
  per neuron, or by reference to its input or output; the analytic memory model
  (:mod:`revsnn.analysis.memory_model`) and :meth:`revsnn.models.SpikingNet.nodes` ask the node instead of
  keeping lists of node types.
- ``HYPERPARAMETERS``: the constructor keywords it shares with the other families, so one set of
  hyperparameters configures every strategy (:func:`revsnn.make_node`).
- ``kind``: its name in memory tables; ``fuses_bn``: whether a BatchNorm before it can be fused
  into it (:mod:`revsnn.layers.bn_node`).

Shared by the nodes: input checks (:func:`check_sequence`), the drift guard (:func:`check_drift`,
:class:`ReconstructionError`) and the exact-range check (:func:`check_exact_range`); the one
straight-through rounding is :func:`revsnn.functional.quantize.straight_through`.
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple, Optional

import torch
from torch import nn

from ..functional.quantize import concrete, is_traced
from ..kernels import BACKENDS, resolve_backend, unsupported_reason

__all__ = [
    "SpikingNode", "Stored", "ReconstructionError", "check_drift", "signal_drift",
    "ON_DRIFT", "check_choice", "check_sequence", "check_exact_range", "check_finite_values",
    "require", "INPLACE_CAUSE", "saved_or_explain", "check_numbers", "KernelBackend",
]

ON_DRIFT = ("raise", "warn", "ignore")
"""What a node does when its backward's reconstruction disagrees with the forward."""



class Stored(NamedTuple):
    """One tensor (or group of equal tensors) a node keeps for its backward.

    what: description for tables.
    per: ``"neuron-step"`` (one element per neuron and step), ``"neuron"`` (one per neuron, once),
        ``"input"`` or ``"output"`` (the node's input / output sequence itself, kept by reference:
        in a network another layer may keep the same tensor, so it is counted once).
    count: how many tensors of that size.
    dtype: element dtype; None = the dtype the node computes in for the given input dtype.
    bits: > 0 for bit-packed tensors: that many bit planes, each packed 8 per byte per step.
    """

    what: str
    per: str
    count: int = 1
    dtype: Optional[torch.dtype] = None
    bits: int = 0


class SpikingNode(nn.Module):
    """Base class of every spiking node (NOTE [node protocol])."""

    HYPERPARAMETERS: frozenset = frozenset()
    invertible: bool = False
    fuses_bn: bool = False

    @property
    def kind(self) -> str:
        return type(self).__name__

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        raise NotImplementedError  # pragma: no cover - every node defines it

    def initial_state(self, x: torch.Tensor):
        raise NotImplementedError  # pragma: no cover

    def stored(self, dtype: torch.dtype) -> tuple:
        """What the backward keeps, as :class:`Stored` items, for inputs of ``dtype``."""
        raise NotImplementedError  # pragma: no cover

    def inverse(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} does not invert: its leak and reset destroy information it "
            f"does not keep; ReversibleLIF and BinaryReversibleLIF invert")

    def _refuse_state(self, state) -> None:
        if state is not None:
            raise ValueError(f"{type(self).__name__}: starts every sequence from rest; pass "
                             f"state=None")


def check_numbers(who: str, **values) -> None:
    """``ValueError`` naming ``who`` and the argument for a value that is not a real number
    (``None`` passes: "use the default"), before any comparison could raise ``TypeError``.

    >>> check_numbers("Node", tau=2.0, grid_bits=None)
    >>> check_numbers("Node", tau="abc")
    Traceback (most recent call last):
    ...
    ValueError: Node: tau must be a number, got 'abc' (str)
    """
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise ValueError(f"{who}: {name} must be a number, got {value!r} "
                             f"({type(value).__name__})")


class KernelBackend:
    """What runs a node's loops over T (NOTE [backends] in :mod:`revsnn.kernels`), for the nodes
    with Triton kernels: the ``backend`` option, checked at construction, and its resolution per
    input. The node has ``backward_algorithm`` and ``surrogate``."""

    def _init_backend(self, backend: str, backward: str, kernel_backwards: str) -> None:
        who = type(self).__name__
        check_choice(who, "backend", backend, BACKENDS)
        if backend == "triton" and backward == "autograd":
            raise ValueError(f"{who}: backward='autograd' (plain BPTT, the reference) runs on "
                             f"PyTorch only; backend='triton' needs backward={kernel_backwards}")
        self.backend = backend
        self.last_backend: Optional[str] = None
        """The backend the last forward ran on (``"torch"`` or ``"triton"``), for measurements."""

    def backend_for(self, x: torch.Tensor) -> str:
        """``"torch"`` or ``"triton"``: what runs this node's loops over T for input ``x``."""
        unsupported = ("backward='autograd' runs on PyTorch only"
                       if self.backward_algorithm == "autograd"
                       else unsupported_reason(self.surrogate, x.dtype))
        return resolve_backend(type(self).__name__, self.backend, x, unsupported)


def check_choice(who: str, name: str, value, choices) -> None:
    """``ValueError`` naming ``who``, the argument, the allowed values and the value given."""
    if value not in choices:
        raise ValueError(f"{who}: {name} must be one of {tuple(choices)}, got {value!r}")


# ----------------------------------------------------------------------------------------------
# Input checks

def check_sequence(x: torch.Tensor, *, node: str, even_channels: bool = False,
                   check_finite: bool = False) -> None:
    """Validate a time-first sequence ``[T, B, C, ...]``.

    Raises ``ValueError`` for a non-tensor, rank < 3, a non-floating dtype, T = 0, B = 0, a channel
    or spatial dimension of size 0, an odd channel count where the node splits channels into two
    groups, and (when asked) NaN or Inf values.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{node}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(
            f"{node}: expected a time-first sequence [T, B, C, ...] with rank >= 3, got shape "
            f"{tuple(x.shape)} (rank {x.dim()})")
    if not x.is_floating_point():
        raise ValueError(f"{node}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{node}: the sequence has T = 0 timesteps (shape {tuple(x.shape)})")
    if x.shape[1] == 0:
        raise ValueError(f"{node}: the batch is empty (B = 0, shape {tuple(x.shape)})")
    empty = [d for d in range(2, x.dim()) if x.shape[d] == 0]
    if empty:
        what = "channel" if empty[0] == 2 else "spatial"
        raise ValueError(f"{node}: the {what} dimension (dim {empty[0]}) has size 0 (shape "
                         f"{tuple(x.shape)}); every neuron dimension needs at least one element")
    if even_channels and x.shape[2] % 2 != 0:
        raise ValueError(
            f"{node}: the channel dimension (dim 2) must be even to split into two groups, got "
            f"C = {x.shape[2]} (shape {tuple(x.shape)})")
    if check_finite and not is_traced(x):
        check_finite_values(x, who=f"{node}: input")


def check_finite_values(x: torch.Tensor, *, who: str) -> None:
    """``ValueError`` counting the NaN and Inf values of ``x`` when it has any."""
    c = concrete(x)
    if not bool(torch.isfinite(c).all()):
        raise ValueError(f"{who} contains non-finite values ({int(torch.isnan(c).sum())} NaN, "
                         f"{int(torch.isinf(c).sum())} Inf)")


def require(ok: torch.Tensor, message, *, like: torch.Tensor, static: str = "") -> None:
    """Raise ``ValueError(message())`` unless the boolean tensor ``ok`` is true (``static``, a
    message that reads no value, where none can be read).

    NOTE [guards without host syncs]
    ================================
    A guard on values must not stop ``vmap`` or ``torch.compile``. Eagerly it reads the one
    boolean (the only read; the message is built only on failure), from the plain tensor under any
    ``torch.func`` wrapper (:func:`~revsnn.functional.quantize.concrete`), so under ``vmap`` it checks
    every batch entry at once. While ``torch.compile`` traces (or on fake tensors) it becomes a
    device-side assertion, ``torch._assert_async``, which stays in the graph (no graph break) and
    raises ``RuntimeError`` with the same message when the compiled code runs; on ``meta`` tensors,
    which hold no values, it checks nothing. ``like`` is the tensor the condition came from.
    """
    if like.device.type == "meta":
        return
    if is_traced(like):
        torch._assert_async(ok, static or "revsnn: a value check failed")
        return
    if not bool(concrete(ok).all()):
        raise ValueError(message())


def check_exact_range(x: torch.Tensor, bound: float, *, who: str, grid_bits: int,
                      remedy: str) -> None:
    """The exact-range guard: ``ValueError`` unless every ``|x| < bound`` (NaN/Inf named as such).

    The reversible nodes compute on a fixed-point grid in floating point; their inversion is exact
    only while every value stays an exactly representable multiple of the grid step. One boolean is
    read (NOTE [guards without host syncs]); empty and meta tensors pass.
    """
    if x.numel() == 0 or x.device.type == "meta":
        return
    if is_traced(x):
        ok = (x.detach().abs() < bound).all()
        torch._assert_async(ok, f"{who}: a value is NaN, Inf or outside the exact range |x| < "
                                f"{bound:.4g} for {x.dtype} with grid_bits={grid_bits}; {remedy}")
        return
    c = concrete(x)
    amax = c.abs().amax()
    if bool(amax < bound):
        return
    check_finite_values(c, who=f"{who}: input")
    raise ValueError(f"{who}: input magnitude {float(amax):.4g} is outside the exact range |x| < "
                     f"{bound:.4g} for {x.dtype} with grid_bits={grid_bits}; {remedy}")


# ----------------------------------------------------------------------------------------------
# The drift guard

class ReconstructionError(RuntimeError):
    """The backward's reconstruction disagreed with the forward (see NOTE [drift guard] in
    :mod:`revsnn.nodes.reversible`)."""


INPLACE_CAUSE = (
    "a tensor this node saved for its backward (its output, or its input kept by reference) was "
    "modified in place after the forward, e.g. by nn.ReLU(inplace=True), y.mul_(2) or y += 1 on "
    "the node's output; use the out-of-place form (nn.ReLU(), y = y * 2), clone the output first "
    "(y = node(x).clone()), or choose backward='autograd'")
"""Why reading a node's saved tensors failed, with the fix, for the in-place error."""


def saved_or_explain(ctx, who: str) -> tuple:
    """``ctx.saved_tensors``, turning PyTorch's generic in-place error (a saved tensor's version
    moved on) into a :class:`ReconstructionError` that names the cause and the fix."""
    try:
        return ctx.saved_tensors
    except RuntimeError as exc:
        if "inplace operation" not in str(exc):
            raise
        raise ReconstructionError(f"{who} backward: {INPLACE_CAUSE}. ({exc})") from None


def signal_drift(msg: str, on_drift: str) -> None:
    """Act on a failed reconstruction: raise :class:`ReconstructionError`, warn, or ignore."""
    if on_drift == "raise":
        raise ReconstructionError(msg)
    if on_drift == "warn":
        warnings.warn(msg, RuntimeWarning, stacklevel=4)


def check_drift(who: str, on_drift: str, *, flips: int = 0, state_error: float = 0.0,
                inexact: int = 0, unit: str = "", cause: str = "") -> None:
    """The drift guard every reconstructing backward ends with: when the walk did not end where
    the forward started (``state_error``), a recomputed spike decision disagrees (``flips``) or an
    exact division left a remainder (``inexact``), say so by ``on_drift`` (raise, warn, ignore).

    >>> check_drift("Node", "raise")                  # nothing to report
    >>> check_drift("Node", "raise", flips=2, cause="the saved output was modified.")
    Traceback (most recent call last):
    ...
    revsnn.nodes.base.ReconstructionError: Node backward: reconstruction disagrees with the forward (2 flipped spike decisions, max |V(t=0) error| = 0); the gradients would be wrong. Causes: the saved output was modified.
    """
    if on_drift == "ignore" or (flips == 0 and state_error == 0 and inexact == 0):
        return
    extra = f", {inexact} inexact divisions" if inexact else ""
    msg = (f"{who} backward: reconstruction disagrees with the forward ({int(flips)} flipped "
           f"spike decisions, max |V(t=0) error| = {state_error:.3g}{unit}{extra}); the gradients "
           f"would be wrong." + (f" Causes: {cause}" if cause else ""))
    signal_drift(msg, on_drift)
