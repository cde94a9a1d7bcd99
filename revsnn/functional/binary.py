"""The maths of the exact binary-spike reversible LIF: integer steps, their inverse, the backward's
vector-Jacobian product and the bit packing of what is stored (the node:
:mod:`revsnn.nodes.binary`).

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

from ..surrogate import Surrogate
from .quantize import compute_dtype, concrete, is_traced, quantize, straight_through

__all__ = [
    "BinaryLIFParams", "BinaryTrace", "pack_spikes", "unpack_spikes", "binary_step",
    "binary_step_inverse", "binary_membranes", "node_backward", "BINARY_BACKWARD_ALGORITHMS",
    "RECONSTRUCT_MODES",
]

BINARY_BACKWARD_ALGORITHMS = ("autograd", "fused")
RECONSTRUCT_MODES = ("reverse", "replay")

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
    the forward's): 0, or a 0-d tensor for τ > 2.
    """
    h = torch.add(v_next, s, alpha=p.theta)                # (E6.1)
    num = torch.sub(x, h).sub_(r).add_(p.half)             # (E6.2): (τ − 1)·m
    if p.tau == 2:
        return num.neg_().add_(h), h, 0                    # (E6.3): V = H − m
    m = torch.div(num, p.tau - 1, rounding_mode="floor")
    bad = num.sub_(m * (p.tau - 1)).count_nonzero()        # a 0-d tensor: read on the host later
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
    """V_T as int16 when it fits (|V| < 2^(15 − F), e.g. |V| < 8 at F = 12), else int32 (always
    int32 where no value can be read: meta or fake tensors, ``torch.compile`` tracing)."""
    if is_traced(v):
        return v
    if v.numel() and int(concrete(v).abs().max()) < 2 ** 15:
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


def _step_vjp(h: torch.Tensor, gs: torch.Tensor, gv: Optional[torch.Tensor],
              p: BinaryLIFParams, out: torch.Tensor) -> torch.Tensor:
    """(E6.4) for one step: writes H̄ = S̄·d + V̄'·(1 − θd) into ``out``; returns V̄ = H̄·(1 − 1/τ)
    (the caller scales all H̄ by 1/τ into X̄ at the end)."""
    d = p.surrogate.derivative(h.to(gs.dtype).mul_(p.grid).sub_(p.theta_float))  # σ'(Hδ − θ)
    # one rounding per operation (NOTE [one rounding per operation] in .reversible): no addcmul
    # or alpha=, so the Triton kernel repeats these roundings exactly
    if gv is None:                                                              # V̄_T = 0
        torch.mul(gs, d, out=out)
    else:
        torch.add(gv, d.mul_(torch.sub(gs, gv * p.theta_float)), out=out)      # V̄' + d(S̄ − θV̄')
    return out * (1.0 - 1.0 / p.tau)


def node_backward(z: torch.Tensor, trace: BinaryTrace, gs: torch.Tensor, p: BinaryLIFParams,
                  reconstruct: str) -> tuple:
    """``(X̄, (max |V_0| error, flips, inexact divisions))`` for the node input ``z``
    (``[T, B, ...]``) from the trace; the three numbers are all 0 when the reconstruction agrees
    with the forward (the node's drift guard reads them).

    ``"reverse"``: one pass t = T−1 … 0 that inverts the step (E6.1–E6.3) and applies (E6.4) at
    once; its transient state is one step (V, H, V̄); it checks that the walk ends at V_0 = 0.
    ``"replay"``: re-runs (E5.*) from V_0 = 0 into a ``[T, N]`` buffer of charges, then applies
    (E6.4) backwards (NOTE [replay]); it checks that the charges reproduce the stored spikes.
    """
    T, n = z.shape[0], math.prod(z.shape[1:])
    cd = compute_dtype(z.dtype)                   # half-precision gradients computed in fp32
    zf, gsf = z.reshape(T, n), gs.reshape(T, n).to(cd)
    gx = torch.empty_like(zf, dtype=cd)
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
        v0_err = v.abs().max()
    diagnostics = (v0_err, flips, bad)
    if not torch.compiler.is_compiling():  # a graph keeps them as tensors (NOTE [compiled nodes])
        diagnostics = tuple(int(d) for d in diagnostics)
    return gx.mul_(1.0 / p.tau).view(z.shape).to(z.dtype), diagnostics          # X̄ = H̄/τ


def reference_step(z: torch.Tensor, v: torch.Tensor, p: BinaryLIFParams):
    """(E5.0–E5.5) in floating point under autograd, one step: ``(X, V) -> (S, V')``. x̂δ = q(X)
    and the floor of (E5.1) have straight-through gradients; every value is a multiple of δ below
    2^(significand − F), so the spikes equal the integer path's."""
    g = p.grid
    xq = quantize(z, g)                                                         # (E5.0)
    u = (xq - v + p.half * g) / (p.tau * g)
    h = v + straight_through(u, rounding=torch.floor) * g                       # (E5.1), (E5.3)
    s = p.surrogate(h - p.theta_float)                                          # (E5.4)
    return s, h - p.theta_float * s                                             # (E5.5)


def _reference_forward(z: torch.Tensor, p: BinaryLIFParams):
    """(E5.*) in floating point under autograd over all steps (the BPTT reference): (S, V_T).
    Half-precision inputs are computed in fp32 (their 8 or 11 significand bits would hold only
    |X| < 2^(6 − F) or 2^(9 − F) on the grid); the spikes come back in the input dtype."""
    zc = z.to(compute_dtype(z.dtype))
    v = torch.zeros_like(zc[0])
    out = []
    for t in range(zc.shape[0]):
        s, v = reference_step(zc[t], v, p)
        out.append(s)
    return torch.stack(out).to(z.dtype), v
