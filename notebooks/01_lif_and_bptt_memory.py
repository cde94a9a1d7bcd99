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
# # 01 · The LIF neuron, and why backpropagation through time needs memory that grows with T
#
# This notebook writes down the discrete leaky integrate-and-fire (LIF) neuron that SpikingJelly,
# snnTorch and Norse implement, checks every equation against `revsnn.nodes.lif`, lets you play with
# its trajectories, and then counts, byte by byte, what autograd keeps for the backward pass.
# The count is the problem the rest of the series solves: plain backpropagation through time (BPTT)
# stores a fixed number of bytes per neuron **per time step**, so memory grows linearly with the
# number of steps T and with the batch.
#
# Every derivation step is followed by a cell that checks it with an assertion.
# Set `REVSNN_SMALL=1` to run everything on tiny sizes (this is what the test suite does).

# %%
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
from revsnn import LIF, IF, LIFParams, MemoryMode, lif_step, if_step, make_node
from revsnn.export import export_all, slugify
from revsnn.analysis.measure import saved_tensor_bytes

SMALL = os.environ.get("REVSNN_SMALL") == "1"
torch.manual_seed(0)
print("revsnn", revsnn.__version__, "| torch", torch.__version__, "| small run:", SMALL)

# %% [markdown]
# ## 1. The discrete LIF equations
#
# A layer of N neurons receives an input current X[t] (shape `[B, N]` at each step t). Each neuron
# has a membrane potential V. One step of the LIF neuron is *charge → fire → reset*
# (labels as in `revsnn/functional/lif.py`):
#
# | label | step | equation |
# |---|---|---|
# | (E1.1) | charge, `decay_input=True` | $H[t] = V[t-1] + \left(X[t] - (V[t-1] - V_{\mathrm{reset}})\right) / \tau$ |
# | (E1.2) | charge, `decay_input=False` | $H[t] = V[t-1] - (V[t-1] - V_{\mathrm{reset}}) / \tau + X[t]$ |
# | (E1.3) | IF charge (no leak) | $H[t] = V[t-1] + X[t]$ |
# | (E1.4) | fire | $S[t] = \Theta(H[t] - V_{\mathrm{th}})$ |
# | (E1.5) | hard reset | $V[t] = S[t] \cdot V_{\mathrm{reset}} + (1 - S[t]) \cdot H[t]$ |
# | (E1.6) | soft reset | $V[t] = H[t] - S[t] \cdot V_{\mathrm{th}}$ |
#
# Θ is the Heaviside step (Θ(0) = 1). Its derivative is zero almost everywhere, so training uses a
# *surrogate* derivative (sigmoid with α = 4 by default, as in SpikingJelly); the forward stays binary.
#
# We check each equation on one random step of a `[B, N] = [4, 6]` layer, starting from random
# membranes, by computing it by hand and comparing with `revsnn.lif_step` / `revsnn.if_step`.

# %%
B, N = 4, 6
x = torch.randn(B, N) * 1.5
v_prev = torch.rand(B, N) * 0.8
p_hard = LIFParams(tau=2.0, v_threshold=1.0, v_reset=0.0)
s_lib, v_lib = lif_step(x, v_prev, p_hard)
print("shapes: X", tuple(x.shape), "V[t-1]", tuple(v_prev.shape), "→ S", tuple(s_lib.shape),
      "V[t]", tuple(v_lib.shape))
assert s_lib.shape == v_lib.shape == x.shape == (B, N)

# %% [markdown]
# **(E1.1) charge.** Below threshold there is no spike and no reset, so V[t] = H[t]: the library's
# new membrane must equal our hand-computed H on every neuron that did not fire.

# %%
tau, v_th, v_reset = p_hard.tau, p_hard.v_threshold, p_hard.v_reset
H = v_prev + (x - (v_prev - v_reset)) / tau                                     # (E1.1)
quiet = s_lib == 0
assert quiet.any() and torch.equal(v_lib[quiet], H[quiet])
# the same charge written as a leak α = 1 − 1/τ plus a scaled input (used in notebook 02):
alpha = 1 - 1 / tau
torch.testing.assert_close(H, alpha * v_prev + x / tau + v_reset / tau)
print(f"(E1.1) holds on {int(quiet.sum())} quiet neurons; leak factor α = 1 − 1/τ = {alpha}")

# %% [markdown]
# **(E1.4) fire.** A spike is emitted exactly where H reaches the threshold.

# %%
S = (H >= v_th).to(x.dtype)                                                     # (E1.4)
assert torch.equal(s_lib, S)
assert set(s_lib.unique().tolist()) <= {0.0, 1.0}
print(f"(E1.4) holds; {int(S.sum())} of {S.numel()} neurons fired")

# %% [markdown]
# **(E1.5) hard reset.** Neurons that fired go to V_reset, the others keep H.

# %%
V_hard = S * v_reset + (1 - S) * H                                              # (E1.5)
assert torch.equal(v_lib, V_hard)
assert torch.all(v_lib[S == 1] == v_reset)
print("(E1.5) holds: spiking neurons are at V_reset =", v_reset)

# %% [markdown]
# **(E1.6) soft reset** (`v_reset=None`): the threshold is subtracted instead, so the overshoot
# H − V_th is kept. **(E1.2)** is the charge without input decay, **(E1.3)** the IF neuron.

# %%
p_soft = LIFParams(tau=2.0, v_threshold=1.0, v_reset=None)
s_soft, v_soft = lif_step(x, v_prev, p_soft)
H_soft = v_prev + (x - v_prev) / tau                                            # (E1.1), V_reset = 0
assert torch.equal(v_soft, H_soft - (H_soft >= v_th).to(x.dtype) * v_th)       # (E1.6)

p_nodecay = LIFParams(tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=False)
s_nd, v_nd = lif_step(x, v_prev, p_nodecay)
H_nd = v_prev - (v_prev - 0.0) / tau + x                                        # (E1.2)
assert torch.equal(s_nd, (H_nd >= v_th).to(x.dtype))
assert torch.equal(v_nd[s_nd == 0], H_nd[s_nd == 0])

s_if, v_if = if_step(x, v_prev, p_hard)
H_if = v_prev + x                                                               # (E1.3)
assert torch.equal(s_if, (H_if >= v_th).to(x.dtype))
assert torch.equal(v_if, (1 - s_if) * H_if)
print("(E1.2), (E1.3), (E1.6) hold")

# %% [markdown]
# **A golden trajectory by hand.** Constant input X = 1.5, τ = 2, V_th = 1, hard reset to 0:
# H = 0 + 1.5/2 = 0.75 (no spike), then 0.75 + (1.5 − 0.75)/2 = 1.125 (spike, V → 0), and the
# pattern repeats. The multi-step module `revsnn.LIF` (time first, `[T, B, N]`) must produce
# exactly this.

# %%
spikes, v_last = LIF()(torch.full((6, 1, 1), 1.5), return_state=True)
assert spikes.flatten().tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
assert v_last.item() == 0.0
assert IF()(torch.full((4, 1, 1), 0.6)).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
print("golden LIF spikes:", spikes.flatten().tolist())

# %% [markdown]
# ## 2. Trajectories: play with τ, threshold, reset and input scale
#
# `simulate` walks `revsnn.lif_step` over a fixed random input (the same noise for every slider
# setting, scaled by *input scale*) and records the membrane after each step. The plotting function
# only draws; all dynamics come from the library.

# %%
T_TRAJ = 60 if SMALL else 200
NOISE = torch.Generator().manual_seed(1)
U = 0.6 + 0.8 * torch.randn(T_TRAJ, 1, 3, generator=NOISE)     # 3 neurons, mean drive 0.6


def simulate(tau=2.0, v_threshold=1.0, v_reset=0.0, input_scale=1.5, soft_reset=False):
    """Membranes V[t] and spikes S[t] of 3 LIF neurons driven by input_scale·U."""
    p = LIFParams(tau=tau, v_threshold=v_threshold, v_reset=None if soft_reset else v_reset)
    v = torch.full_like(U[0], 0.0 if soft_reset else v_reset)
    vs, ss = [], []
    for t in range(T_TRAJ):
        s, v = lif_step(input_scale * U[t], v, p)
        vs.append(v)
        ss.append(s)
    return torch.stack(vs)[:, 0].numpy(), torch.stack(ss)[:, 0].numpy()


def trajectory_figure(tau=2.0, v_threshold=1.0, v_reset=0.0, input_scale=1.5, soft_reset=False):
    v, s = simulate(tau, v_threshold, v_reset, input_scale, soft_reset)
    fig = go.Figure()
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    for i in range(v.shape[1]):
        fig.add_trace(go.Scatter(y=v[:, i], mode="lines", name=f"V, neuron {i}",
                                 line=dict(color=colors[i])))
        t_spk = np.nonzero(s[:, i])[0]
        fig.add_trace(go.Scatter(x=t_spk, y=np.full(len(t_spk), v_threshold + 0.15 * (i + 1)),
                                 mode="markers", marker=dict(symbol="line-ns-open", size=10,
                                                             color=colors[i]),
                                 name=f"spikes {i} (rate {s[:, i].mean():.2f})"))
    fig.add_hline(y=v_threshold, line_dash="dash", annotation_text="V_th")
    reset = "soft reset (E1.6)" if soft_reset else f"hard reset to {v_reset:g} (E1.5)"
    fig.update_layout(title=f"LIF membranes: τ = {tau:g}, V_th = {v_threshold:g}, {reset}, "
                            f"input × {input_scale:g}",
                      xaxis_title="time step t", yaxis_title="membrane V[t]", height=420)
    return fig


traj_ui = widgets.interactive(
    lambda **kw: trajectory_figure(**kw).show(),
    tau=widgets.FloatSlider(value=2.0, min=1.1, max=10.0, step=0.1, description="τ"),
    v_threshold=widgets.FloatSlider(value=1.0, min=0.2, max=2.0, step=0.05, description="V_th"),
    v_reset=widgets.FloatSlider(value=0.0, min=-1.0, max=0.15, step=0.05, description="V_reset"),
    input_scale=widgets.FloatSlider(value=1.5, min=0.0, max=3.0, step=0.1, description="input ×"),
    soft_reset=widgets.Checkbox(value=False, description="soft reset"),
)
display(traj_ui)
traj_ui.f(**traj_ui.kwargs)   # the same figure as a plain output, saved in an executed
# notebook (a widget's own drawing is not)

# %% [markdown]
# What the sliders should show, checked here: a larger input or a lower threshold fires more,
# a longer τ integrates more slowly (with `decay_input` the input is divided by τ) and so fires less
# on this drive, and with the hard reset a neuron that fired starts again from V_reset.

# %%
def rate(**kw):
    return simulate(**kw)[1].mean()

rates = [rate(input_scale=s) for s in (0.5, 1.0, 2.0, 3.0)]
assert all(a <= b for a, b in zip(rates, rates[1:])) and rates[-1] > rates[0]
assert rate(v_threshold=0.5) > rate(v_threshold=1.5)
assert rate(tau=1.5) > rate(tau=8.0)
# the widget's figure is drawn from its current state, whatever the sliders were moved to
assert f"τ = {traj_ui.kwargs['tau']:g}" in trajectory_figure(**traj_ui.kwargs).layout.title.text
print("firing rate vs input scale:", np.round(rates, 3))

# %% [markdown]
# ## 3. What autograd stores per neuron and step
#
# Walk the graph of one step of (E1.1)–(E1.5) and ask, op by op, which tensors its derivative needs:
#
# | op | derivative needs | saved (fp32) |
# |---|---|---|
# | (E1.1) `V + (X − (V − V_reset)) / τ`: adds, subtractions, division by the number τ | nothing | 0 B |
# | (E1.4) `Θ(H − V_th)` with a surrogate | its input H − V_th, to evaluate the surrogate | 4 B |
# | (E1.5) `S · V_reset` (tensor × number) | nothing | 0 B |
# | (E1.5) `(1 − S) · H` (tensor × tensor) | both factors, 1 − S and H | 8 B |
#
# **12 bytes per neuron-step** with the hard reset. The soft reset (E1.6), `H − S·V_th`, multiplies by
# a number only, so it saves **4 bytes**. Nothing is freed until the backward pass, so the total is
# bytes/step × T × B × N. `revsnn.analysis.measure.saved_tensor_bytes` counts exactly this with
# `torch.autograd.graph.saved_tensors_hooks` (deduplicated by storage).

# %%
T0, B0, N0 = 8, 4, 256
x0 = torch.randn(T0, B0, N0, requires_grad=True)
_, sb_hard = saved_tensor_bytes(make_node(MemoryMode.BPTT), x0)
_, sb_soft = saved_tensor_bytes(make_node(MemoryMode.BPTT, v_reset=None), x0)
per_hard = sb_hard.own / (T0 * B0 * N0)
per_soft = sb_soft.own / (T0 * B0 * N0)
print(sb_hard)
print(f"hard reset: {per_hard:g} B per neuron-step, soft reset: {per_soft:g} B per neuron-step")
assert per_hard == 12.0 and per_soft == 4.0
assert sb_hard.n_storages == 3 * T0      # H − V_th, 1 − S and H at every step: 3 tensors × T
assert sb_hard.shared_input == 0         # the input itself is not needed (only constants touch it)

# %% [markdown]
# ## 4. Growth with T and batch
#
# The prediction is *exactly* linear: saved = 12 · T · B · N bytes. We measure a grid of (T, B) and
# compare every point with the prediction, then fit a line in T for each batch.
# For contrast, the reversible node of notebook 02 (`MemoryMode.REVERSIBLE_FUSED`) keeps only its
# final membranes: 4 bytes per neuron, whatever T is (its output is stored by the next layer anyway
# and is reported separately as `shared_output`).

# %%
Ts = [2, 4, 8, 16] if SMALL else [2, 4, 8, 16, 32, 64, 128]
Bs = [1, 2, 4] if SMALL else [1, 4, 16, 32]
NEURONS = 256 if SMALL else 1024


def saved_row(mode, T, batch, neurons=NEURONS, **node_kw):
    xin = torch.randn(T, batch, neurons, requires_grad=True)
    _, sb = saved_tensor_bytes(make_node(mode, **node_kw), xin)
    return {"mode": MemoryMode(mode).label, "T": T, "batch": batch, "neurons": neurons,
            "saved_bytes": sb.own, "saved_output_bytes": sb.shared_output}


rows = [saved_row(m, T, b) for m in (MemoryMode.BPTT, MemoryMode.REVERSIBLE_FUSED)
        for T in Ts for b in Bs]
growth = pd.DataFrame(rows)
growth["bytes_per_neuron_step"] = growth.saved_bytes / (growth["T"] * growth.batch * growth.neurons)
growth.head(len(Ts) * len(Bs))

# %%
bptt = growth[growth["mode"] == MemoryMode.BPTT.label]
rev = growth[growth["mode"] == MemoryMode.REVERSIBLE_FUSED.label]
assert (bptt.saved_bytes == 12 * bptt["T"] * bptt.batch * bptt.neurons).all()
for b, grp in bptt.groupby("batch"):
    slope, intercept = np.polyfit(grp["T"], grp.saved_bytes, 1)
    assert abs(slope - 12 * b * NEURONS) < 1e-6 * slope and abs(intercept) < 1e-3 * slope
    print(f"batch {b}: saved bytes = {slope:.0f}·T + {intercept:.2g} (12·B·N = {12 * b * NEURONS})")
assert (rev.saved_bytes == 4 * rev.batch * rev.neurons).all()   # constant in T
print("reversible node: saved bytes independent of T ✓")


# %%
def growth_figure(df, neurons=NEURONS):
    fig = go.Figure()
    for (mode, b), grp in df.groupby(["mode", "batch"]):
        fig.add_trace(go.Scatter(x=grp["T"], y=grp.saved_bytes / 2**20, mode="lines+markers",
                                 name=f"{mode}, batch {b}",
                                 line=dict(dash="solid" if "BPTT" in mode else "dot")))
    fig.update_layout(title=f"Bytes autograd saves for one node of {neurons} neurons",
                      xaxis_title="time steps T", yaxis_title="saved MiB", height=420)
    return fig


growth_fig = growth_figure(growth)
growth_fig.show()

# %% [markdown]
# ### Explore: saved memory for your own T, batch and reset
#
# The widget re-measures with saved-tensor hooks on every change (small sizes keep it instant).

# %%
def explore_saved(T_max=32, batch=8, reset="hard"):
    kw = {} if reset == "hard" else {"v_reset": None}
    Tgrid = sorted({1, *np.unique(np.geomspace(1, T_max, 6).astype(int))})
    df = pd.DataFrame([saved_row(m, T, batch, 256, **kw)      # make_node drops what a node lacks
                       for m in (MemoryMode.BPTT, MemoryMode.REVERSIBLE_FUSED) for T in Tgrid])
    growth_figure(df, 256).show()
    return df


saved_ui = widgets.interactive(
    explore_saved,
    T_max=widgets.IntSlider(value=16 if SMALL else 64, min=2, max=256, description="T max"),
    batch=widgets.IntSlider(value=4, min=1, max=64, description="batch"),
    reset=widgets.Dropdown(options=["hard", "soft"], value="hard", description="reset"),
)
display(saved_ui)
saved_ui.f(**saved_ui.kwargs)   # the same figure as a plain output, saved in an executed
# notebook (a widget's own drawing is not)

# %%
# the widget's last result is a tidy table we can check like any other
# (for the widget's current values: rerunning this cell after moving the widget checks those)
df_ui = saved_ui.result
per_step = 12 if saved_ui.kwargs["reset"] == "hard" else 4      # bytes per neuron-step, as above
ui_bptt = df_ui[df_ui["mode"] == MemoryMode.BPTT.label]
assert (ui_bptt.batch == saved_ui.kwargs["batch"]).all()
assert (ui_bptt.saved_bytes == per_step * ui_bptt["T"] * ui_bptt.batch * 256).all()

# %% [markdown]
# ## 5. Export the figures
#
# One call, `revsnn.export.export_all`, writes every figure of this notebook and its tables into a
# zip: HTML always, PNG and SVG too when a static exporter (kaleido + Chromium) is available (a
# `MANIFEST.txt` in the zip says what was skipped and why). `REVSNN_EXPORT_DIR` chooses the folder
# (default `artifacts/notebooks/` at the repository root, which git ignores).

# %%
EXPORT_DIR = Path(os.environ.get("REVSNN_EXPORT_DIR", "../artifacts/notebooks"))
FIGURES = {"lif_trajectory": trajectory_figure(), "saved_bytes_growth": growth_fig}
TABLES = {"saved_bytes_growth": growth}
archive = EXPORT_DIR / "01_lif_and_bptt_memory.zip"
archive.parent.mkdir(parents=True, exist_ok=True)
FORMATS = ("html",) if SMALL else ("html", "png", "svg")
archive.write_bytes(export_all(FIGURES, TABLES, formats=FORMATS))
print(archive, zipfile.ZipFile(archive).namelist())

# %% [markdown]
# ## Summary, checked
#
# - One LIF step is (E1.1)/(E1.2)/(E1.3) → (E1.4) → (E1.5)/(E1.6); `revsnn.lif_step` matches each.
# - BPTT through a hard-reset LIF saves 12 B per neuron-step in fp32 (4 B with the soft reset), so
#   memory is 12·T·B·N: linear in T and in batch.
# - The reversible node of the next notebook keeps 4 B per neuron, independent of T.

# %%
assert per_hard == 12.0 and per_soft == 4.0
assert (bptt.bytes_per_neuron_step == 12.0).all()
assert rev.groupby("batch").saved_bytes.nunique().eq(1).all()
assert {f"figures/{slugify(n)}.html" for n in FIGURES} <= set(zipfile.ZipFile(archive).namelist())
print("notebook 01: all checks passed")
