"""Triton kernels: one launch per pass over all T steps of a reversible node (NOTE [backends] in
:mod:`revsnn.kernels`).

Importing this module imports ``triton`` and compiles nothing until a kernel is first launched;
with ``TRITON_INTERPRET=1`` set before the import, every kernel runs on CPU tensors under Triton's
interpreter instead.

NOTE [kernel layout]
====================
ReversibleLIF: a contiguous ``[T, B, C, S]`` sequence (S = the product of the trailing dims) holds
P = B·(C/2)·S neuron pairs; pair p (b = p // (C/2·S), r = p mod (C/2·S)) is element
``b·C·S + r`` (group 1) and that plus ``C/2·S`` (group 2) of each step; its membranes are element p
of the ``[B, C/2, S]`` states. A program owns ``BLOCK`` pairs, keeps (V₁, V₂) (and in backward
(V̄₁, V̄₂)) in registers and loops over T: per step it reads X (forward) or Y and Ȳ (backward)
once and writes Y or X̄ once.

BinaryReversibleLIF: a step is N = B·… neurons; a program owns ``BYTES`` bytes of the packed trace,
i.e. 8·BYTES neurons laid out ``[BYTES, 8]`` (neuron 8i + j is bit j of byte i, as
:func:`revsnn.functional.binary.pack_spikes`), so it packs and unpacks its own bytes with no
exchange between programs. The replay backward re-runs the integer forward into a ``[T, N]`` int32
buffer of charges (the PyTorch path's transient too) and walks it back in the same program.

Exactness: round-half-to-even is ``(|z| + 2^m) − 2^m`` (m = significand bits − 1, exact for |z| <
2^m, and z itself above, as ``torch.round``), with the sign (of zero too) of z; floating-point
fusion is off (``enable_fp_fusion=False``) so every operation rounds once as in PyTorch; bfloat16
travels as its 16 bits and is rounded to nearest-even by integer arithmetic (PyTorch's rule), and
half-precision arithmetic is done in float32 with one rounding to the storage dtype per operation,
as PyTorch's CPU and CUDA kernels do.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

from ..functional.binary import BinaryLIFParams, BinaryTrace
from ..functional.reversible import RevLIFParams
from . import interpreting, surrogate_code

__all__ = ["rev_forward", "rev_fused_walk",
           "binary_forward", "binary_backward"]

_MAGIC = {torch.float32: 2.0 ** 23, torch.float64: 2.0 ** 52}
_ROUND_TO = {torch.bfloat16: 1, torch.float16: 2}       # per-operation rounding (RD) of the VJP


# ----------------------------------------------------------------------------------------------
# Device helpers


@triton.jit
def _rint(z, MAGIC: tl.constexpr):
    """Round half to even, as ``torch.round``, keeping the sign of z (and of a zero result)."""
    a = tl.abs(z)
    r = tl.where(a < MAGIC, (a + MAGIC) - MAGIC, a)
    return tl.where(z < 0, -r, tl.where(z == 0, z, r))


@triton.jit
def _frac(z):
    """z − trunc(z), as ``torch.frac``."""
    return z - tl.where(z < 0, tl.ceil(z), tl.floor(z))


@triton.jit
def _bf16_round(x):
    """float32 → the nearest bfloat16 (ties to even), as float32 (PyTorch's rounding rule)."""
    b = x.to(tl.int32, bitcast=True)
    b = (b + (32767 + ((b >> 16) & 1))) & -65536
    return b.to(tl.float32, bitcast=True)


@triton.jit
def _rd(x, RD: tl.constexpr):
    """Round a float32 result to the storage dtype and back (RD 0: none, 1: bf16, 2: fp16)."""
    if RD == 1:
        x = _bf16_round(x)
    elif RD == 2:
        x = x.to(tl.float16).to(tl.float32)
    return x


@triton.jit
def _load(ptr, mask, IO: tl.constexpr, F64: tl.constexpr):
    """Load one step (IO 0: the tensor's dtype, 1: bfloat16 as int16 bits) in the compute dtype."""
    if IO == 1:
        b = tl.load(ptr, mask=mask, other=0)
        v = (b.to(tl.int32) << 16).to(tl.float32, bitcast=True)
    elif F64:
        v = tl.load(ptr, mask=mask, other=0).to(tl.float64)
    else:
        v = tl.load(ptr, mask=mask, other=0).to(tl.float32)
    return v


@triton.jit
def _store(ptr, v, mask, IO: tl.constexpr):
    """Store into the tensor's dtype (rounding to nearest even), bfloat16 as int16 bits."""
    if IO == 1:
        b = _bf16_round(v).to(tl.int32, bitcast=True)
        tl.store(ptr, (b >> 16).to(tl.int16), mask=mask)
    else:
        tl.store(ptr, v, mask=mask)


@triton.jit
def _exp(w, PRECISE: tl.constexpr):
    """exp: CUDA's expf/exp on a GPU (what PyTorch's CUDA sigmoid calls); the interpreter's
    (NumPy's) under TRITON_INTERPRET=1."""
    if PRECISE:
        e = libdevice.exp(w)
    else:
        e = tl.exp(w)
    return e


@triton.jit
def _recip(t):
    """1/t rounded to nearest (Triton's ``/`` on float32 is approximate; on float64 it rounds)."""
    if t.dtype == tl.float64:
        r = 1.0 / t
    else:
        r = tl.math.div_rn(t * 0.0 + 1.0, t)
    return r


@triton.jit
def _surrogate_d(z, alpha, c1, c2, SURR: tl.constexpr, PRECISE: tl.constexpr, RD: tl.constexpr):
    """The surrogate's derivative, operation by operation as :mod:`revsnn.surrogate` computes it.

    Sigmoid (SURR 0): sg = 1/(1 + exp(−z·α)); d = ((1 − sg)·sg)·α.
    ATan (SURR 1):    ax = c₁·z (c₁ = π/2·α); d = (1/(1 + ax·ax))·c₂ (c₂ = α/2; PyTorch's
                      ``scalar / tensor`` is a reciprocal and a product).
    """
    if SURR == 0:
        w = _rd(z * alpha, RD)
        sg = _rd(_recip(1.0 + _exp(-w, PRECISE)), RD)
        d = _rd(_rd(_rd(1.0 - sg, RD) * sg, RD) * alpha, RD)
    else:
        ax = _rd(z * c1, RD)
        t = _rd(1.0 + _rd(ax * ax, RD), RD)
        d = _rd(_rd(_recip(t), RD) * c2, RD)
    return d


# ----------------------------------------------------------------------------------------------
# ReversibleLIF


@triton.jit
def _rev_params(prm_ptr):
    """The node's scalars as :func:`_rev_prm` writes them: (δ, 1/δ, β, a, θ, spike scale)."""
    return (tl.load(prm_ptr + 0), tl.load(prm_ptr + 1), tl.load(prm_ptr + 2),
            tl.load(prm_ptr + 3), tl.load(prm_ptr + 4), tl.load(prm_ptr + 5))


@triton.jit
def _surrogate_scalars(prm_ptr):
    """(α, c1, c2) of the surrogate as :func:`_surrogate_params` writes them."""
    return tl.load(prm_ptr + 0), tl.load(prm_ptr + 1), tl.load(prm_ptr + 2)


@triton.jit
def _pair_lanes(P, HS, BLOCK: tl.constexpr):
    """This program's neuron pairs p, their mask and the offset of each pair's first half at
    step 0, b·C·S + r (NOTE [kernel layout])."""
    p = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return p, p < P, p + (p // HS) * HS


@triton.jit
def _rev_forward_kernel(x_ptr, y_ptr, v1_ptr, v2_ptr, v1o_ptr, v2o_ptr, prm_ptr, T, P, HS, STEP,
                        IO: tl.constexpr, F64: tl.constexpr, MAGIC: tl.constexpr,
                        BLOCK: tl.constexpr):
    """(E2.0)–(E2.6) over all T steps for BLOCK neuron pairs (NOTE [kernel layout])."""
    p, mask, o1 = _pair_lanes(P, HS, BLOCK)
    g, ig, beta, a, th, sc = _rev_params(prm_ptr)
    v1 = tl.load(v1_ptr + p, mask=mask, other=0)
    v2 = tl.load(v2_ptr + p, mask=mask, other=0)
    xp = x_ptr + o1
    yp = y_ptr + o1
    for _ in range(T):
        x1 = _rint(_load(xp, mask, IO, F64) * ig, MAGIC) * g                     # (E2.0)
        x2 = _rint(_load(xp + HS, mask, IO, F64) * ig, MAGIC) * g
        u1 = _rint((x1 * beta) * ig, MAGIC) * g                                  # q(β·X̄)
        u2 = _rint((x2 * beta) * ig, MAGIC) * g
        h1 = (v1 + u1) - _rint((v2 * a) * ig, MAGIC) * g                         # (E2.1)
        s1 = (h1 >= th).to(h1.dtype)                                             # (E2.2)
        v1 = h1 - th * s1                                                        # (E2.3)
        h2 = (v2 + u2) + _rint((v1 * a) * ig, MAGIC) * g                         # (E2.4)
        s2 = (h2 >= th).to(h2.dtype)                                             # (E2.5)
        v2 = h2 - th * s2                                                        # (E2.6)
        _store(yp, x1 + sc * s1, mask, IO)
        _store(yp + HS, x2 + sc * s2, mask, IO)
        xp += STEP
        yp += STEP
    tl.store(v1o_ptr + p, v1, mask=mask)
    tl.store(v2o_ptr + p, v2, mask=mask)


@triton.jit
def _rev_backward_kernel(y_ptr, gy_ptr, gx_ptr, v1_ptr, v2_ptr, gv1_ptr, gv2_ptr, v1o_ptr,
                         v2o_ptr, gv1o_ptr, gv2o_ptr, prm_ptr, T, P, HS, STEP,
                         IO: tl.constexpr, F64: tl.constexpr, MAGIC: tl.constexpr,
                         SURR: tl.constexpr, PRECISE: tl.constexpr, BLOCK: tl.constexpr):
    """The fused backward: inversion (E3.1)–(E3.4) and VJP (E4.1)–(E4.4), t = T−1 … 0."""
    p, mask, o1 = _pair_lanes(P, HS, BLOCK)
    o1 += (p * 0 + (T - 1)) * STEP                          # the last step, in int64
    g, ig, beta, a, th, sc = _rev_params(prm_ptr)
    alpha, c1, c2 = _surrogate_scalars(prm_ptr + 6)
    v1 = tl.load(v1_ptr + p, mask=mask, other=0)
    v2 = tl.load(v2_ptr + p, mask=mask, other=0)
    gv1 = tl.load(gv1_ptr + p, mask=mask, other=0)
    gv2 = tl.load(gv2_ptr + p, mask=mask, other=0)
    yp = y_ptr + o1
    gyp = gy_ptr + o1
    gxp = gx_ptr + o1
    for _ in range(T):
        y1 = _load(yp, mask, IO, F64)
        y2 = _load(yp + HS, mask, IO, F64)
        s1 = tl.abs(_frac(y1 * ig)) * 2.0                                        # (E3.3)
        s2 = tl.abs(_frac(y2 * ig)) * 2.0                                        # (E3.1)
        u1 = _rint(((y1 - sc * s1) * beta) * ig, MAGIC) * g                      # q(β·X̄)
        u2 = _rint(((y2 - sc * s2) * beta) * ig, MAGIC) * g
        h2 = v2 + th * s2
        v2 = (h2 - u2) - _rint((v1 * a) * ig, MAGIC) * g                         # (E3.2)
        h1 = v1 + th * s1
        v1 = (h1 - u1) + _rint((v2 * a) * ig, MAGIC) * g                         # (E3.4)
        gy1 = _load(gyp, mask, IO, F64)
        gy2 = _load(gyp + HS, mask, IO, F64)
        d2 = _surrogate_d(h2 - th, alpha, c1, c2, SURR, PRECISE, 0)
        gh2 = ((gy2 * sc) - gv2 * th) * d2 + gv2                                 # (E4.1)
        gv1 = gv1 + gh2 * a                                                      # (E4.2)
        d1 = _surrogate_d(h1 - th, alpha, c1, c2, SURR, PRECISE, 0)
        gh1 = ((gy1 * sc) - gv1 * th) * d1 + gv1                                 # (E4.3)
        _store(gxp, gy1 + gh1 * beta, mask, IO)                                  # (E4.4)
        _store(gxp + HS, gy2 + gh2 * beta, mask, IO)                             # (E4.2)
        gv2 = gh2 - gh1 * a
        gv1 = gh1
        yp -= STEP
        gyp -= STEP
        gxp -= STEP
    tl.store(v1o_ptr + p, v1, mask=mask)
    tl.store(v2o_ptr + p, v2, mask=mask)
    tl.store(gv1o_ptr + p, gv1, mask=mask)
    tl.store(gv2o_ptr + p, gv2, mask=mask)


# ----------------------------------------------------------------------------------------------
# BinaryReversibleLIF


@triton.jit
def _byte_lanes(N, NB, BYTES: tl.constexpr):
    """This program's packed bytes j, the bit k of each, the neurons n = 8j + k, and the masks
    of the neurons and of the bytes."""
    j = tl.program_id(0).to(tl.int64) * BYTES + tl.arange(0, BYTES)
    k = tl.arange(0, 8)
    n = j[:, None] * 8 + k[None, :]
    return j, k, n, n < N, j < NB


@triton.jit
def _bin_grid(zp, mask, SCALE, IO: tl.constexpr, F64: tl.constexpr, MAGIC: tl.constexpr):
    """(E5.0) x̂ = round(X/δ) as int32."""
    return _rint(_load(zp, mask, IO, F64) * SCALE, MAGIC).to(tl.int32)


@triton.jit
def _floor_div(num, den):
    """⌊num/den⌋ and num − den·⌊num/den⌋ for den > 0, whatever the rounding of ``//``."""
    m = num // den
    r = num - m * den
    neg = r < 0
    return tl.where(neg, m - 1, m), tl.where(neg, r + den, r)


@triton.jit
def _bin_step(xh, v, HALF, THETA, TAU, POW2: tl.constexpr, SHIFT: tl.constexpr):
    """(E5.1)–(E5.5): (x̂, V) → (S, R, H, V'), int32."""
    d = xh - v + HALF
    if POW2:
        m = d >> SHIFT                                   # (E5.1)
        r = d & (TAU - 1)                                # (E5.2)
    else:
        m, r = _floor_div(d, TAU)
    h = m + v                                            # (E5.3)
    s = (h >= THETA).to(tl.int32)                        # (E5.4)
    return s, r, h, h - THETA * s                        # (E5.5)


@triton.jit
def _bin_forward_kernel(z_ptr, s_ptr, pk_ptr, rem_ptr, v_ptr, T, N, NB, SCALE, HALF, THETA, TAU,
                        IO: tl.constexpr, F64: tl.constexpr, MAGIC: tl.constexpr,
                        POW2: tl.constexpr, SHIFT: tl.constexpr, RB: tl.constexpr,
                        BYTES: tl.constexpr):
    """The integer forward over all T steps, writing S (in X's dtype), packed S and packed R."""
    j, k, n, mask, bmask = _byte_lanes(N, NB, BYTES)
    v = tl.zeros([BYTES, 8], dtype=tl.int32)
    zp = z_ptr + n
    sp = s_ptr + n
    pp = pk_ptr + j
    rp = rem_ptr + j
    for _ in range(T):
        s, r, h, v = _bin_step(_bin_grid(zp, mask, SCALE, IO, F64, MAGIC), v, HALF, THETA, TAU,
                               POW2, SHIFT)
        s = tl.where(mask, s, 0)
        r = tl.where(mask, r, 0)
        _store(sp, s.to(tl.float32), mask, IO)
        tl.store(pp, tl.sum(s << k[None, :], axis=1).to(tl.uint8), mask=bmask)
        for b in tl.static_range(RB):
            plane = tl.sum(((r >> b) & 1) << k[None, :], axis=1)
            tl.store(rp + b * NB, plane.to(tl.uint8), mask=bmask)
        zp += N
        sp += N
        pp += NB
        rp += RB * NB
    tl.store(v_ptr + n, v, mask=mask)


@triton.jit
def _bin_vjp(h, gs, gv, first, grid, th, keep, alpha, c1, c2, SURR: tl.constexpr,
             PRECISE: tl.constexpr, RD: tl.constexpr):
    """(E6.4) as :func:`revsnn.functional.binary._step_vjp`: returns (H̄, V̄)."""
    hz = _rd(_rd(_rd(h.to(gs.dtype), RD) * grid, RD) - th, RD)               # Hδ − θ
    d = _surrogate_d(hz, alpha, c1, c2, SURR, PRECISE, RD)
    later = _rd(gv + _rd(d * _rd(gs - _rd(gv * th, RD), RD), RD), RD)       # V̄' + d(S̄ − θV̄')
    out = tl.where(first, _rd(gs * d, RD), later)                            # V̄_T = 0
    return out, _rd(out * keep, RD)


@triton.jit
def _bin_backward_kernel(z_ptr, gs_ptr, gx_ptr, pk_ptr, rem_ptr, v_ptr, v0_ptr, cnt_ptr, hb_ptr,
                         prm_ptr, T, N, NB, SCALE, HALF, THETA, TAU,
                         IO: tl.constexpr, F64: tl.constexpr, MAGIC: tl.constexpr,
                         POW2: tl.constexpr, SHIFT: tl.constexpr, RB: tl.constexpr,
                         REPLAY: tl.constexpr, TAU2: tl.constexpr, SURR: tl.constexpr,
                         PRECISE: tl.constexpr, RD: tl.constexpr, BYTES: tl.constexpr):
    """The fused binary backward, t = T−1 … 0: walk back (E6.1)–(E6.3) from V_T with the packed
    S and R, or (REPLAY) re-run (E5.*) from V_0 = 0 into the charge buffer first; then (E6.4).
    Writes X̄, V_0 (reverse) and per-neuron counts of inexact divisions (reverse) or flipped
    spikes (replay)."""
    j, k, n, mask, bmask = _byte_lanes(N, NB, BYTES)
    grid = tl.load(prm_ptr + 0)
    th = tl.load(prm_ptr + 1)
    keep = tl.load(prm_ptr + 2)
    inv_tau = tl.load(prm_ptr + 3)
    alpha, c1, c2 = _surrogate_scalars(prm_ptr + 4)
    cnt = tl.zeros([BYTES, 8], dtype=tl.int32)
    if REPLAY:
        v = tl.zeros([BYTES, 8], dtype=tl.int32)
        zp = z_ptr + n
        hp = hb_ptr + n
        pp = pk_ptr + j
        for _ in range(T):
            s, r, h, v = _bin_step(_bin_grid(zp, mask, SCALE, IO, F64, MAGIC), v, HALF, THETA,
                                   TAU, POW2, SHIFT)
            tl.store(hp, h, mask=mask)
            stored = (tl.load(pp, mask=bmask, other=0).to(tl.int32)[:, None] >> k[None, :]) & 1
            cnt += tl.where(mask & (s != stored), 1, 0)                          # flips
            zp += N
            hp += N
            pp += NB
        tl.debug_barrier()
    else:
        v = tl.load(v_ptr + n, mask=mask, other=0)
    last = (j * 0 + (T - 1))
    zp = z_ptr + n + last[:, None] * N
    gsp = gs_ptr + n + last[:, None] * N
    gxp = gx_ptr + n + last[:, None] * N
    hp = hb_ptr + n + last[:, None] * N
    pp = pk_ptr + j + last * NB
    rp = rem_ptr + j + last * (RB * NB)
    if F64:
        gv = tl.zeros([BYTES, 8], dtype=tl.float64)
    else:
        gv = tl.zeros([BYTES, 8], dtype=tl.float32)
    for i in range(T):
        if REPLAY:
            h = tl.load(hp, mask=mask, other=0)
        else:
            s = (tl.load(pp, mask=bmask, other=0).to(tl.int32)[:, None] >> k[None, :]) & 1
            r = tl.zeros([BYTES, 8], dtype=tl.int32)
            for b in tl.static_range(RB):
                plane = tl.load(rp + b * NB, mask=bmask, other=0).to(tl.int32)
                r += ((plane[:, None] >> k[None, :]) & 1) << b
            h = v + THETA * s                                                    # (E6.1)
            num = _bin_grid(zp, mask, SCALE, IO, F64, MAGIC) - h - r + HALF      # (E6.2)
            if TAU2:
                v = h - num                                                      # (E6.3)
            else:
                m, rest = _floor_div(num, TAU - 1)
                cnt += tl.where(mask & (rest != 0), 1, 0)
                v = h - m                                                        # (E6.3)
        first = (tl.zeros([BYTES, 8], dtype=tl.int32) + i) == 0
        out, gv = _bin_vjp(h, _load(gsp, mask, IO, F64), gv, first, grid, th, keep, alpha, c1,
                           c2, SURR, PRECISE, RD)                                # (E6.4)
        _store(gxp, _rd(out * inv_tau, RD), mask, IO)                            # X̄ = H̄/τ
        zp -= N
        gsp -= N
        gxp -= N
        hp -= N
        pp -= NB
        rp -= RB * NB
    if not REPLAY:
        tl.store(v0_ptr + n, v, mask=mask)
    tl.store(cnt_ptr + n, cnt, mask=mask)


# ----------------------------------------------------------------------------------------------
# Launchers


def _io(t: torch.Tensor):
    """(tensor as the kernel reads it, IO code): bfloat16 travels as int16 bits."""
    t = t.contiguous()
    return (t.view(torch.int16), 1) if t.dtype == torch.bfloat16 else (t, 0)


def _block(n: int, cap: int) -> int:
    return max(16, min(cap, triton.next_power_of_2(max(1, n))))


def _surrogate_params(s) -> list:
    return [s.alpha, math.pi / 2 * s.alpha, s.alpha / 2]


def _rev_prm(p: RevLIFParams, cd, device, surrogate: bool = False) -> torch.Tensor:
    """The scalars :func:`_rev_params` (and, with ``surrogate``, :func:`_surrogate_scalars`)
    read, in ``cd``."""
    values = [p.grid, 1.0 / p.grid, p.input_scale, p.coupling, p.v_threshold, p.spike_scale]
    if surrogate:
        values += _surrogate_params(p.surrogate)
    return torch.tensor(values, dtype=cd, device=device)


def _launch_options() -> dict:
    return {"enable_fp_fusion": False}


def _precise() -> bool:
    return not interpreting()


@torch.compiler.disable  # NOTE [backends]: opaque to torch.compile
def rev_forward(x: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor, p: RevLIFParams,
                cd: torch.dtype):
    """:func:`revsnn.functional.reversible.forward_loop` in one launch: ``(Y, V₁_T, V₂_T)``."""
    T, B, C = x.shape[:3]
    hs = (C // 2) * math.prod(x.shape[3:])
    P = B * hs
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    xk, io = _io(x)
    yk = y.view(torch.int16) if io else y
    v1, v2 = v1.to(cd).contiguous(), v2.to(cd).contiguous()
    v1o, v2o = torch.empty_like(v1), torch.empty_like(v2)
    prm = _rev_prm(p, cd, x.device)
    block = _block(P, 1024)
    _rev_forward_kernel[(triton.cdiv(P, block),)](
        xk, yk, v1, v2, v1o, v2o, prm, T, P, hs, B * C * (hs // (C // 2)),
        IO=io, F64=cd == torch.float64, MAGIC=_MAGIC[cd], BLOCK=block, **_launch_options())
    return y, v1o.view(v1.shape), v2o.view(v2.shape)


@torch.compiler.disable  # NOTE [backends]: opaque to torch.compile
def rev_fused_walk(y, gy, v1, v2, gv1, gv2, p: RevLIFParams, cd, x_dtype):
    """:func:`revsnn.functional.reversible.fused_walk` in one launch (same signature and result)."""
    T, B, C = y.shape[:3]
    hs = (C // 2) * math.prod(y.shape[3:])
    P = B * hs
    yk, io = _io(y)
    gyk, _ = _io(gy.to(y.dtype))
    gx = torch.empty(y.shape, dtype=x_dtype, device=y.device)
    gxk = gx.view(torch.int16) if io else gx
    v1, v2 = v1.to(cd).contiguous(), v2.to(cd).contiguous()
    gv1, gv2 = gv1.to(cd).contiguous(), gv2.to(cd).contiguous()
    outs = [torch.empty_like(v1) for _ in range(4)]
    prm = _rev_prm(p, cd, y.device, surrogate=True)
    block = _block(P, 1024)
    _rev_backward_kernel[(triton.cdiv(P, block),)](
        yk, gyk, gxk, v1, v2, gv1, gv2, *outs, prm, T, P, hs, B * C * (hs // (C // 2)),
        IO=io, F64=cd == torch.float64, MAGIC=_MAGIC[cd], SURR=surrogate_code(p.surrogate),
        PRECISE=_precise(), BLOCK=block, **_launch_options())
    return (gx, *(o.view(v1.shape) for o in outs), None)


def _binary_meta(z: torch.Tensor, p: BinaryLIFParams) -> dict:
    pow2 = p.tau & (p.tau - 1) == 0
    cd = torch.float64 if z.dtype == torch.float64 else torch.float32
    return dict(F64=cd == torch.float64, MAGIC=_MAGIC[cd], POW2=pow2,
                SHIFT=p.tau.bit_length() - 1 if pow2 else 0)


@torch.compiler.disable  # NOTE [backends]: opaque to torch.compile
def binary_forward(z: torch.Tensor, p: BinaryLIFParams, remainders: bool = True):
    """:func:`revsnn.functional.binary._integer_forward` in one launch: ``(S, trace)`` with V_T as
    int32 (the caller narrows it)."""
    T, n = z.shape[0], math.prod(z.shape[1:])
    nb = (n + 7) // 8
    rb = p.rem_bits if remainders else 0
    zk, io = _io(z.reshape(T, n))
    spikes = torch.empty((T, n), dtype=z.dtype, device=z.device)
    packed = torch.empty((T, nb), dtype=torch.uint8, device=z.device)
    rem = torch.empty((T, rb, nb), dtype=torch.uint8, device=z.device)
    v = torch.empty(n, dtype=torch.int32, device=z.device)
    block = _block(nb, 128)
    _bin_forward_kernel[(triton.cdiv(nb, block),)](
        zk, spikes.view(torch.int16) if io else spikes, packed, rem, v, T, n, nb,
        float(2 ** p.grid_bits), p.half, p.theta, p.tau, IO=io, RB=rb, BYTES=block,
        **_binary_meta(z, p), **_launch_options())
    return spikes.view(z.shape), BinaryTrace(packed, rem, v.view(z.shape[1:]))


@torch.compiler.disable  # NOTE [backends]: opaque to torch.compile
def binary_backward(z: torch.Tensor, trace: BinaryTrace, gs: torch.Tensor, p: BinaryLIFParams,
                    reconstruct: str):
    """:func:`revsnn.functional.binary.node_backward` in one launch (same result)."""
    T, n = z.shape[0], math.prod(z.shape[1:])
    nb = (n + 7) // 8
    replay = reconstruct == "replay"
    zk, io = _io(z.reshape(T, n))
    gsk, _ = _io(gs.reshape(T, n).to(z.dtype))
    gx = torch.empty((T, n), dtype=z.dtype, device=z.device)
    cnt = torch.empty(n, dtype=torch.int32, device=z.device)
    dev = z.device
    if replay:
        rem = torch.empty((T, 0, nb), dtype=torch.uint8, device=dev)
        v = v0 = torch.empty(0, dtype=torch.int32, device=dev)
        hbuf = torch.empty((T, n), dtype=torch.int32, device=dev)
    else:
        rem = trace.remainders.contiguous()
        v = trace.v_final.reshape(-1).to(torch.int32).contiguous()
        v0 = torch.empty(n, dtype=torch.int32, device=dev)
        hbuf = torch.empty(0, dtype=torch.int32, device=dev)
    cd = torch.float64 if z.dtype == torch.float64 else torch.float32
    prm = torch.tensor([p.grid, p.theta_float, 1.0 - 1.0 / p.tau, 1.0 / p.tau,
                        *_surrogate_params(p.surrogate)], dtype=cd, device=dev)
    block = _block(nb, 128)
    # RD=0: half-precision gradients are computed in fp32 and rounded once on the store, as
    # node_backward computes them (its compute dtype)
    _bin_backward_kernel[(triton.cdiv(nb, block),)](
        zk, gsk, gx.view(torch.int16) if io else gx, trace.spikes.contiguous(), rem, v, v0, cnt,
        hbuf, prm, T, n, nb, float(2 ** p.grid_bits), p.half, p.theta, p.tau, IO=io,
        RB=0 if replay else rem.shape[1], REPLAY=replay, TAU2=p.tau == 2, SURR=surrogate_code(p.surrogate),
        PRECISE=_precise(), RD=0, BYTES=block, **_binary_meta(z, p),
        **_launch_options())
    if replay:
        diagnostics = (0, int(cnt.sum()), 0)
    else:
        diagnostics = (int(v0.abs().max()) if n else 0, 0, int(cnt.sum()))
    return gx.view(z.shape), diagnostics
