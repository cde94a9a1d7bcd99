"""Golden trajectories: 4-step runs of LIF, ReversibleLIF and BinaryReversibleLIF computed by hand.

Each case picks parameters and inputs that make every number exact and short (τ = 2, θ = 1, a grid
of δ = 1/4, inputs that round away from ties), works the documented equations step by step in the
comments, and hard-codes the result. The modules are then checked number by number against it:
outputs, per-step membranes, returned final states, inverted states and, with a test surrogate
whose derivative is a constant, gradients; for every backward algorithm each node offers. Nothing
is compared with a second forward: if an equation changed, these numbers would no longer match.

Labels: (E1.x) revsnn/functional/lif.py; (E2.x)–(E4.x) revsnn/functional/reversible.py; (E5.x), (E6.x)
revsnn/functional/binary.py.
"""

import pytest
import torch
from torch.testing import assert_close

import revsnn
from revsnn.functional.binary import (BINARY_BACKWARD_ALGORITHMS, RECONSTRUCT_MODES,
                                      binary_membranes, binary_step, binary_step_inverse)
from revsnn.functional.reversible import (BACKWARD_ALGORITHMS, rev_step, rev_step_inverse,
                                          rev_step_vjp)

DTYPES = [torch.float64, torch.float32]


def exact(actual, expected):
    """Bit-for-bit equality (every golden number below is a short binary fraction)."""
    assert_close(actual, expected, rtol=0.0, atol=0.0)


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


class ConstantSlope(revsnn.Surrogate):
    """Θ forward with the constant derivative α: a test harness (a real surrogate peaks at the
    threshold) that makes the vector-Jacobian products short numbers independent of H."""

    def derivative(self, x):
        return torch.full_like(x, self.alpha)

    def primitive(self, x):
        return self.alpha * x


# =================================================================================================
# LIF (E1.1), (E1.4), (E1.5), (E1.6): τ = 2, V_th = 1, decay_input, X = [2.5, 1.0, 2.5, −1.0]
# =================================================================================================
LIF_X = [2.5, 1.0, 2.5, -1.0]
# Hard reset to V_reset = −0.5, V[0] = V_reset; (E1.1) H = V + (X − (V − V_reset))/2:
#   t=1: H = −0.5 + (2.5 − 0)/2        = 0.75     S = 0   V = 0.75
#   t=2: H = 0.75 + (1.0 − 1.25)/2     = 0.625    S = 0   V = 0.625   (the leak pulls V down)
#   t=3: H = 0.625 + (2.5 − 1.125)/2   = 1.3125   S = 1   V = V_reset = −0.5          (E1.5)
#   t=4: H = −0.5 + (−1.0 − 0)/2       = −1.0     S = 0   V = −1.0
# Soft reset (v_reset=None: V[0] = 0 and V_reset = 0 in (E1.1)); (E1.6) V = H − S·V_th:
#   t=1: H = 0 + 2.5/2                 = 1.25     S = 1   V = 0.25
#   t=2: H = 0.25 + (1.0 − 0.25)/2     = 0.625    S = 0   V = 0.625
#   t=3: H = 0.625 + (2.5 − 0.625)/2   = 1.5625   S = 1   V = 0.5625
#   t=4: H = 0.5625 + (−1 − 0.5625)/2  = −0.21875 S = 0   V = −0.21875
LIF_GOLDEN = {
    "hard": dict(v_reset=-0.5, spikes=[0, 0, 1, 0], v=[0.75, 0.625, -0.5, -1.0]),
    "soft": dict(v_reset=None, spikes=[1, 0, 1, 0], v=[0.25, 0.625, 0.5625, -0.21875]),
}


@pytest.mark.parametrize("reset", sorted(LIF_GOLDEN))
@pytest.mark.parametrize("dtype", DTYPES)
def test_lif_golden(reset, dtype):
    """(E1.1) charge with decay_input, (E1.4) fire, (E1.5) hard / (E1.6) soft reset, by hand."""
    g = LIF_GOLDEN[reset]
    node = revsnn.LIF(tau=2.0, v_threshold=1.0, v_reset=g["v_reset"], decay_input=True)
    x = t(LIF_X, dtype).view(4, 1, 1)
    s, v_final = node(x, return_state=True)
    exact(s.flatten(), t(g["spikes"], dtype))
    exact(v_final.flatten(), t(g["v"][-1:], dtype))
    # the membrane after every step, carrying the state from call to call
    v, vs = None, []
    for step in range(4):
        _, v = node(x[step:step + 1], v, return_state=True)
        vs.append(v.item())
    exact(t(vs, dtype), t(g["v"], dtype))


# =================================================================================================
# ReversibleLIF (E2.0)–(E2.6), (E3.1)–(E3.4)
# τ = 2 (β = 1/2), θ = 1, coupling a = 2/3, grid_bits = 2 (δ = 1/4), spike_scale = θ:
#   ϑ = (⌊θ/δ⌋ + 1/2)·δ = 4.5/4 = 1.125, half a grid step off the grid.
# a = 2/3 keeps q(a·V) away from ties: V = k/4 gives a·V/δ = 2k/3, never an integer + 1/2.
# =================================================================================================
REV_X1 = [1.6, 0.9, 2.6, 1.1]         # group 1 (channel 0)
REV_X2 = [0.4, 1.4, -0.6, 2.1]        # group 2 (channel 1)
# (E2.0) X̄ = q(X) = round(4X)/4:  X̄₁ = [1.5, 1.0, 2.5, 1.0],  X̄₂ = [0.5, 1.5, −0.5, 2.0]
#        multiples of 1/2, so q(β·X̄) = X̄/2 is exact: q(β·X̄₁) = [0.75, 0.5, 1.25, 0.5],
#        q(β·X̄₂) = [0.25, 0.75, −0.25, 1.0]
# Start at V₁ = V₂ = 0. q(a·V) for the V that occur: q(2/3·0.75 = 0.5) = 0.5,
#   q(2/3·1.0 = 0.667) = 0.75, q(2/3·0.25 = 0.167) = 0.25, q(0) = 0.
#   t=1: (E2.1) H₁ = 0 + 0.75 − q(a·0)      = 0.75   (E2.2) S₁ = 0, Y₁ = 1.5    (E2.3) V₁' = 0.75
#        (E2.4) H₂ = 0 + 0.25 + q(a·0.75)   = 0.75   (E2.5) S₂ = 0, Y₂ = 0.5    (E2.6) V₂' = 0.75
#   t=2:        H₁ = 0.75 + 0.5 − q(a·0.75) = 0.75          S₁ = 0, Y₁ = 1.0           V₁' = 0.75
#               H₂ = 0.75 + 0.75 + q(a·0.75)= 2.0           S₂ = 1, Y₂ = 1.5 + ϑ = 2.625   V₂' = 1.0
#   t=3:        H₁ = 0.75 + 1.25 − q(a·1.0) = 1.25          S₁ = 1, Y₁ = 2.5 + ϑ = 3.625  V₁' = 0.25
#               H₂ = 1.0 − 0.25 + q(a·0.25) = 1.0           S₂ = Θ(0) = 1, Y₂ = −0.5 + ϑ = 0.625
#                                                                                      V₂' = 0.0
#   t=4:        H₁ = 0.25 + 0.5 − q(a·0)    = 0.75          S₁ = 0, Y₁ = 1.0           V₁' = 0.75
#               H₂ = 0 + 1.0 + q(a·0.75)    = 1.5           S₂ = 1, Y₂ = 2.0 + ϑ = 3.125   V₂' = 0.5
REV_XQ1, REV_XQ2 = [1.5, 1.0, 2.5, 1.0], [0.5, 1.5, -0.5, 2.0]
REV_Y1, REV_Y2 = [1.5, 1.0, 3.625, 1.0], [0.5, 2.625, 0.625, 3.125]
REV_H1, REV_H2 = [0.75, 0.75, 1.25, 0.75], [0.75, 2.0, 1.0, 1.5]
REV_V1, REV_V2 = [0.75, 0.75, 0.25, 0.75], [0.75, 1.0, 0.0, 0.5]      # after steps 1 … 4


def _rev_node(backward="fused", coupling=2 / 3, **kw):
    return revsnn.ReversibleLIF(tau=2.0, v_threshold=1.0, coupling=coupling, grid_bits=2,
                                backward=backward, **kw)


def _rev_input(dtype):
    return torch.stack([t(REV_X1, dtype), t(REV_X2, dtype)], dim=1).view(4, 1, 2)   # [T, B, C]


def test_reversible_golden_parameters():
    """θ on the grid and ϑ = θ + δ/2, as used in the hand computation."""
    p = _rev_node().params(torch.float64)
    assert (p.grid, p.v_threshold, p.spike_scale, p.input_scale) == (0.25, 1.0, 1.125, 0.5)


@pytest.mark.parametrize("backward", BACKWARD_ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reversible_golden_forward(backward, dtype):
    """(E2.0)–(E2.6): outputs and final membranes, whole-sequence and carried step by step."""
    node = _rev_node(backward)
    x = _rev_input(dtype)
    y, (v1, v2) = node(x, return_state=True)
    exact(y[:, 0, 0], t(REV_Y1, dtype))
    exact(y[:, 0, 1], t(REV_Y2, dtype))
    exact(v1.flatten(), t(REV_V1[-1:], dtype))
    exact(v2.flatten(), t(REV_V2[-1:], dtype))
    state, v1s, v2s = None, [], []
    for step in range(4):
        _, state = node(x[step:step + 1], state, return_state=True)
        v1s.append(state[0].item())
        v2s.append(state[1].item())
    exact(t(v1s, dtype), t(REV_V1, dtype))
    exact(t(v2s, dtype), t(REV_V2, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reversible_golden_step_functions(dtype):
    """(E2.0)–(E2.6) through rev_step, and (E3.1)–(E3.4) through rev_step_inverse: from (Y, V')
    each step gives back X̄, the charges H and the membranes before the step."""
    p = _rev_node().params(dtype)
    v1 = v2 = torch.zeros(1, dtype=dtype)
    before = [(0.0, 0.0)] + list(zip(REV_V1, REV_V2))
    for step in range(4):
        y1, y2, v1, v2 = rev_step(t([REV_X1[step]], dtype), t([REV_X2[step]], dtype), v1, v2, p)
        exact(torch.cat([y1, y2, v1, v2]),
              t([REV_Y1[step], REV_Y2[step], REV_V1[step], REV_V2[step]], dtype))
        inv = rev_step_inverse(y1, y2, v1, v2, p)
        exact(torch.cat([inv.x1, inv.x2, inv.h1, inv.h2, inv.v1, inv.v2]),
              t([REV_XQ1[step], REV_XQ2[step], REV_H1[step], REV_H2[step], *before[step]], dtype))
        assert int(inv.flips) == 0 and int(inv.off_grid) == 0


@pytest.mark.parametrize("backward", BACKWARD_ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reversible_golden_inverse(backward, dtype):
    """(E3.1)–(E3.4) walked from the final state: X̄ of the hand computation and V = 0 at t = 0;
    from the state after step 2, the last two steps give back the membranes after step 2."""
    node = _rev_node(backward)
    y, state = node(_rev_input(dtype), return_state=True)
    x_rec, (v1, v2) = node.inverse(y.detach(), state)
    exact(x_rec[:, 0, 0], t(REV_XQ1, dtype))
    exact(x_rec[:, 0, 1], t(REV_XQ2, dtype))
    exact(torch.cat([v1, v2]).flatten(), t([0.0, 0.0], dtype))
    _, (v1, v2) = node.inverse(y[2:].detach(), state)
    exact(torch.cat([v1, v2]).flatten(), t([REV_V1[1], REV_V2[1]], dtype))


# Gradient, with the ConstantSlope(1/2) surrogate (d = 1/2 everywhere) and a = 1/2 (a separate
# node: the VJP does not depend on H when d is constant, and a = 1/2 keeps the numbers dyadic).
# Loss = Y₁[4] + Y₂[4]: Ȳ = 1 at t = 4 only, V̄' = 0 at T, so the earlier steps receive their
# gradient through the membranes alone. With θ = 1, ϑ = 9/8, β = a = 1/2, (E4.1)–(E4.4) read
#   H̄₂ = V̄₂'/2 + Ȳ₂·9/16;  X̄₂ = Ȳ₂ + H̄₂/2;  V̄₁'* = V̄₁' + H̄₂/2;  H̄₁ = V̄₁'*/2 + Ȳ₁·9/16;
#   X̄₁ = Ȳ₁ + H̄₁/2;  V̄₁ = H̄₁;  V̄₂ = H̄₂ − H̄₁/2.
#   t=4: H̄₂ = 9/16, X̄₂ = 1 + 9/32 = 41/32, V̄₁'* = 9/32, H̄₁ = 9/64 + 36/64 = 45/64,
#        X̄₁ = 1 + 45/128 = 173/128, V̄₁ = 45/64, V̄₂ = 72/128 − 45/128 = 27/128
#   t=3: H̄₂ = 27/256, X̄₂ = 27/512, V̄₁'* = 360/512 + 27/512 = 387/512, H̄₁ = 387/1024,
#        X̄₁ = 387/2048, V̄₁ = 387/1024, V̄₂ = 216/2048 − 387/2048 = −171/2048
#   t=2: H̄₂ = −171/4096, X̄₂ = −171/8192, V̄₁'* = 3096/8192 − 171/8192 = 2925/8192,
#        H̄₁ = 2925/16384, X̄₁ = 2925/32768, V̄₁ = 2925/16384, V̄₂ = −1368/32768 − 2925/32768
#        = −4293/32768
#   t=1: H̄₂ = −4293/65536, X̄₂ = −4293/131072, V̄₁'* = 23400/131072 − 4293/131072 = 19107/131072,
#        H̄₁ = 19107/262144, X̄₁ = 19107/524288, V̄₁(0) = 19107/262144,
#        V̄₂(0) = −34344/524288 − 19107/524288 = −53451/524288
REV_GX1 = [19107 / 524288, 2925 / 32768, 387 / 2048, 173 / 128]
REV_GX2 = [-4293 / 131072, -171 / 8192, 27 / 512, 41 / 32]
REV_GV0 = [19107 / 262144, -53451 / 524288]


@pytest.mark.parametrize("backward", BACKWARD_ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reversible_golden_gradient(backward, dtype):
    """(E4.1)–(E4.4) by hand, for every backward algorithm; the revnet and fused backwards also
    reconstruct the initial state (E3.*) and would raise on any difference (on_drift="raise")."""
    node = _rev_node(backward, coupling=0.5, surrogate=ConstantSlope(0.5), on_drift="raise")
    x = _rev_input(dtype).requires_grad_()
    v0 = [torch.zeros(1, 1, dtype=dtype, requires_grad=True) for _ in range(2)]
    y = node(x, state=tuple(v0))
    y[-1].sum().backward()
    exact(x.grad[:, 0, 0], t(REV_GX1, dtype))
    exact(x.grad[:, 0, 1], t(REV_GX2, dtype))
    exact(torch.cat([v0[0].grad, v0[1].grad]).flatten(), t(REV_GV0, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reversible_golden_step_vjp(dtype):
    """(E4.1)–(E4.4) through rev_step_vjp: steps 4 and 3 of the hand computation above."""
    p = _rev_node(coupling=0.5, surrogate=ConstantSlope(0.5)).params(dtype)
    h = t([1.0], dtype)                     # any H: the derivative is constant
    one, zero = t([1.0], dtype), t([0.0], dtype)
    step4 = rev_step_vjp(h, h, one, one, zero, zero, p)
    exact(torch.cat(step4), t([173 / 128, 41 / 32, 45 / 64, 27 / 128], dtype))
    step3 = rev_step_vjp(h, h, zero, zero, step4[2], step4[3], p)
    exact(torch.cat(step3), t([387 / 2048, 27 / 512, 387 / 1024, -171 / 2048], dtype))


# =================================================================================================
# BinaryReversibleLIF (E5.0)–(E5.5), (E6.1)–(E6.4): θ = 1, grid_bits = 2 (δ = 1/4), so θ̂ = 4.
# Integer membrane in units of δ; c = ⌊τ/2⌋ = 1 for τ = 2 and τ = 3.
# =================================================================================================
BIN_X = [1.6, 0.9, 2.6, -1.3]
# (E5.0) x̂ = round(X/δ) = round([6.4, 3.6, 10.4, −5.2]) = [6, 4, 10, −5]
# τ = 2 (shift-and-mask path), V₀ = 0; d = x̂ − V + c:
#   t=1: d = 6 − 0 + 1 = 7    (E5.1) m = ⌊7/2⌋ = 3    (E5.2) R = 7 − 6 = 1   (E5.3) H = 0 + 3 = 3
#        (E5.4) S = Θ(3 − 4) = 0                     (E5.5) V' = 3
#   t=2: d = 4 − 3 + 1 = 2    m = 1    R = 0    H = 4    S = Θ(0) = 1    V' = 0
#   t=3: d = 10 − 0 + 1 = 11  m = 5    R = 1    H = 5    S = 1           V' = 1
#   t=4: d = −5 − 1 + 1 = −5  m = ⌊−2.5⌋ = −3 (floor, not truncation)  R = −5 + 6 = 1
#        H = 1 − 3 = −2       S = 0    V' = −2
# τ = 3 (division path; R needs 2 bits):
#   t=1: d = 7    m = 2    R = 1    H = 2    S = 0    V' = 2
#   t=2: d = 4 − 2 + 1 = 3    m = 1    R = 0    H = 3    S = 0    V' = 3
#   t=3: d = 10 − 3 + 1 = 8   m = 2    R = 2    H = 5    S = 1    V' = 1
#   t=4: d = −5 − 1 + 1 = −5  m = ⌊−5/3⌋ = −2   R = 1    H = −1   S = 0    V' = −1
# Inverse check, (E6.1) H = V' + 4S, (E6.2) (τ − 1)·m = x̂ − H − R + c, (E6.3) V = H − m; e.g.
#   τ = 2, t=4: H = −2 + 0 = −2, m = −5 + 2 − 1 + 1 = −3, V = −2 + 3 = 1;
#   τ = 3, t=3: H = 1 + 4 = 5, 2m = 10 − 5 − 2 + 1 = 4 → m = 2, V = 5 − 2 = 3.
BIN_XHAT = [6, 4, 10, -5]
BIN_GOLDEN = {
    2: dict(r=[1, 0, 1, 1], h=[3, 4, 5, -2], s=[0, 1, 1, 0], v=[0, 3, 0, 1, -2]),
    3: dict(r=[1, 0, 2, 1], h=[2, 3, 5, -1], s=[0, 0, 1, 0], v=[0, 2, 3, 1, -1]),
}
# Gradient with ConstantSlope(1/2) (d = 1/2), loss = Σ S (S̄ = 1 at every step, V̄' = 0 at T);
# (E6.4) H̄ = S̄·d + V̄'·(1 − θ·d) = 1/2 + V̄'/2,  X̄ = H̄/τ,  V̄ = H̄·(1 − 1/τ):
#   τ = 2: t=4: H̄ = 1/2, X̄ = 1/4, V̄ = 1/4;   t=3: H̄ = 1/2 + 1/8 = 5/8, X̄ = 5/16, V̄ = 5/16;
#          t=2: H̄ = 1/2 + 5/32 = 21/32, X̄ = 21/64, V̄ = 21/64;   t=1: H̄ = 85/128, X̄ = 85/256
#   τ = 3: t=4: H̄ = 1/2, X̄ = 1/6, V̄ = 1/3;   t=3: H̄ = 1/2 + 1/6 = 2/3, X̄ = 2/9, V̄ = 4/9;
#          t=2: H̄ = 1/2 + 2/9 = 13/18, X̄ = 13/54, V̄ = 13/27;   t=1: H̄ = 1/2 + 13/54 = 20/27,
#          X̄ = 20/81
BIN_GX = {2: [85 / 256, 21 / 64, 5 / 16, 1 / 4], 3: [20 / 81, 13 / 54, 2 / 9, 1 / 6]}
BIN_MODES = [(b, r) for b in BINARY_BACKWARD_ALGORITHMS
             for r in (RECONSTRUCT_MODES if b == "fused" else RECONSTRUCT_MODES[:1])]


def _bin_node(tau, backward="fused", reconstruct="reverse", **kw):
    return revsnn.BinaryReversibleLIF(tau=tau, v_threshold=1.0, grid_bits=2, backward=backward,
                                      reconstruct=reconstruct, **kw)


def _ints(values):
    return torch.tensor(values, dtype=torch.int32)


@pytest.mark.parametrize("tau", sorted(BIN_GOLDEN))
def test_binary_golden_step_functions(tau):
    """(E5.1)–(E5.5) through binary_step and (E6.1)–(E6.3) through binary_step_inverse, exactly."""
    g, p = BIN_GOLDEN[tau], _bin_node(tau).params()
    assert (p.theta, p.half, p.grid) == (4, 1, 0.25)
    v = _ints([0])
    for step in range(4):
        x = _ints([BIN_XHAT[step]])
        s, r, h, v_next = binary_step(x, v, p)
        exact(torch.cat([s.to(torch.int32), r, h, v_next]),
              _ints([g["s"][step], g["r"][step], g["h"][step], g["v"][step + 1]]))
        v_back, h_back, bad = binary_step_inverse(s, r, v_next, x, p)
        exact(torch.cat([v_back, h_back]), _ints([g["v"][step], g["h"][step]]))
        assert bad == 0
        v = v_next


@pytest.mark.parametrize("tau", sorted(BIN_GOLDEN))
@pytest.mark.parametrize("backward, reconstruct", BIN_MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_golden_forward(tau, backward, reconstruct, dtype):
    """(E5.0)–(E5.5) through the module: true {0, 1} spikes and V_T in grid units, for every
    backward algorithm and reconstruction; binary_membranes gives V₀ … V₄."""
    g = BIN_GOLDEN[tau]
    node = _bin_node(tau, backward, reconstruct)
    x = t(BIN_X, dtype).view(4, 1, 1)
    s, v_final = node(x, return_state=True)
    exact(s.flatten(), t(g["s"], dtype))
    exact(v_final.flatten().to(torch.int32), _ints(g["v"][-1:]))
    exact(binary_membranes(x, node.params()).flatten(), _ints(g["v"]))


@pytest.mark.parametrize("tau", sorted(BIN_GOLDEN))
def test_binary_golden_trace_and_inverse(tau):
    """What is stored (packed S, packed R, V_T) holds the hand-computed values, and the walk back
    (E6.1)–(E6.3) rebuilds V₀ … V₄ from it and the input."""
    g = BIN_GOLDEN[tau]
    node = _bin_node(tau)
    x = t(BIN_X).view(4, 1, 1)
    trace = node.trace(x)
    exact(revsnn.unpack_spikes(trace.spikes, x.shape, torch.int32).flatten(), _ints(g["s"]))
    r = sum(revsnn.unpack_spikes(trace.remainders[:, j], x.shape, torch.int32) << j
            for j in range(trace.remainders.shape[1]))
    exact(r.flatten(), _ints(g["r"]))
    exact(trace.v_final.flatten().to(torch.int32), _ints(g["v"][-1:]))
    exact(node.inverse(trace, x).flatten(), _ints(g["v"]))


@pytest.mark.parametrize("tau", sorted(BIN_GX))
@pytest.mark.parametrize("backward, reconstruct", BIN_MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_golden_gradient(tau, backward, reconstruct, dtype):
    """(E6.4) by hand, for every backward algorithm and reconstruction (the fused backward rebuilds
    H by (E6.1)–(E6.3) or by replaying (E5.*), and raises if that disagrees with the forward)."""
    node = _bin_node(tau, backward, reconstruct, surrogate=ConstantSlope(0.5), on_drift="raise")
    x = t(BIN_X, dtype).view(4, 1, 1).requires_grad_()
    s, v_final = node(x, return_state=True)
    exact(s.detach().flatten(), t(BIN_GOLDEN[tau]["s"], dtype))
    s.sum().backward()
    assert_close(x.grad.flatten(), t(BIN_GX[tau], dtype))
    if backward == "fused" and reconstruct == "replay":
        assert v_final is None                   # replaying keeps nothing per neuron
    else:
        exact(v_final.flatten().to(torch.int32), _ints(BIN_GOLDEN[tau]["v"][-1:]))
