"""The exact binary-spike reversible LIF :class:`BinaryReversibleLIF`, and the one autograd Function
that runs it alone or after a recomputed synapse (:class:`~revsnn.layers.units.BinarySpikingUnit`).

The equations, their inverse and the backward's VJP are in :mod:`revsnn.functional.binary`
(NOTE [binary reversible LIF equations], NOTE [binary backward]).

NOTE [what is stored, and where the input comes from]
=====================================================
Inverting also needs x̂ at every step, and x̂ carries ~F+log|X| bits, far more than the 2-bit
budget; no node can rebuild it from its own output. The budget is met because the node's input is
the previous layer's output passed through a synapse: X = BN(conv(S_in)), and S_in is binary.
:class:`BinarySpikingUnit` (synapse + node) therefore saves, per neuron-step of its output:

- S, packed 8 per byte: 1 bit. The same packed tensor is the next unit's saved input (it is
  attached to the output spikes and picked up by the next unit), so it is stored ONCE and serves
  both this node's (E6.1) and the next synapse's recomputation and weight gradient;
- R, packed: ⌈log₂τ⌉ bits (1 bit for τ = 2).

Total: 2 bits per neuron-step for τ = 2 (SpikingJelly's PyTorch LIFNode: 96 bits, plus 32 for the
conv input and 32 for the BatchNorm input). Per neuron, independent of T: the final membrane V_T
(int16 when it fits, else int32), reported separately. Nothing else: no X, no H, no V sequence.
In backward the unit unpacks S_in, recomputes X = synapse(S_in) under autograd (BatchNorm frozen,
RNG replayed: NOTE [what recomputation breaks] in :mod:`revsnn.nodes.recompute`), walks t = T−1 … 0 with
(E6.*), computes X̄ by (E6.4), and backpropagates X̄ through the recomputed synapse. The first
unit of a network gets an analog input (the image); it keeps that tensor by reference (it is the
network's input, stored anyway).

The standalone :class:`BinaryReversibleLIF` has no synapse to recompute X from, so it keeps its
input X by reference (``saved_tensor_bytes`` reports it as ``shared_input``, not ``own``) and saves
only S and R itself (own: 2 bits per neuron-step + V_T).

NOTE [replay]
=============
Once X is recomputed anyway, the membranes can also be rebuilt *forwards*: re-run (E5.1–E5.5) from
V_0 = 0 (``reconstruct="replay"``). The integer arithmetic is deterministic, so this is as exact as
the walk back, and it needs neither R nor V_T: the node then stores only S, which the next layer
stores anyway, i.e. 1 bit per neuron-step and nothing per neuron. Measured on VGG-11 (T = 8) this
is the leanest configuration (``revsnn bench beyond``). The walk back (``"reverse"``, the MacKay
design, default) costs R and V_T but needs only the current membrane while it runs; it is the form
to use where X can be streamed one step at a time (e.g. without BatchNorm statistics over all T, or
to rebuild long sequences with :meth:`BinaryReversibleLIF.inverse`, which works step by step),
whereas a replay in reverse order must either keep all T charges or recompute. The fused backward
here recomputes the synapse over all T at once (BatchNorm's statistics span T·B) and keeps the T
charges of one layer as a transient when replaying; reversing, it fuses the walk with (E6.4) and
keeps one step. Replaying checks that the charges reproduce the stored spikes; reversing checks that
the walk ends at V_0 = 0 (a wrong x̂ or trace derails the walk for good).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ..functional.binary import (BINARY_BACKWARD_ALGORITHMS, RECONSTRUCT_MODES, BinaryLIFParams,
                                 BinaryTrace, _integer_forward, _narrow, _reference_forward,
                                 _to_grid, _unpack_remainder, _unpack_rows, binary_step_inverse,
                                 node_backward, pack_spikes, unpack_spikes)
from ..functional.quantize import SIGNIFICAND_BITS, compute_dtype, has_tangent, under_vmap
from ..surrogate import Sigmoid, Surrogate
from .base import (ON_DRIFT, KernelBackend, ReconstructionError, SpikingNode, Stored, check_choice,
                   check_drift, check_exact_range, check_numbers, check_sequence,
                   saved_or_explain)
from .compiled import assert_reconstructed
from .recompute import capture_rng, frozen_running_stats, replay_rng, reset_neuron_states, uses_rng

__all__ = ["BinaryReversibleLIF", "DRIFT_CAUSE", "integer_forward", "fused_backward"]

_PACKED_ATTR = "_revsnn_packed_spikes"


def _attach_packed(spikes: torch.Tensor, packed: torch.Tensor) -> None:
    """Let the next unit find the packed copy of ``spikes`` (and save that very tensor): the pair
    travels with the tensor object through ``nn.Sequential``; a view, a copy or an in-place change
    (checked by the version counter) loses it, and the next unit then packs its input itself."""
    setattr(spikes, _PACKED_ATTR, (packed, spikes._version))


def _packed_of(x: torch.Tensor) -> Optional[torch.Tensor]:
    """The packed copy a previous unit attached to ``x``, if ``x`` was not modified since."""
    entry = getattr(x, _PACKED_ATTR, None)
    if entry is None:
        return None
    packed, version = entry
    n = math.prod(x.shape[1:])
    if x._version != version or packed.shape != (x.shape[0], (n + 7) // 8):
        return None
    return packed


def _check_range(x: torch.Tensor, p: BinaryLIFParams, who: str) -> None:
    """The exact-range guard for this node: the integer path needs |X|/δ < 2^30, the float
    reference < 2^(significand bits − 2) of the dtype it computes in (fp32 for half-precision
    inputs, so the default grid holds |X| < 1024 in every dtype but fp64)."""
    bound = 2.0 ** (min(30, SIGNIFICAND_BITS[compute_dtype(x.dtype)] - 2) - p.grid_bits)
    check_exact_range(x, bound, who=who, grid_bits=p.grid_bits,
                      remedy="normalise the input (e.g. BatchNorm) or lower grid_bits")


DRIFT_CAUSE = ("the recomputed input differs from the forward's (non-deterministic synapse), or "
               "a saved tensor was modified.")
"""Why a binary node's reconstruction fails, for the drift guard's message."""


def _drift(v0_err, flips, bad, on_drift: str) -> None:
    """The drift guard of a binary walk (:func:`revsnn.nodes.base.check_drift`) on the diagnostics of
    :func:`revsnn.functional.binary.node_backward` (in a graph: NOTE [compiled nodes])."""
    if torch.compiler.is_compiling():
        if on_drift != "ignore":
            assert_reconstructed(torch.as_tensor(v0_err) + flips + bad, "BinaryReversibleLIF",
                                 DRIFT_CAUSE)
        return
    check_drift("BinaryReversibleLIF", on_drift, flips=int(flips), state_error=int(v0_err),
                inexact=int(bad), unit=" grid steps", cause=DRIFT_CAUSE)


def integer_forward(z: torch.Tensor, p: BinaryLIFParams, remainders: bool, backend: str):
    """The integer forward over all T steps on ``backend`` (as resolved by
    :meth:`BinaryReversibleLIF.backend_for`): ``(spikes, trace)``, bit-equal on both."""
    if backend == "triton":
        from ..kernels.fused import binary_forward
        spikes, trace = binary_forward(z, p, remainders)
        return spikes, trace._replace(v_final=_narrow(trace.v_final))
    return _integer_forward(z, p, remainders=remainders)


def fused_backward(z, trace: BinaryTrace, gs, p: BinaryLIFParams, reconstruct: str, backend: str):
    """:func:`revsnn.functional.binary.node_backward` on ``backend`` (bit-equal on both)."""
    if backend == "triton":
        from ..kernels.fused import binary_backward
        return binary_backward(z, trace, gs, p, reconstruct)
    return node_backward(z, trace, gs, p, reconstruct)


def _run_synapse(synapse: Optional[nn.Module], x: torch.Tensor) -> torch.Tensor:
    if synapse is None:
        return x
    T, B = x.shape[:2]
    return synapse(x.flatten(0, 1)).unflatten(0, (T, B))


class _BinaryLIFFunctionTraceable(torch.autograd.Function):
    """One autograd node over all T steps of (synapse +) node. Saves the source of X (packed input
    spikes, or the analog input by reference), packed S, and (``reconstruct="reverse"``) packed R
    and V_T: NOTE [what is stored, and where the input comes from]."""

    @staticmethod
    def forward(x, packed_in, rng_cpu, rng_cuda, p, synapse, reconstruct, on_drift, backend,
                *params):
        # detached: module hooks (e.g. MemTracker's) must not see a grad-requiring input here
        z = _run_synapse(synapse, x.detach())
        _check_range(z, p, "BinaryReversibleLIF")
        spikes, trace = integer_forward(z, p, reconstruct == "reverse", backend)
        return spikes, trace.spikes, trace.remainders, trace.v_final

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, packed_in, rng_cpu, rng_cuda, p, synapse, reconstruct, on_drift, backend, *params = \
            inputs
        _, packed, rem, v = output
        ctx.mark_non_differentiable(packed, rem, v)
        source = packed_in if packed_in is not None else x
        rng = tuple(t for t in (rng_cpu, rng_cuda) if t is not None)
        trace = (packed, rem, v) if reconstruct == "reverse" else (packed,)
        ctx.save_for_backward(source, *trace, *rng)
        ctx.n_trace = len(trace)
        ctx.from_packed = packed_in is not None
        ctx.has_cuda_rng = rng_cuda is not None
        ctx.x_meta = (tuple(x.shape), x.dtype)
        ctx.p, ctx.synapse, ctx.reconstruct, ctx.on_drift = p, synapse, reconstruct, on_drift
        ctx.backend = backend

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gs, _g_packed, _g_rem, _g_v):
        source, *rest = saved_or_explain(ctx, "BinaryReversibleLIF")
        trace, rng = rest[:ctx.n_trace], rest[ctx.n_trace:]
        if len(trace) == 1:
            trace = (trace[0], None, None)
        shape, dtype = ctx.x_meta
        x = unpack_spikes(source, shape, dtype) if ctx.from_packed else source
        synapse = ctx.synapse
        params = [q for q in synapse.parameters() if q.requires_grad] if synapse else []
        rng_cpu = rng[0] if rng else None
        rng_cuda = rng[1] if ctx.has_cuda_rng else None
        want_x = ctx.needs_input_grad[0]
        if synapse is None:
            z, leaf = x, None
        else:
            with torch.enable_grad(), frozen_running_stats(synapse), \
                    replay_rng(rng_cpu, rng_cuda, x.device):
                reset_neuron_states(synapse)
                leaf = x.detach().requires_grad_(want_x)
                z = _run_synapse(synapse, leaf)
        gs = torch.zeros_like(z) if gs is None else gs
        gz, diagnostics = fused_backward(z.detach(), BinaryTrace(*trace), gs, ctx.p,
                                         ctx.reconstruct, ctx.backend)
        _drift(*diagnostics, ctx.on_drift)
        nones = (None,) * 8
        if synapse is None:
            return (gz, *nones)
        wrt = ([leaf] if want_x else []) + params
        grads = list(torch.autograd.grad(z, wrt, gz, allow_unused=True)) if wrt else []
        gx = grads.pop(0) if want_x else None
        return (gx, *nones, *grads)


class _BinaryLIFFunction(_BinaryLIFFunctionTraceable):
    """The same Function, refusing forward mode with a clear message (the one without ``jvp`` is
    used while ``torch.compile`` traces, which cannot trace a Function that defines ``jvp``)."""

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError(
            "BinaryReversibleLIF(backward='fused') has no forward-mode derivative (torch.func.jvp, "
            "jacfwd, torch.autograd.forward_ad); use backward='autograd' for forward mode")


class BinaryReversibleLIF(KernelBackend, SpikingNode):
    """LIF with soft reset on a fixed-point membrane whose backward reconstructs it bit-exactly.

    Input ``[T, B, ...]``; output TRUE binary spikes {0, 1} of the same shape and dtype. Equations
    and what is stored: this module's NOTE blocks. Standalone it keeps its input by reference (it
    cannot recompute it); inside :class:`BinarySpikingUnit` the input is recomputed from the
    previous layer's packed spikes and the node costs 2 bits per neuron-step (τ = 2) + V_T with
    ``reconstruct="reverse"``, 1 bit (the spikes, shared with the next layer) with ``"replay"``.

    Args:
        tau: τ, an integer ≥ 2 (powers of two use a shift; others store ⌈log₂τ⌉ remainder bits).
        v_threshold: θ (snapped to the grid).
        surrogate: surrogate gradient; ``Sigmoid(4)`` by default.
        grid_bits: F, fractional bits of the membrane grid δ = 2^-F (default 12).
        backward: ``"fused"`` (default) or ``"autograd"`` (BPTT reference through the same forward).
        reconstruct: how the fused backward rebuilds the membranes: ``"reverse"`` (default; walk
            back from V_T with the stored remainders, MacKay et al.) or ``"replay"`` (re-run the
            integer forward from V_0 = 0; stores neither R nor V_T). See NOTE [replay].
        on_drift: ``"raise"`` (default), ``"warn"`` or ``"ignore"`` when the walk back disagrees.
        backend: what runs the loops over T: ``"auto"`` (default: the Triton kernels for CUDA
            tensors when installed, else PyTorch), ``"torch"`` or ``"triton"`` (NOTE [backends]
            in :mod:`revsnn.kernels`; bit-equal results). The integer forward (with the bit
            packing) and the fused backward (reverse and replay) have kernels; the synapse a
            :class:`BinarySpikingUnit` recomputes stays PyTorch's.

    ``node(x, return_state=True)`` also returns V_T in grid units (``None`` after a training call
    with ``reconstruct="replay"``, which keeps nothing per neuron), as every node of the protocol
    returns its final state (NOTE [node protocol] in :mod:`revsnn.nodes.base`).

    >>> node = BinaryReversibleLIF()
    >>> node(torch.full((4, 1, 1), 1.5)).flatten().tolist()   # as LIF(v_reset=None): 0.75, 1.125 …
    [0.0, 1.0, 0.0, 1.0]
    >>> trace = node.trace(torch.full((4, 1, 1), 1.5))
    >>> bool((node.inverse(trace, torch.full((4, 1, 1), 1.5))[0] == 0).all())   # V_0 recovered
    True
    """

    HYPERPARAMETERS = frozenset({"tau", "v_threshold", "surrogate", "on_drift", "backend"})
    """The hyperparameters shared with the other node families that this node takes (its
    ``grid_bits`` means the membrane grid, not ReversibleLIF's input grid, so it is not shared)."""

    def __init__(self, tau: int = 2, v_threshold: float = 1.0,
                 surrogate: Optional[Surrogate] = None, grid_bits: int = 12,
                 backward: str = "fused", reconstruct: str = "reverse", on_drift: str = "raise",
                 backend: str = "auto"):
        super().__init__()
        self._init_backend(backend, backward, "'fused'")
        check_numbers("BinaryReversibleLIF", tau=tau, v_threshold=v_threshold, grid_bits=grid_bits)
        check_choice("BinaryReversibleLIF", "reconstruct", reconstruct, RECONSTRUCT_MODES)
        if int(tau) != tau or tau < 2:
            raise ValueError(f"BinaryReversibleLIF: tau must be an integer >= 2, got {tau!r}")
        check_choice("BinaryReversibleLIF", "backward", backward, BINARY_BACKWARD_ALGORITHMS)
        check_choice("BinaryReversibleLIF", "on_drift", on_drift, ON_DRIFT)
        if not 1 <= int(grid_bits) <= 24:
            raise ValueError(f"BinaryReversibleLIF: grid_bits must be in [1, 24], got "
                             f"{grid_bits!r}")
        if not v_threshold > 0:
            raise ValueError(f"BinaryReversibleLIF: v_threshold must be positive, got "
                             f"{v_threshold!r}")
        self.tau, self.v_threshold, self.grid_bits = int(tau), float(v_threshold), int(grid_bits)
        self.surrogate = surrogate or Sigmoid()
        self.backward_algorithm, self.on_drift = backward, on_drift
        self.reconstruct = reconstruct


    def params(self) -> BinaryLIFParams:
        theta = round(self.v_threshold * 2 ** self.grid_bits)
        if theta <= 0:
            raise ValueError(f"BinaryReversibleLIF: v_threshold rounds to 0 on grid "
                             f"2^-{self.grid_bits}")
        return BinaryLIFParams(self.tau, self.tau // 2, theta, self.grid_bits,
                               (self.tau - 1).bit_length(), self.surrogate)

    invertible = True

    @property
    def kind(self) -> str:
        return f"BinaryReversibleLIF ({self.reconstruct})"

    def bits_per_neuron_step(self) -> int:
        """Bits the node stores per neuron-step: 1 (S) + ⌈log₂τ⌉ (R) when reversing, 1 (S) when
        replaying (V_T, per neuron, comes on top when reversing)."""
        return 1 + (self.params().rem_bits if self.reconstruct == "reverse" else 0)

    def stored(self, dtype: torch.dtype) -> tuple:
        """Standalone: its input by reference, the packed spikes S (1 bit per neuron-step), and
        when reversing the packed remainders R (⌈log₂τ⌉ bits) and V_T (int16 when every value
        fits, else int32). In a :class:`BinarySpikingUnit` the input is the previous unit's
        packed spikes instead (NOTE [what is stored, and where the input comes from]). Under
        ``backward="autograd"``: H − θ per step, the BPTT reference."""
        if self.backward_algorithm == "autograd":
            return (Stored("H−θ per step", "neuron-step"),)
        items = [Stored("input X (by reference)", "input"),
                 Stored("spikes S, packed", "neuron-step", bits=1)]
        if self.reconstruct == "reverse":
            items += [Stored("leak remainders R, packed", "neuron-step",
                             bits=self.params().rem_bits),
                      Stored("final membrane V_T (int16)", "neuron", dtype=torch.int16)]
        return tuple(items)

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        """The resting membrane V_0 = 0 in grid units (int32), one step's shape."""
        return torch.zeros(x.shape[1:], dtype=torch.int32, device=x.device)

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        """Spikes ``[T, B, ...]`` from rest (and the final membrane V_T in grid units; ``None``
        after a training call with ``reconstruct="replay"``, which keeps nothing per neuron)."""
        check_sequence(x, node="BinaryReversibleLIF")
        self._refuse_state(state)
        if under_vmap(x):
            raise ValueError(
                "BinaryReversibleLIF does not run under torch.vmap: its forward packs the spikes "
                "of all neurons into bytes and narrows V_T by its values. The node is already "
                "batched over dim 1 ([T, B, ...]): pass the whole batch in one call (torch.func.grad "
                "works), or loop over the vmapped dimension")
        spikes, v = _apply(self, None, x)
        return (spikes, v) if return_state else spikes

    # -- the forward / inverse pair ---------------------------------------------------------------
    @torch.no_grad()
    def trace(self, x: torch.Tensor) -> BinaryTrace:
        """The integer forward's trace (packed S, packed R, V_T) for input ``x``."""
        p = self.params()
        _check_range(x, p, "BinaryReversibleLIF")
        return _integer_forward(x, p)[1]

    @torch.no_grad()
    def inverse(self, trace: BinaryTrace, x: torch.Tensor) -> torch.Tensor:
        """Walk back from V_T: membranes V_0 … V_T (int32 ``[T+1, ...]``) rebuilt from the trace and
        the input (E6.*); compare with :func:`binary_membranes` for a bit-exactness check."""
        p = self.params()
        T, n = x.shape[0], math.prod(x.shape[1:])
        v = trace.v_final.reshape(-1).to(torch.int32)
        out = [v]
        for t in range(T - 1, -1, -1):
            s = _unpack_rows(trace.spikes[t].unsqueeze(0), n)[0]
            r = _unpack_remainder(trace.remainders[t], n)
            v, _, bad = binary_step_inverse(s, r, v, _to_grid(x[t].reshape(-1), p), p)
            bad = int(bad)
            if bad:
                raise ReconstructionError(f"BinaryReversibleLIF.inverse: step {t} does not invert "
                                          f"({bad} inexact divisions): trace and input disagree")
            out.append(v)
        return torch.stack(out[::-1]).view(T + 1, *x.shape[1:])

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, v_threshold={self.v_threshold}, grid_bits={self.grid_bits}, "
                f"surrogate={self.surrogate!r}, backward={self.backward_algorithm!r}, "
                f"reconstruct={self.reconstruct!r}, backend={self.backend!r}")


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _apply(node: BinaryReversibleLIF, synapse: Optional[nn.Module], x: torch.Tensor,
           pack_input: bool = True) -> tuple:
    """Run (synapse +) node with the node's backward algorithm; attaches the packed spikes.
    Returns ``(spikes, V_T in grid units or None)``."""
    p = node.params()
    backend = node.backend_for(x)
    node.last_backend = backend
    if node.backward_algorithm == "fused" and has_tangent(x):
        raise NotImplementedError(
            "BinaryReversibleLIF(backward='fused') has no forward-mode derivative (torch.func.jvp, "
            "jacfwd, torch.autograd.forward_ad); use backward='autograd' for forward mode")
    if node.backward_algorithm == "autograd":
        z = _run_synapse(synapse, x)
        _check_range(z, p, "BinaryReversibleLIF")
        spikes, v = _reference_forward(z, p)
        return spikes, torch.round(v.detach() * 2 ** p.grid_bits).to(torch.int32)
    params = [q for q in synapse.parameters() if q.requires_grad] if synapse is not None else []
    if not (torch.is_grad_enabled() and (x.requires_grad or params)):
        with torch.no_grad():
            z = _run_synapse(synapse, x)
            _check_range(z, p, "BinaryReversibleLIF")
            spikes, trace = integer_forward(z, p, True, backend)
        _attach_packed(spikes, trace.spikes)
        return spikes, trace.v_final
    packed_in = None
    if synapse is not None and not torch.compiler.is_compiling():
        # packing the input needs a look at its values; a graph keeps it by reference instead
        packed_in = _packed_of(x)
        if packed_in is None and pack_input and _is_binary(x.detach()):
            packed_in = pack_spikes(x.detach())
    rng_cpu = rng_cuda = None
    if synapse is not None and synapse.training and uses_rng(synapse):
        rng_cpu, rng_cuda = capture_rng(x.device)
    fn = _BinaryLIFFunctionTraceable if torch.compiler.is_compiling() else _BinaryLIFFunction
    spikes, packed, _, v = fn.apply(x, packed_in, rng_cpu, rng_cuda, p, synapse, node.reconstruct,
                                    node.on_drift, backend, *params)
    _attach_packed(spikes, packed)
    # replaying keeps nothing per neuron: do not hand out (and so keep alive) V_T either
    return spikes, (v if node.reconstruct == "reverse" else None)
