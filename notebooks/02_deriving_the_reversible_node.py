# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Deriving the reversible spiking node
#
# Notebook 01 showed that BPTT through a LIF node stores 12 bytes per neuron-step. A *reversible*
# node stores nothing per step: during the backward pass it rebuilds every input and membrane from
# its outputs, walking back in time. This notebook derives such a node from the LIF equations, one
# equation at a time, and checks each step against `revsnn.functional.reversible` (labels (E2.x), (E3.x) as in
# the NOTE blocks of `revsnn/functional/reversible.py`).
#
# The plan:
#
# 1. why the LIF step cannot be run backwards (leak, reset, binary output), with numbers;
# 2. the forward equations (E2.0)–(E2.6) of the two-group coupling;
# 3. the inverse (E3.1)–(E3.4), derived and verified bit for bit;
# 4. why threshold decisions must never be recomputed from slightly wrong values, and how the
#    fixed-point grid and the half-step spike encoding rule it out;
# 5. why the membranes stay bounded (a rotation: |eigenvalue| = 1);
# 6. a drift explorer (T, dtype, σ) against the naive coupling.

# %%
import math
import os
import zipfile
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from IPython.display import display

import revsnn
from revsnn import ReversibleLIF, check_invertible, drift_table
from revsnn.export import export_all, slugify
from revsnn.analysis.invertibility import naive_coupling_drift
from revsnn.functional.quantize import quantize
from revsnn.functional.reversible import rev_step, rev_step_inverse

SMALL = os.environ.get("REVSNN_SMALL") == "1"
torch.manual_seed(0)
print("revsnn", revsnn.__version__, "| small run:", SMALL)

# %% [markdown]
# ## 1. Three reasons the LIF step does not run backwards
#
# One LIF step (notebook 01) maps (X[t], V[t−1]) → (S[t], V[t]). To run it backwards we would need
# X[t] and V[t−1] from S[t] and V[t]:
#
# - **the spike is binary**: S[t] cannot tell us the real-valued X[t];
# - **the hard reset (E1.5) erases H**: every spiking neuron lands on V_reset whatever H was;
# - **the leak is a contraction**: with `decay_input`, (E1.1) is H = αV + X/τ with α = 1 − 1/τ < 1.
#   Undoing it means dividing by α, and every rounding error made in the forward is multiplied by
#   1/α at every step back: an error of α^−T after T steps.
#
# The third point is the subtle one, so we measure it. Even with the spikes and the inputs given
# (the most favourable case), inverting the leak V[t−1] = (V[t] − X[t]/τ)/α from the final state
# loses everything after a few dozen steps. The few lines below are this counterexample only; the
# library never inverts by division.

# %%
def leak_roundtrip_error(T, tau, dtype, n=4096, seed=0):
    """Max |V(0) reconstructed − 0| after running V ← αV + X/τ forward T steps and dividing back."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, n, generator=g, dtype=torch.float64) * 1.5).to(dtype)
    a = 1 - 1 / tau
    v = torch.zeros(n, dtype=dtype)
    for t in range(T):
        v = a * v + x[t] / tau                  # the leak of (E1.1), sub-threshold
    for t in range(T - 1, -1, -1):
        v = (v - x[t] / tau) / a                # its inverse: divide by α
    return float(v.abs().max())


T_LEAK = [4, 8, 16, 24, 32, 48, 64]
leak = pd.DataFrame([{"T": T, "dtype": str(dt).replace("torch.", ""), "tau": tau,
                      "error": leak_roundtrip_error(T, tau, dt)}
                     for tau in (2.0, 4.0) for dt in (torch.float32, torch.float64) for T in T_LEAK])
# short sequences look harmless: the damage only shows as T grows
assert leak[leak["T"] == 4].error.max() < 1e-4
leak.pivot_table(index="T", columns=["tau", "dtype"], values="error")

# %% [markdown]
# **Check.** The error should grow like (1/α)^T: log₂(error) rises by log₂(1/α) per step
# (1 bit per step for τ = 2, where α = ½). float64 only delays the blow-up by the 29 extra bits of
# its significand; it does not stop it.

# %%
for (tau, dt), grp in leak.groupby(["tau", "dtype"]):
    ok = grp[(grp.error > 0) & np.isfinite(grp.error)]
    slope = np.polyfit(ok["T"], np.log2(ok.error), 1)[0]
    expected = math.log2(1 / (1 - 1 / tau))
    print(f"τ = {tau}, {dt}: log2(error) grows {slope:.2f} bits/step (log2(1/α) = {expected:.2f})")
    assert 0.75 * expected < slope < 1.25 * expected
e = leak.set_index(["tau", "dtype", "T"]).error
assert e[(2.0, "float32", 32)] > 1.0 > e[(2.0, "float64", 32)] and e[(2.0, "float64", 64)] > 1.0


# %%
def leak_figure(df):
    fig = go.Figure()
    for (tau, dt), grp in df.groupby(["tau", "dtype"]):
        fig.add_trace(go.Scatter(x=grp["T"], y=grp.error, mode="lines+markers",
                                 name=f"τ = {tau:g}, {dt}"))
    fig.update_layout(title="Inverting the leak by division amplifies rounding by α^−T",
                      xaxis_title="steps T", yaxis_title="max |V(0) error|", yaxis_type="log",
                      yaxis_exponentformat="power",
                      height=400)
    return fig


leak_fig = leak_figure(leak)
leak_fig.show()

# %% [markdown]
# ## 2. The two-group coupling: forward equations (E2.0)–(E2.6)
#
# The remedy for each obstacle:
#
# - **leak → additive coupling.** Split the channels into two groups (X₁ = first half, X₂ = second
#   half; neuron i of group 1 is paired with neuron i of group 2). Each membrane is changed by adding
#   a function of values that will be *known when inverting*: its input and the partner's membrane
#   (RevNet's coupling, Gomez et al. 2017). Undoing an addition is a subtraction: no division.
#   The leak's role (keeping V bounded) passes to the coupling, which we show is a rotation (§5).
# - **hard reset → soft reset**, V' = H − θS: injective once S is known.
# - **binary output → real output** Y = X̄ + ϑS: carries both the input and the spike.
# - **rounding → a fixed-point grid.** All values are multiples of δ = 2^−Q (Q = 12 in fp32),
#   q(z) = δ·round(z/δ); sums of grid values are exact in floating point while they stay below
#   2^24 grid steps. ϑ = θ + δ/2 sits *half a step off* the grid, so the spike is written into the
#   parity of Y/(δ/2).
#
# With β = 1/τ (input scale), a = 1/τ (coupling), θ = V_th, ϑ = θ + δ/2:
#
# | label | equation |
# |---|---|
# | (E2.0) | $\bar{X}_g = q(X_g)$ |
# | (E2.1) | $H_1 = V_1 + q(\beta \cdot \bar{X}_1) - q(a \cdot V_2)$ |
# | (E2.2) | $S_1 = \Theta(H_1 - \theta)$; $\quad Y_1 = \bar{X}_1 + \vartheta \cdot S_1$ |
# | (E2.3) | $V_1' = H_1 - \theta \cdot S_1$ |
# | (E2.4) | $H_2 = V_2 + q(\beta \cdot \bar{X}_2) + q(a \cdot V_1')$ |
# | (E2.5) | $S_2 = \Theta(H_2 - \theta)$; $\quad Y_2 = \bar{X}_2 + \vartheta \cdot S_2$ |
# | (E2.6) | $V_2' = H_2 - \theta \cdot S_2$ |
#
# We run one step of the library's `rev_step` on random inputs and random grid membranes, then
# recompute each equation by hand and compare.

# %%
node = ReversibleLIF()                  # τ = 2, θ = 1, a = 1/τ, fp32 grid Q = 12
p = node.params(torch.float32)
delta, theta, vartheta, a, beta = p.grid, p.v_threshold, p.spike_scale, p.coupling, p.input_scale
print(p)
B, C = 8, 64
x = torch.randn(B, C) * 1.5
x1, x2 = x[:, : C // 2], x[:, C // 2:]
v1 = quantize(torch.randn(B, C // 2), delta)     # membranes live on the grid
v2 = quantize(torch.randn(B, C // 2), delta)
y1_lib, y2_lib, v1n_lib, v2n_lib = rev_step(x1, x2, v1, v2, p)
print("X groups", tuple(x1.shape), tuple(x2.shape), "→ Y", tuple(y1_lib.shape),
      "V'", tuple(v1n_lib.shape))
assert delta == 2.0**-12 and a == beta == 1 / node.tau          # fp32 grid, a = β = 1/τ by default
assert y1_lib.shape == y2_lib.shape == v1n_lib.shape == (B, C // 2)


def on_grid(z, step):
    """True where z is an integer multiple of step."""
    return torch.equal(torch.round(z / step) * step, z)


# %% [markdown]
# **(E2.0)** The inputs are snapped to the grid: X̄ is a multiple of δ within δ/2 of X, and it is
# what `ReversibleLIF.quantize_input` returns.

# %%
xb1, xb2 = quantize(x1, delta), quantize(x2, delta)                          # (E2.0)
assert on_grid(xb1, delta) and on_grid(xb2, delta)
assert (xb1 - x1).abs().max() <= delta / 2
assert torch.equal(torch.cat([xb1, xb2], 1), node.quantize_input(x[None])[0])
assert on_grid(torch.tensor(theta), delta) and not on_grid(torch.tensor(vartheta), delta)
assert (vartheta - theta) == delta / 2
print(f"δ = 2^{int(math.log2(delta))}, θ = {theta}, ϑ = θ + δ/2 = {vartheta}")

# %% [markdown]
# **(E2.1)–(E2.3)**, group 1: charge from the own input minus the partner's membrane, fire, soft
# reset. H₁ is a sum of grid values, so it is on the grid too.

# %%
h1 = v1 + quantize(beta * xb1, delta) - quantize(a * v2, delta)              # (E2.1)
assert on_grid(h1, delta)
s1 = (h1 >= theta).to(x.dtype)                                               # (E2.2)
y1 = xb1 + vartheta * s1
assert torch.equal(y1, y1_lib)
v1n = h1 - theta * s1                                                        # (E2.3)
assert torch.equal(v1n, v1n_lib)
print(f"group 1: {int(s1.sum())} spikes of {s1.numel()}; Y₁ and V₁' equal rev_step's bit for bit")

# %% [markdown]
# **(E2.4)–(E2.6)**, group 2: the same with a plus sign, coupled to the *new* membrane V₁'. Using
# V₁' (not V₁) is what makes the two updates a chain that can be undone in the opposite order.

# %%
h2 = v2 + quantize(beta * xb2, delta) + quantize(a * v1n, delta)             # (E2.4)
assert on_grid(h2, delta)
s2 = (h2 >= theta).to(x.dtype)                                               # (E2.5)
y2 = xb2 + vartheta * s2
assert torch.equal(y2, y2_lib)
v2n = h2 - theta * s2                                                        # (E2.6)
assert torch.equal(v2n, v2n_lib)
print(f"group 2: {int(s2.sum())} spikes; Y₂ and V₂' equal rev_step's bit for bit")

# %% [markdown]
# ## 3. The inverse, one equation at a time
#
# Given the outputs (Y₁, Y₂) and the membranes after the step (V₁', V₂'), undo the forward in the
# opposite order: group 2 first, because its update used V₁', which we have.
#
# **The half-step spike encoding (E3.1).** From (E2.5), Y₂ = X̄₂ + ϑS₂. X̄₂ is a multiple of δ,
# i.e. an *even* multiple of δ/2; ϑ = θ + δ/2 is an *odd* multiple of δ/2. So Y₂/(δ/2) is an integer
# that is odd exactly when S₂ = 1. The spike is read off the output, never recomputed from a
# threshold comparison. Then X̄₂ = Y₂ − ϑS₂ and, from (E2.6), H₂ = V₂' + θS₂.

# %%
k2 = y2_lib / (delta / 2)
assert torch.equal(k2, torch.round(k2))                       # Y/(δ/2) is an integer
S2_dec = torch.remainder(k2, 2.0)                                             # (E3.1)
assert torch.equal(S2_dec, s2)
X2_rec = y2_lib - vartheta * S2_dec
assert torch.equal(X2_rec, xb2)
H2_rec = v2n_lib + theta * S2_dec
assert torch.equal(H2_rec, h2)
pd.DataFrame({"X̄₂": xb2[0, :6], "S₂": s2[0, :6], "Y₂": y2_lib[0, :6],
              "Y₂/(δ/2)": k2[0, :6].long(), "parity": S2_dec[0, :6].long()})

# %% [markdown]
# **(E3.2)** Subtract what (E2.4) added: V₂ = H₂ − q(β·X̄₂) − q(a·V₁'). Both q-terms are evaluated
# on exactly the values the forward used, so they are the same numbers.

# %%
V2_rec = H2_rec - quantize(beta * X2_rec, delta) - quantize(a * v1n_lib, delta)   # (E3.2)
assert torch.equal(V2_rec, v2)
print("(E3.2): V₂ recovered bit for bit")

# %% [markdown]
# **(E3.3)–(E3.4)** Group 1 the same way, now that V₂ is known:
# S₁ = odd(Y₁/(δ/2)), X̄₁ = Y₁ − ϑS₁, H₁ = V₁' + θS₁, V₁ = H₁ − q(β·X̄₁) + q(a·V₂).

# %%
S1_dec = torch.remainder(y1_lib / (delta / 2), 2.0)                             # (E3.3)
X1_rec = y1_lib - vartheta * S1_dec
H1_rec = v1n_lib + theta * S1_dec
assert torch.equal(S1_dec, s1) and torch.equal(X1_rec, xb1) and torch.equal(H1_rec, h1)
V1_rec = H1_rec - quantize(beta * X1_rec, delta) + quantize(a * V2_rec, delta)     # (E3.4)
assert torch.equal(V1_rec, v1)
print("(E3.3), (E3.4): X̄₁ and V₁ recovered bit for bit")

# %% [markdown]
# **The library's inverse** `rev_step_inverse` implements exactly these four equations, and also
# counts any recomputed decision Θ(H − θ) that disagrees with the decoded spike (`flips`) and any
# output off the half-step grid (`off_grid`): both must be zero.

# %%
inv = rev_step_inverse(y1_lib, y2_lib, v1n_lib, v2n_lib, p)
for name, got, want in [("X̄₁", inv.x1, xb1), ("X̄₂", inv.x2, xb2), ("V₁", inv.v1, v1),
                        ("V₂", inv.v2, v2), ("H₁", inv.h1, h1), ("H₂", inv.h2, h2)]:
    assert torch.equal(got, want), name
assert int(inv.flips) == 0 and int(inv.off_grid) == 0
print("rev_step_inverse: all six tensors bit-exact, 0 flips, 0 off-grid outputs")

# %% [markdown]
# **A whole sequence.** Chaining the inverse from the final state recovers every input and the
# initial (resting) state exactly, for any length. Each operand is a multiple of δ/2 far below 2^24
# grid steps in magnitude, so every addition and subtraction is exact.

# %%
T_SEQ = 128 if SMALL else 1024
xs = torch.randn(T_SEQ, 8, 64) * 1.5
ys, (v1T, v2T) = node(xs, return_state=True)
x_rec, (v1_0, v2_0) = node.inverse(ys, (v1T, v2T))
assert torch.equal(x_rec, node.quantize_input(xs))
assert torch.equal(v1_0, torch.zeros_like(v1_0)) and torch.equal(v2_0, torch.zeros_like(v2_0))
k = ys / (delta / 2)
assert torch.equal(k, torch.round(k)) and float(k.abs().max()) < 2**24
print(f"T = {T_SEQ}: inputs and initial state reconstructed exactly; "
      f"max |Y|/(δ/2) = {float(k.abs().max()):.0f} < 2^24")

# %% [markdown]
# ## 4. Threshold flips: why the grid is not optional
#
# Suppose the inverse were computed in ordinary floating point and reconstructed H one ulp off.
# Where H sits exactly at the threshold, the recomputed decision flips, and a flipped spike is an
# error of the size of the spike term (ϑ in Y, θ in V'), not of a rounding unit.

# %%
H_exact = torch.tensor([theta])                                   # a neuron exactly at threshold
H_one_ulp = torch.nextafter(H_exact, torch.tensor([-math.inf]))   # one ulp below
S_a, S_b = (H_exact >= theta).float(), (H_one_ulp >= theta).float()
err_V = float(((H_exact - theta * S_a) - (H_one_ulp - theta * S_b)).abs())
ulp = float(H_exact - H_one_ulp)
print(f"one ulp = {ulp:.3g}; spike {int(S_a)} → {int(S_b)}; error in V' = {err_V:.6f} = "
      f"{err_V / ulp:.3g} ulps")
assert S_a != S_b and err_V > 0.99 * theta

# %% [markdown]
# It happens in practice, not just at contrived points: take the same node with a grid far finer than
# float32 can hold (Q = 30 bits, δ = 2^−30 below fp32's precision near 1), so additions round again.
# `revsnn.check_invertible` then reports flipped spikes and an O(θ) state error; with the default
# grid (Q = 12) the same sequence inverts exactly.

# %%
xs_flip = torch.randn(64, 8, 64) * 1.5
r_fine = check_invertible(ReversibleLIF(grid_bits=30, on_drift="ignore"), xs_flip)
r_grid = check_invertible(ReversibleLIF(), xs_flip)
pd.DataFrame([{"grid": "Q = 30 (finer than fp32)", **r_fine.as_row()},
              {"grid": "Q = 12 (default)", **r_grid.as_row()}])

# %%
assert r_fine.flipped_spikes > 0 and r_fine.state_error > 0.1 and not r_fine.exact
assert r_grid.exact and r_grid.flipped_spikes == 0

# %% [markdown]
# ## 5. Boundedness: the coupling is a rotation
#
# Drop inputs and resets (sub-threshold, X = 0) and ignore q. Then (E2.1) and (E2.4) give
# V₁' = V₁ − a·V₂ and V₂' = V₂ + a·V₁' = a·V₁ + (1 − a²)·V₂, i.e. V' = M·V with
#
#     M = [[1, −a], [a, 1 − a²]],   det M = 1,   trace M = 2 − a².
#
# det = 1: volume-preserving (no contraction to undo). For 0 < a < 2, |trace| < 2, so the
# eigenvalues are the complex pair e^{±iω} with cos ω = 1 − a²/2: both on the unit circle, and M is
# a rotation in suitable coordinates. The LIF leak (a contraction) is replaced by an
# energy-preserving exchange between partner membranes.
#
# **Check 1**: the library's step, sub-threshold with zero input, is M·V up to the grid rounding.

# %%
p64 = ReversibleLIF(v_threshold=1e6).params(torch.float64)   # threshold never reached
a64 = p64.coupling
M = torch.tensor([[1.0, -a64], [a64, 1.0 - a64**2]], dtype=torch.float64)
V = quantize(torch.randn(2, 1000, dtype=torch.float64), p64.grid)
zero = torch.zeros(1000, dtype=torch.float64)
_, _, w1, w2 = rev_step(zero, zero, V[0], V[1], p64)
torch.testing.assert_close(torch.stack([w1, w2]), M @ V, rtol=0, atol=2 * p64.grid)
print("sub-threshold rev_step = M·V within", 2 * p64.grid)

# %% [markdown]
# **Check 2**: det M = 1, trace = 2 − a², and |eigenvalue| = 1 for every coupling 0 < a < 2, but not
# for a > 2. The naive coupling V̂ = αV + H(1 − S) of the literature (with α = 1, as measured here)
# has the sub-threshold map V ↦ 2V (eigenvalue 2): it doubles the membrane every step.

# %%
def coupling_matrix(a):
    return torch.tensor([[1.0, -a], [a, 1.0 - a * a]], dtype=torch.float64)


eig_rows = []
for a_ in (0.1, 0.5, 1.0, 1.5, 1.9, 2.5):
    Ma = coupling_matrix(a_)
    ev = torch.linalg.eigvals(Ma)
    eig_rows.append({"a": a_, "det": float(torch.linalg.det(Ma)), "trace": float(Ma.trace()),
                     "|λ| max": float(ev.abs().max()), "|λ| min": float(ev.abs().min())})
eig = pd.DataFrame(eig_rows)
eig

# %%
inside = eig[eig.a < 2]
assert np.allclose(eig.det, 1.0, atol=1e-12) and np.allclose(eig.trace, 2 - eig.a**2)
assert np.allclose(inside["|λ| max"], 1.0, atol=1e-12)
assert np.allclose(inside["|λ| min"], 1.0, atol=1e-12)
assert float(eig[eig.a == 2.5]["|λ| max"].iloc[0]) > 1.5            # a > 2: not a rotation
assert float(torch.linalg.eigvals(torch.tensor([[2.0]])).abs()) == 2.0   # naive: V ↦ 2V
print("|λ| = 1 for 0 < a < 2 ✓")


# %%
def rotation_figure(a=0.5, steps=200):
    """Orbit of (V₁, V₂) under M (no input, no spikes) and M's eigenvalues vs the unit circle."""
    from plotly.subplots import make_subplots
    Ma = coupling_matrix(a)
    v = torch.tensor([1.0, 0.0], dtype=torch.float64)
    orbit = [v]
    for _ in range(steps):
        v = Ma @ v
        orbit.append(v)
    orbit = torch.stack(orbit).clamp(-50, 50).numpy()
    ev = torch.linalg.eigvals(Ma).numpy()
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"orbit of (V₁, V₂), {steps} steps", "eigenvalues of M"))
    fig.add_trace(go.Scatter(x=orbit[:, 0], y=orbit[:, 1], mode="markers+lines",
                             marker=dict(size=4), name="orbit"), 1, 1)
    th = np.linspace(0, 2 * np.pi, 200)
    fig.add_trace(go.Scatter(x=np.cos(th), y=np.sin(th), mode="lines", name="unit circle",
                             line=dict(dash="dot", color="grey")), 1, 2)
    fig.add_trace(go.Scatter(x=ev.real, y=ev.imag, mode="markers", marker=dict(size=12),
                             name=f"λ, |λ| = {', '.join(f'{abs(e):.3f}' for e in ev)}"), 1, 2)
    fig.update_layout(title=f"coupling a = {a:g}: trace = {2 - a * a:.3f} "
                            f"({'rotation' if a < 2 else 'not a rotation'})", height=420)
    fig.update_yaxes(scaleanchor="x", row=1, col=2)
    return fig


rot_ui = widgets.interactive(lambda a: rotation_figure(a).show(),
                             a=widgets.FloatSlider(value=0.5, min=0.05, max=2.5, step=0.05,
                                                   description="coupling a"))
display(rot_ui)
rot_ui.f(**rot_ui.kwargs)   # the same figure as a plain output, saved in an executed
# notebook (a widget's own drawing is not)

# %% [markdown]
# **Check 3**: the full node (inputs, spikes, resets) stays bounded as T grows, while the naive
# coupling's membranes explode (and reach inf/NaN in fp32).

# %%
T_BOUND = [16, 64, 128] if SMALL else [16, 64, 256, 1024]
bound = pd.DataFrame(
    [{"T": T, "node": "ReversibleLIF",
      "max |V|": check_invertible(node, torch.randn(T, 8, 64) * 1.5).max_membrane} for T in T_BOUND]
    + [{"T": T, "node": "naive coupling", "max |V|": naive_coupling_drift(T, n=512)["max_membrane"]}
       for T in T_BOUND])
bound.pivot(index="T", columns="node", values="max |V|")

# %%
rev_max = bound[bound.node == "ReversibleLIF"]["max |V|"]
naive_max = bound[bound.node == "naive coupling"]["max |V|"]
assert rev_max.max() < 20, rev_max                     # a few times the input scale, for any T
assert naive_max.iloc[1] > 1e10 and not np.isfinite(naive_max.iloc[-1])
print(f"ReversibleLIF max |V| ≤ {rev_max.max():.2f}; naive coupling reaches {naive_max.iloc[-1]}")

# %% [markdown]
# ## 6. Drift explorer
#
# `revsnn.drift_table` runs the node forward and back (with `check_invertible`) and the naive coupling
# of the literature, (E3.N1) H = αV + X/τ, S = Θ(H − θ), V̂ = αV + H(1 − S), inverted by division,
# (E3.N2) V = (V̂ − (X/τ)(1 − S)) / (α(2 − S)). Pick T, the dtype and the input scale σ.

# %%
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


def drift_figure(df):
    fig = go.Figure()
    floor = 1e-18          # exact zeros drawn on the floor of the log axis
    for (nd, dt), grp in df.groupby(["node", "dtype"]):
        err = grp.state_error.where(grp.state_error > 0, floor).clip(upper=1e38).fillna(1e38)
        fig.add_trace(go.Scatter(x=grp["T"], y=err, mode="lines+markers", name=f"{nd}, {dt}",
                                 line=dict(dash="solid" if nd == "ReversibleLIF" else "dot")))
    fig.add_hline(y=floor, line_dash="dash", annotation_text="exact (0)")
    fig.update_layout(title="Error of the reconstructed initial state V(0)", xaxis_title="T",
                      yaxis_title="max |V(0) error| (inf/NaN drawn at 1e38)", yaxis_type="log",
                      yaxis_exponentformat="power", yaxis_dtick=4, xaxis_type="log",
                      xaxis_tickvals=sorted(df["T"].unique()), height=420)
    return fig


def explore_drift(T=64, dtype="float32", sigma=1.5):
    df = drift_table(Ts=(T,), dtypes=(DTYPES[dtype],), sigma=sigma, batch=8, channels=128)
    display(df[["node", "T", "dtype", "state_error", "flipped_spikes", "max_membrane", "exact"]])
    return df


drift_ui = widgets.interactive(
    explore_drift,
    T=widgets.IntSlider(value=64, min=2, max=512 if SMALL else 2048, description="T"),
    dtype=widgets.Dropdown(options=list(DTYPES), value="float32", description="dtype"),
    sigma=widgets.FloatSlider(value=1.5, min=0.1, max=5.0, step=0.1, description="σ"),
)
display(drift_ui)

# %%
# the table is the one for the widget's current values (rerun this cell after moving it)
ui_df = drift_ui.result
assert set(ui_df["T"]) == {drift_ui.kwargs["T"]} and set(ui_df.dtype) == {drift_ui.kwargs["dtype"]}
assert bool(ui_df[ui_df.node == "ReversibleLIF"].exact.all())

# %%
T_DRIFT = (4, 16, 64, 128) if SMALL else (4, 16, 64, 128, 256, 1024)
drift = drift_table(Ts=T_DRIFT, dtypes=tuple(DTYPES.values()), batch=8 if SMALL else 16,
                    channels=128 if SMALL else 256)
drift_fig = drift_figure(drift)
drift_fig.show()

# %%
rev_rows = drift[drift.node == "ReversibleLIF"]
naive_rows = drift[(drift.node == "naive coupling") & (drift.dtype == "float32")]
assert rev_rows.exact.all() and (rev_rows.flipped_spikes == 0).all()
assert not np.isfinite(naive_rows[naive_rows["T"] == 128].max_membrane).all()
print("ReversibleLIF exact for every T and dtype; naive fp32 coupling overflows by T = 128")

# %% [markdown]
# ## 7. Export the figures
#
# One call (`revsnn.export.export_all`) writes the figures and tables into one zip under
# `REVSNN_EXPORT_DIR` (default `artifacts/notebooks/`); PNG/SVG are added when Chromium is available.

# %%
EXPORT_DIR = Path(os.environ.get("REVSNN_EXPORT_DIR", "../artifacts/notebooks"))
FIGURES = {"leak_inversion": leak_fig, "rotation": rotation_figure(0.5), "drift": drift_fig}
TABLES = {"leak_inversion": leak, "coupling_eigenvalues": eig, "boundedness": bound, "drift": drift}
archive = EXPORT_DIR / "02_deriving_the_reversible_node.zip"
archive.parent.mkdir(parents=True, exist_ok=True)
FORMATS = ("html",) if SMALL else ("html", "png", "svg")
archive.write_bytes(export_all(FIGURES, TABLES, formats=FORMATS))
print(archive, zipfile.ZipFile(archive).namelist())

# %% [markdown]
# ## Summary, checked
#
# - The LIF step loses information three ways; inverting its leak by division amplifies rounding
#   by α^−T (measured: ≈ log₂(1/α) bits per step, fp64 only delays it).
# - The two-group coupling (E2.0)–(E2.6) inverts by (E3.1)–(E3.4) with only additions and
#   subtractions on a fixed-point grid; the spike is decoded from the parity of Y/(δ/2), so no
#   threshold decision is ever recomputed; reconstruction is bit-exact for any T.
# - Without the grid, one ulp at the threshold flips a spike and costs a whole θ.
# - Its linear part is a rotation (|λ| = 1), so membranes stay bounded; the naive coupling doubles
#   them every step.

# %%
assert torch.equal(x_rec, node.quantize_input(xs))
assert r_grid.exact and not r_fine.exact
assert rev_rows.exact.all()
assert {f"figures/{slugify(n)}.html" for n in FIGURES} <= set(zipfile.ZipFile(archive).namelist())
print("notebook 02: all checks passed")
