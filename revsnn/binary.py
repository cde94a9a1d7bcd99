"""Exact binary-spike reversible LIF: :class:`BinaryReversibleLIF` and :class:`BinarySpikingUnit`.

NOTE [binary reversible LIF equations]
======================================
The standard LIF with soft reset and ``decay_input`` (SpikingJelly's ``LIFNode(v_reset=None)``,
(E1.1), (E1.4), (E1.6)), run on a fixed-point membrane: integers in units of δ = 2^-F
(``grid_bits`` = F), τ an integer ≥ 2, θ̂ = round(θ/δ), c = ⌊τ/2⌋. Per step, on int32:

    (E5.0)  x̂ = round(X/δ)                          input on the grid (straight-through gradient)
    (E5.1)  m = ⌊(x̂ − V + c) / τ⌋                    the leak: (X − V)/τ rounded to nearest
    (E5.2)  R = (x̂ − V + c) − τ·m   ∈ [0, τ)         the remainder the division destroys
    (E5.3)  H = V + m
    (E5.4)  S = Θ(H − θ̂)                              a TRUE binary spike in {0, 1}
    (E5.5)  V' = H − θ̂·S                              soft reset

The output is S itself. (E5.1) is the float charge H = V + (X − V)/τ up to half a grid step per step
(plus δ/(2τ) from (E5.0)); the error contracts by (1 − 1/τ) each step, so membranes stay within
(τ + 1)·δ/2 of the float LIF's until a spike decision near threshold differs. Measured (F = 12,
τ = 2, inputs N(0, 1.5²), T = 64, 4096 neurons): 1.41 δ, and 14 of 262144 spikes differ; F = 16: 0
differ (``tests/test_binary.py``).

Inverting one step (MacKay et al. 2018: the information the forward destroys is stored, compactly):
the leak destroys R (log₂τ bits) and the reset destroys which of H and H − θ̂ produced V'
(1 bit, S). With both, and x̂:

    (E6.1)  H = V' + θ̂·S
    (E6.2)  (τ − 1)·m = x̂ − H − R + c                 [from x̂ − V + c = τm + R and V = H − m]
    (E6.3)  V = H − m

Integer arithmetic, so the inversion is *bit-exact* for any T; for τ > 2 the division in (E6.2) must
leave no remainder, which the backward checks.

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
RNG replayed: NOTE [what recomputation breaks] in :mod:`revsnn.blocks`), walks t = T−1 … 0 with
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

NOTE [binary backward]
======================
``backward="autograd"`` runs (E5.*) in floating point under autograd (x̂δ = q(X) and the floor in
(E5.1) with straight-through gradients; every value is a multiple of δ below 2^(24−F) in fp32, so it
computes the same spikes as the integer path) and stores every intermediate: the BPTT reference.
``"fused"`` (default) is one autograd Function; its backward rebuilds H at every step ((E6.*), or
the replay) and computes the vector-Jacobian product directly, with no graph, from d = σ'(Hδ − θ)
and the incoming S̄, V̄':

    (E6.4)  H̄ = S̄·d + V̄'·(1 − θ·d);    X̄ = H̄/τ;    V̄ = H̄·(1 − 1/τ)
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import nn

from .nodes.base import (ON_DRIFT, SIGNIFICAND_BITS, SpikingNode, Stored, check_choice, check_drift,
                         check_exact_range, check_sequence, straight_through)
from .blocks import (capture_rng, frozen_running_stats, replay_rng, reset_neuron_states,
                     uses_rng)
from .reversible import ReconstructionError, quantize
from .surrogate import Sigmoid, Surrogate

__all__ = [
    "BinaryReversibleLIF", "BinarySpikingUnit", "BinaryLIFParams",
    "BinaryTrace", "pack_spikes", "unpack_spikes", "binary_step", "binary_step_inverse",
    "binary_membranes", "BINARY_BACKWARD_ALGORITHMS", "RECONSTRUCT_MODES",
]

BINARY_BACKWARD_ALGORITHMS = ("autograd", "fused")
RECONSTRUCT_MODES = ("reverse", "replay")

_PACKED_ATTR = "_revsnn_packed_spikes"
_SHIFTS = torch.arange(8, dtype=torch.uint8)
_BITS = torch.ones(8, dtype=torch.uint8) << _SHIFTS


# --------------------------------------------------------------------------------------------
# Bit packing


def _pack_rows(bits: torch.Tensor) -> torch.Tensor:
    """bool/0-1 ``[R, N]`` → uint8 ``[R, ⌈N/8⌉]``, bit j of byte i = element 8i + j."""
    rows, n = bits.shape
    pad = (-n) % 8
    b = bits.to(torch.uint8)
    if pad:
        b = torch.cat([b, b.new_zeros(rows, pad)], dim=1)
    b = b.view(rows, -1, 8) << _SHIFTS.to(b.device)
    return b.sum(dim=2, dtype=torch.uint8)


def _unpack_rows(packed: torch.Tensor, n: int) -> torch.Tensor:
    """uint8 ``[R, ⌈N/8⌉]`` → bool ``[R, N]``."""
    bits = (packed.unsqueeze(-1) & _BITS.to(packed.device)) != 0
    return bits.view(packed.shape[0], -1)[:, :n]


def pack_spikes(spikes: torch.Tensor) -> torch.Tensor:
    """Pack a 0/1 sequence ``[T, ...]`` 8 per byte: uint8 ``[T, ⌈N/8⌉]`` with N = numel per step.

    >>> s = torch.tensor([[1., 0, 0, 1, 1, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0, 0, 0]])
    >>> p = pack_spikes(s); p
    tensor([[25,  1],
            [ 2,  0]], dtype=torch.uint8)
    >>> torch.equal(unpack_spikes(p, s.shape), s)
    True
    """
    if spikes.dim() < 1:
        raise ValueError("pack_spikes: expected a sequence [T, ...]")
    return _pack_rows(spikes.reshape(spikes.shape[0], -1))


def unpack_spikes(packed: torch.Tensor, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of :func:`pack_spikes`: a ``shape`` tensor of 0/1 in ``dtype``."""
    shape = tuple(shape)
    n = math.prod(shape[1:])
    return _unpack_rows(packed, n).to(dtype).view(shape)


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


# --------------------------------------------------------------------------------------------
# Parameters and pure step functions


class BinaryLIFParams(NamedTuple):
    """Hyperparameters on the grid.

    tau: τ, an integer ≥ 2.
    half: c = ⌊τ/2⌋ (rounding offset of the leak).
    theta: θ̂ = round(θ/δ), the threshold in grid units (int).
    grid_bits: F; δ = 2^-F.
    rem_bits: ⌈log₂τ⌉, bits stored per neuron-step for the remainder R.
    surrogate: surrogate gradient of Θ.
    """

    tau: int
    half: int
    theta: int
    grid_bits: int
    rem_bits: int
    surrogate: Surrogate

    @property
    def grid(self) -> float:
        return 2.0 ** -self.grid_bits

    @property
    def theta_float(self) -> float:
        return self.theta * self.grid


def _to_grid(x: torch.Tensor, p: BinaryLIFParams) -> torch.Tensor:
    """(E5.0) x̂ = round(X/δ) as int32 (X/δ is exact: δ is a power of two)."""
    return torch.mul(x, 2.0 ** p.grid_bits).round_().to(torch.int32)


def binary_step(x: torch.Tensor, v: torch.Tensor, p: BinaryLIFParams):
    """One integer step (E5.1–E5.5): ``(x̂, V) -> (S, R, H, V')``; S bool, the rest int32."""
    d = torch.sub(x, v).add_(p.half)
    if p.tau & (p.tau - 1) == 0:                           # τ a power of two: shift and mask
        m = d >> (p.tau.bit_length() - 1)                  # (E5.1) arithmetic shift = floor
        r = d.bitwise_and_(p.tau - 1)                      # (E5.2)
    else:
        m = torch.div(d, p.tau, rounding_mode="floor")     # (E5.1)
        r = d.sub_(m * p.tau)                              # (E5.2)
    h = m.add_(v)                                          # (E5.3)
    s = h >= p.theta                                       # (E5.4)
    v = torch.add(h, s, alpha=-p.theta)                    # (E5.5)
    return s, r, h, v


def binary_step_inverse(s: torch.Tensor, r: torch.Tensor, v_next: torch.Tensor, x: torch.Tensor,
                        p: BinaryLIFParams):
    """Invert one step (E6.1–E6.3): ``(S, R, V', x̂) -> (V, H, bad)``.

    ``bad`` counts elements where (E6.2) left a remainder (impossible unless the inputs differ from
    the forward's).
    """
    h = torch.add(v_next, s, alpha=p.theta)                # (E6.1)
    num = torch.sub(x, h).sub_(r).add_(p.half)             # (E6.2): (τ − 1)·m
    if p.tau == 2:
        return num.neg_().add_(h), h, 0                    # (E6.3): V = H − m
    m = torch.div(num, p.tau - 1, rounding_mode="floor")
    bad = int(num.sub_(m * (p.tau - 1)).count_nonzero())
    return m.neg_().add_(h), h, bad                        # (E6.3)


def binary_membranes(x: torch.Tensor, p: BinaryLIFParams) -> torch.Tensor:
    """Membranes V_0 … V_T (int32, ``[T+1, ...]``) of the integer forward; for checks and tests."""
    v = torch.zeros(x.shape[1:], dtype=torch.int32, device=x.device)
    out = [v]
    for t in range(x.shape[0]):
        _, _, _, v = binary_step(_to_grid(x[t], p), v, p)
        out.append(v)
    return torch.stack(out)


class BinaryTrace(NamedTuple):
    """What the forward keeps for the backward.

    spikes: packed S, uint8 ``[T, ⌈N/8⌉]`` (1 bit per neuron-step).
    remainders: packed R, uint8 ``[T, rem_bits, ⌈N/8⌉]`` (rem_bits bits per neuron-step); empty
        (``[T, 0, ⌈N/8⌉]``) with ``reconstruct="replay"``.
    v_final: V_T in grid units, shape of one step ``[B, ...]`` (per neuron, independent of T); int16
        when every value fits, else int32. Not saved with ``reconstruct="replay"``.
    """

    spikes: torch.Tensor
    remainders: torch.Tensor
    v_final: torch.Tensor


def _integer_forward(z: torch.Tensor, p: BinaryLIFParams, remainders: bool = True):
    """All T steps without autograd: spikes in ``z.dtype`` and the packed trace."""
    T, step_shape = z.shape[0], z.shape[1:]
    n = math.prod(step_shape)
    zf = z.reshape(T, n)
    s_all = torch.empty(T, n, dtype=torch.bool, device=z.device)
    r_all = torch.empty(T, n, dtype=torch.uint8, device=z.device) if remainders else None
    v = torch.zeros(n, dtype=torch.int32, device=z.device)
    for t in range(T):
        s, r, _, v = binary_step(_to_grid(zf[t], p), v, p)                       # (E5.0–E5.5)
        s_all[t] = s
        if r_all is not None:
            r_all[t] = r
    packed = _pack_rows(s_all)
    if r_all is not None:
        rem = torch.stack([_pack_rows((r_all >> j) & 1) for j in range(p.rem_bits)], dim=1)
    else:
        rem = packed.new_empty(T, 0, packed.shape[1])
    spikes = s_all.view(z.shape).to(z.dtype)
    return spikes, BinaryTrace(packed, rem, _narrow(v).view(step_shape))


def _narrow(v: torch.Tensor) -> torch.Tensor:
    """V_T as int16 when it fits (|V| < 2^(15 − F), e.g. |V| < 8 at F = 12), else int32."""
    if v.numel() and int(v.abs().max()) < 2 ** 15:
        return v.to(torch.int16)
    return v


def _unpack_bits(packed: torch.Tensor, n: int) -> torch.Tensor:
    """uint8 ``[R, ⌈N/8⌉]`` → uint8 0/1 ``[R, N]`` (integer arithmetic takes it as it is)."""
    bits = (packed.unsqueeze(-1) >> _SHIFTS.to(packed.device)).bitwise_and_(1)
    return bits.view(packed.shape[0], -1)[:, :n]


def _unpack_remainder(rem: torch.Tensor, n: int) -> torch.Tensor:
    """Packed R ``[..., rem_bits, ⌈N/8⌉]`` → ``[..., N]`` (uint8 for one plane, else int32)."""
    lead = rem.shape[:-2]
    if rem.shape[-2] == 1:
        return _unpack_bits(rem.reshape(-1, rem.shape[-1]), n).view(*lead, n)
    r = None
    for j in range(rem.shape[-2]):
        plane = _unpack_bits(rem[..., j, :].reshape(-1, rem.shape[-1]), n).to(torch.int32)
        r = plane if r is None else r.add_(plane << j)
    return r.view(*lead, n)


def _check_range(x: torch.Tensor, p: BinaryLIFParams, who: str) -> None:
    """The exact-range guard for this node: the integer path needs |X|/δ < 2^30, the float
    reference < 2^(significand bits − 2)."""
    bound = 2.0 ** (min(30, SIGNIFICAND_BITS[x.dtype] - 2) - p.grid_bits)
    check_exact_range(x, bound, who=who, grid_bits=p.grid_bits,
                      remedy="normalise the input (e.g. BatchNorm) or lower grid_bits")


DRIFT_CAUSE = ("the recomputed input differs from the forward's (non-deterministic synapse), or "
               "a saved tensor was modified.")
"""Why a binary node's reconstruction fails, for the drift guard's message."""


def _drift(v0_err: int, flips: int, bad: int, on_drift: str) -> None:
    """The drift guard of a binary walk (:func:`revsnn.nodes.base.check_drift`), by its older name."""
    check_drift("BinaryReversibleLIF", on_drift, flips=int(flips), state_error=v0_err,
                inexact=bad, unit=" grid steps", cause=DRIFT_CAUSE)


class _FloorSTE:
    """⌊u⌋ with a straight-through gradient (:func:`revsnn.nodes.base.straight_through`), by its
    older name."""

    @staticmethod
    def apply(u: torch.Tensor) -> torch.Tensor:
        return straight_through(u, rounding=torch.floor)


def _step_vjp(h: torch.Tensor, gs: torch.Tensor, gv: Optional[torch.Tensor],
              p: BinaryLIFParams, out: torch.Tensor) -> torch.Tensor:
    """(E6.4) for one step: writes H̄ = S̄·d + V̄'·(1 − θd) into ``out``; returns V̄ = H̄·(1 − 1/τ)
    (the caller scales all H̄ by 1/τ into X̄ at the end)."""
    d = p.surrogate.derivative(h.to(gs.dtype).mul_(p.grid).sub_(p.theta_float))  # σ'(Hδ − θ)
    if gv is None:                                                              # V̄_T = 0
        torch.mul(gs, d, out=out)
    else:
        torch.addcmul(gv, d, torch.add(gs, gv, alpha=-p.theta_float), out=out)  # V̄' + d(S̄ − θV̄')
    return out * (1.0 - 1.0 / p.tau)


def _node_backward(z: torch.Tensor, trace: BinaryTrace, gs: torch.Tensor, p: BinaryLIFParams,
                   reconstruct: str, on_drift: str) -> torch.Tensor:
    """X̄ for the node input ``z`` (``[T, B, ...]``) from the trace.

    ``"reverse"``: one pass t = T−1 … 0 that inverts the step (E6.1–E6.3) and applies (E6.4) at
    once; its transient state is one step (V, H, V̄); it checks that the walk ends at V_0 = 0.
    ``"replay"``: re-runs (E5.*) from V_0 = 0 into a ``[T, N]`` buffer of charges, then applies
    (E6.4) backwards (NOTE [replay]); it checks that the charges reproduce the stored spikes.
    """
    T, n = z.shape[0], math.prod(z.shape[1:])
    zf, gsf = z.reshape(T, n), gs.reshape(T, n)
    gx = torch.empty_like(zf)
    flips = torch.zeros((), dtype=torch.long, device=z.device)
    v0_err = bad = 0
    if reconstruct == "reverse":
        charges = None
        v = trace.v_final.reshape(-1).to(torch.int32)
    else:
        charges = torch.empty(T, n, dtype=torch.int32, device=z.device)
        v = torch.zeros(n, dtype=torch.int32, device=z.device)
        for t in range(T):
            _, _, charges[t], v = binary_step(_to_grid(zf[t], p), v, p)        # (E5.0–E5.5)
    gv = None
    for t in range(T - 1, -1, -1):
        if charges is None:
            # the walk's own check is V_0 = 0 below; a wrong x̂ or trace derails it for good
            s = _unpack_bits(trace.spikes[t:t + 1], n)[0]
            r = _unpack_remainder(trace.remainders[t], n)
            v, h, b = binary_step_inverse(s, r, v, _to_grid(zf[t], p), p)      # (E6.1–E6.3)
            bad += b
        else:
            h = charges[t]
            flips += (h >= p.theta).ne_(_unpack_rows(trace.spikes[t:t + 1], n)[0]).sum()
        gv = _step_vjp(h, gsf[t], gv, p, out=gx[t])                             # (E6.4)
    if charges is None:
        v0_err = int(v.abs().max())
    _drift(v0_err, int(flips), bad, on_drift)
    return gx.mul_(1.0 / p.tau).view(z.shape)                                   # X̄ = H̄/τ


# --------------------------------------------------------------------------------------------
# The autograd Function (node alone, or synapse + node)


def _run_synapse(synapse: Optional[nn.Module], x: torch.Tensor) -> torch.Tensor:
    if synapse is None:
        return x
    T, B = x.shape[:2]
    return synapse(x.flatten(0, 1)).unflatten(0, (T, B))


class _BinaryLIFFunction(torch.autograd.Function):
    """One autograd node over all T steps of (synapse +) node. Saves the source of X (packed input
    spikes, or the analog input by reference), packed S, and (``reconstruct="reverse"``) packed R
    and V_T: NOTE [what is stored, and where the input comes from]."""

    @staticmethod
    def forward(x, packed_in, rng_cpu, rng_cuda, p, synapse, reconstruct, on_drift, *params):
        # detached: module hooks (e.g. MemTracker's) must not see a grad-requiring input here
        z = _run_synapse(synapse, x.detach())
        _check_range(z, p, "BinaryReversibleLIF")
        spikes, trace = _integer_forward(z, p, remainders=reconstruct == "reverse")
        return spikes, trace.spikes, trace.remainders, trace.v_final

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, packed_in, rng_cpu, rng_cuda, p, synapse, reconstruct, on_drift, *params = inputs
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

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gs, _g_packed, _g_rem, _g_v):
        source, *rest = ctx.saved_tensors
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
        gz = _node_backward(z.detach(), BinaryTrace(*trace), gs, ctx.p, ctx.reconstruct,
                            ctx.on_drift)
        nones = (None,) * 7
        if synapse is None:
            return (gz, *nones)
        wrt = ([leaf] if want_x else []) + params
        grads = list(torch.autograd.grad(z, wrt, gz, allow_unused=True)) if wrt else []
        gx = grads.pop(0) if want_x else None
        return (gx, *nones, *grads)


def _reference_forward(z: torch.Tensor, p: BinaryLIFParams):
    """(E5.*) in floating point under autograd (the BPTT reference): returns (S, V_T)."""
    g = p.grid
    v = torch.zeros_like(z[0])
    out = []
    for t in range(z.shape[0]):
        xq = quantize(z[t], g)                                                  # (E5.0)
        u = (xq - v + p.half * g) / (p.tau * g)
        h = v + straight_through(u, rounding=torch.floor) * g                   # (E5.1), (E5.3)
        s = p.surrogate(h - p.theta_float)                                      # (E5.4)
        v = h - p.theta_float * s                                               # (E5.5)
        out.append(s)
    return torch.stack(out), v


# --------------------------------------------------------------------------------------------
# Modules


class BinaryReversibleLIF(SpikingNode):
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

    HYPERPARAMETERS = frozenset({"tau", "v_threshold", "surrogate", "on_drift"})
    """The hyperparameters shared with the other node families that this node takes (its
    ``grid_bits`` means the membrane grid, not ReversibleLIF's input grid, so it is not shared)."""

    def __init__(self, tau: int = 2, v_threshold: float = 1.0,
                 surrogate: Optional[Surrogate] = None, grid_bits: int = 12,
                 backward: str = "fused", reconstruct: str = "reverse", on_drift: str = "raise"):
        super().__init__()
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
            if bad:
                raise ReconstructionError(f"BinaryReversibleLIF.inverse: step {t} does not invert "
                                          f"({bad} inexact divisions): trace and input disagree")
            out.append(v)
        return torch.stack(out[::-1]).view(T + 1, *x.shape[1:])

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, v_threshold={self.v_threshold}, grid_bits={self.grid_bits}, "
                f"surrogate={self.surrogate!r}, backward={self.backward_algorithm!r}, "
                f"reconstruct={self.reconstruct!r}")


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _apply(node: BinaryReversibleLIF, synapse: Optional[nn.Module], x: torch.Tensor,
           pack_input: bool = True) -> tuple:
    """Run (synapse +) node with the node's backward algorithm; attaches the packed spikes.
    Returns ``(spikes, V_T in grid units or None)``."""
    p = node.params()
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
            spikes, trace = _integer_forward(z, p)
        _attach_packed(spikes, trace.spikes)
        return spikes, trace.v_final
    packed_in = None
    if synapse is not None:
        packed_in = _packed_of(x)
        if packed_in is None and pack_input and _is_binary(x.detach()):
            packed_in = pack_spikes(x.detach())
    rng_cpu = rng_cuda = None
    if synapse is not None and synapse.training and uses_rng(synapse):
        rng_cpu, rng_cuda = capture_rng(x.device)
    spikes, packed, _, v = _BinaryLIFFunction.apply(x, packed_in, rng_cpu, rng_cuda, p, synapse,
                                                    node.reconstruct, node.on_drift, *params)
    _attach_packed(spikes, packed)
    # replaying keeps nothing per neuron: do not hand out (and so keep alive) V_T either
    return spikes, (v if node.reconstruct == "reverse" else None)


class BinarySpikingUnit(nn.Module):
    """Synapse (e.g. [pool →] conv → BatchNorm) followed by a :class:`BinaryReversibleLIF`.

    The synapse maps one step ``[B, ...]`` (it is applied to the merged ``T·B`` batch); the unit
    maps ``[T, B, ...]`` to binary spikes ``[T, B, ...]``. A binary input (the previous unit's
    spikes) is saved packed — the very tensor the previous unit saved, so it is counted once — and
    the synapse is recomputed in backward; an analog input (an image) is kept by reference. See NOTE
    [what is stored, and where the input comes from].

    Args:
        synapse: module applied per step (on ``T·B``); its BatchNorms are frozen and its RNG
            replayed when recomputed.
        node: the :class:`BinaryReversibleLIF` (default: ``BinaryReversibleLIF()``). With
            ``backward="autograd"`` the unit is plain autograd (synapse and node), the reference.
        pack_input: save a binary input packed (default True); False keeps it by reference.

    >>> unit = BinarySpikingUnit(nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)))
    >>> s = unit((torch.rand(3, 2, 2, 5, 5) > 0.5).float())
    >>> s.shape, bool(((s == 0) | (s == 1)).all())
    (torch.Size([3, 2, 4, 5, 5]), True)
    """

    def __init__(self, synapse: nn.Module, node: Optional[BinaryReversibleLIF] = None,
                 pack_input: bool = True):
        super().__init__()
        self.synapse = synapse
        self.node = node if node is not None else BinaryReversibleLIF()
        if not isinstance(self.node, BinaryReversibleLIF):
            raise TypeError("BinarySpikingUnit: node must be a BinaryReversibleLIF")
        self.pack_input = pack_input

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        """Spikes ``[T, B, ...]`` (and the node's final membrane, as :meth:`BinaryReversibleLIF.forward`)."""
        check_sequence(x, node="BinarySpikingUnit")
        self.node._refuse_state(state)
        spikes, v = _apply(self.node, self.synapse, x, self.pack_input)
        return (spikes, v) if return_state else spikes
