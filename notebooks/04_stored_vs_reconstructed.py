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
# # 04 · Stored vs reconstructed: a per-layer memory model, checked against measurement
#
# The reviewers of the seed paper asked: *the convolution's weight is not invertible, so what does
# a reversible node actually save in a network?* This notebook answers with numbers. It uses the
# analytic model `revsnn.analysis.memory_model.predict_saved_bytes`, which lists, layer by layer, every tensor
# autograd keeps for the backward pass in each `MemoryMode`, and compares its totals, to the byte,
# with what saved-tensor hooks count on a real spiking VGG-11 from `revsnn.models`.
#
# The short answer, derived below: in a conv → BatchNorm → node block,
#
# - the **conv** still stores its input: its weight gradient ∂L/∂W = Σ x ⊗ ∂L/∂(Wx) needs it, and no
#   node can change that. But that input is the previous node's output, which the reversible node
#   keeps anyway (its backward starts from Y): one tensor, stored once;
# - the **BatchNorm** input is not stored when BN is fused into a reversible node (the node
#   reconstructs its own input; a 1-byte residual code makes that exact);
# - the **node** itself keeps only its final membranes: 4/T bytes per neuron-step instead of 12.

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
from revsnn import MemoryMode
from revsnn.export import export_all, slugify
from revsnn.analysis.measure import saved_tensor_bytes
from revsnn.analysis.memory_model import layer_table, predict_saved_bytes, predict_total
from revsnn.models import build

SMALL = os.environ.get("REVSNN_SMALL") == "1"
torch.manual_seed(0)
print("revsnn", revsnn.__version__, "| small run:", SMALL)

ARCH = "vgg11"
CFG = dict(T=2, batch=2, image_size=8) if SMALL else dict(T=4, batch=8, image_size=32)
MODES = [m for m in MemoryMode.node_modes() if m is not MemoryMode.EXACT_BINARY]  # zoo node modes
print(ARCH, CFG, [m.value for m in MODES])

# %% [markdown]
# ## 1. The model, for one mode
#
# One row per stored tensor: which layer keeps it, its shape per sample and step, its size. A tensor
# kept by two layers (a node's output that the next conv also needs) is listed at the first layer
# and marked `shared` at the second, with 0 bytes, just as storage deduplication counts it.

# %%
models = {m: build(ARCH, m, T=CFG["T"], seed=0) for m in MODES}      # same seed: same weights
tensors = {m: predict_saved_bytes(models[m], T=CFG["T"], batch=CFG["batch"],
                                  image_size=CFG["image_size"]) for m in MODES}
tensors[MemoryMode.REVERSIBLE_FUSED].head(14)

# %%
for m, df in tensors.items():
    assert int(df["bytes"].sum()) == df.attrs["total_bytes"]
    assert ((df["bytes"] == 0) == df.shared).all()                # shared rows cost nothing
    kept = df[~df.shared]
    assert (kept["bytes"] == kept.elements * kept.itemsize).all()
print({m.value: df.attrs["total_bytes"] for m, df in tensors.items()})

# %% [markdown]
# ## 2. Model vs measurement
#
# Run one forward of each of the networks built above (one per mode, same weights) on a batch
# under `revsnn.analysis.measure.saved_tensor_bytes` (parameters and buffers excluded), and compare the
# count with the model's total. They must agree exactly.

# %%
def measure_saved(model, batch, image_size, **_):
    x = torch.rand(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    _, sb = saved_tensor_bytes(model, x, params=[*model.parameters(), *model.buffers()])
    return sb.own


compare = pd.DataFrame([{"mode": m.value, "label": m.label,
                         "predicted_bytes": tensors[m].attrs["total_bytes"],
                         "measured_bytes": measure_saved(models[m], **CFG)} for m in MODES])
compare["predicted_MiB"] = compare.predicted_bytes / 2**20
compare["vs BPTT"] = compare.predicted_bytes.iloc[0] / compare.predicted_bytes
compare

# %%
assert (compare.predicted_bytes == compare.measured_bytes).all(), compare
predicted = compare.set_index("mode").predicted_bytes
assert predicted["fused"] < predicted["checkpoint"] < predicted["bptt"]
print("the analytic model matches the measured saved bytes in every mode, to the byte")

# %% [markdown]
# ## 3. What one block stores, per neuron-step
#
# Take the block `features.5` (conv → BN → node) of VGG-11, whose input is the output of the
# node `features.4.node`. Divide each stored tensor's bytes by the number of neurons × steps of the
# block's output, n = T·B·C·H·W. Per-channel statistics (a few hundred bytes) are listed apart.
#
# Predicted by hand, fp32:
#
# | tensor | BPTT | reversible, fused |
# |---|---|---|
# | conv input (= previous node's output) | 4 B | 4 B, but the same tensor the previous reversible node keeps as its Y: counted there, 0 here |
# | BatchNorm input | 4 B | none: 1 B residual code z − q(z) (BN fused into the node) |
# | node | 12 B (H − θ, 1 − S, H: notebook 01) | 4/T B (final membranes) + its output Y 4 B, which is the *next* conv's input |
# | **block total** | **20 B** | **5 + 4/T B** |

# %%
BLOCK = "features.5"


def per_neuron_step(df, block=BLOCK):
    rows = df[df.layer.str.startswith(block + ".") & ~df.tensor.str.contains("per channel|mean")]
    node_out = df[(df.layer == block + ".node")]
    n = CFG["T"] * CFG["batch"] * int(np.prod([int(v) for v in node_out["shape"].iloc[0].split("×")]))
    out = rows.assign(bytes_per_neuron_step=rows["bytes"] / n)
    return out[["layer", "kind", "tensor", "shared", "bytes", "bytes_per_neuron_step"]]


block_bptt = per_neuron_step(tensors[MemoryMode.BPTT])
block_fused = per_neuron_step(tensors[MemoryMode.REVERSIBLE_FUSED])
display(block_bptt)
display(block_fused)

# %%
T = CFG["T"]
assert block_bptt.bytes_per_neuron_step.sum() == 20.0
assert block_fused.bytes_per_neuron_step.sum() == 5 + 4 / T
conv_f = block_fused[block_fused.layer == f"{BLOCK}.conv"]
assert conv_f.shared.all() and (conv_f["bytes"] == 0).all()            # conv input: already kept
node_f = block_fused.set_index("tensor").bytes_per_neuron_step
assert node_f["final membranes V₁, V₂"] == 4 / T
node_ratio = (block_bptt[block_bptt.layer == f"{BLOCK}.node"].bytes_per_neuron_step.sum()
              / node_f["final membranes V₁, V₂"])
assert node_ratio == 3 * T                 # the node alone: 12 B vs 4/T B per neuron-step
print(f"block: 20 B → {5 + 4 / T:g} B per neuron-step; the node's own state alone: {node_ratio:g}× "
      f"smaller (= 3·T)")

# %% [markdown]
# ### The answer, as a table
#
# Built from the model's rows (not typed by hand), for the whole network, grouping every stored
# tensor by what it is for:
#
# - **activations between layers**: the inputs of convs, pools and the readout, and (reversible
#   modes) the nodes' outputs Y, which are the next layers' inputs; the weight gradients need them;
# - **BatchNorm**, **spiking node**, **max pool indices**: each layer's private state for its backward.
#
# The prediction: the first group is the same in every mode (no node can make a conv invertible),
# and everything a reversible node saves comes from the private state of BN and the node. One
# exception, checked below: a reversible node must keep its output Y even where the next layer
# would not (global average pooling keeps nothing), so such an output is an extra cost. In VGG-11
# that happens only when the input is too small for the last max pool (smaller than 32×32).

# %%
ROLES = ["activations between layers", "BatchNorm", "spiking node", "max pool indices"]


def by_role(df):
    between = (df.tensor.eq("input") & df.kind.isin(["conv", "max pool", "linear"])) \
        | df.tensor.eq("output Y")
    role = np.select([between, df.kind.str.contains("BatchNorm|BN"), df.kind.str.contains("LIF"),
                      df.kind.eq("max pool")], ROLES, "other")
    return df.assign(role=role).groupby("role", sort=False).agg(
        stores=("tensor", lambda s: "; ".join(dict.fromkeys(s))),
        MiB=("bytes", lambda b: b.sum() / 2**20)).reindex(ROLES)


answer = pd.concat({"BPTT": by_role(tensors[MemoryMode.BPTT]),
                    "fused": by_role(tensors[MemoryMode.REVERSIBLE_FUSED])}, axis=1)
answer

# %%
def unshared_outputs(df):
    """Bytes of node outputs Y that no later layer keeps as its input (the next input row)."""
    rows = df.reset_index(drop=True)
    extra = 0
    for i in rows.index[rows.tensor == "output Y"]:
        later = rows.loc[i + 1:]
        nxt = later[later.tensor == "input"]
        if nxt.empty or not nxt.shared.iloc[0]:
            extra += int(rows.loc[i, "bytes"])
    return extra


between = {m.value: by_role(df).loc["activations between layers", "MiB"] * 2**20
           for m, df in tensors.items()}
extra = {m.value: unshared_outputs(df) for m, df in tensors.items()}
for mode in between:      # the same in every mode, to the byte, up to the unshared outputs
    assert between[mode] - extra[mode] == between["bptt"], (between, extra)
assert extra["bptt"] == 0 and (extra["fused"] == 0) == (CFG["image_size"] >= 32)
assert "input" in answer.loc["activations between layers", ("fused", "stores")]   # conv keeps its input
assert "output Y" in answer.loc["activations between layers", ("fused", "stores")]
node_mib = answer.loc["spiking node"]
assert node_mib[("fused", "MiB")] * 3 * CFG["T"] == node_mib[("BPTT", "MiB")]   # 4/T B vs 12 B
assert answer.loc["BatchNorm", ("fused", "MiB")] < answer.loc["BatchNorm", ("BPTT", "MiB")] / 3
print(f"activations between layers: {between['bptt'] / 2**20:.3f} MiB in every mode "
      f"(+ {extra['fused'] / 2**20:.3f} MiB of node outputs no later layer keeps, reversible modes); "
      f"the savings come from BN and node state")

# %% [markdown]
# ## 4. Figures: where the bytes go, per mode and per layer

# %%
ROLE_COLORS = dict(zip(ROLES, ["#1f77b4", "#ff7f0e", "#d62728", "#7f7f7f"]))
KIND_COLORS = {"conv": "#1f77b4", "BatchNorm": "#ff7f0e", "spiking node": "#d62728",
               "max pool": "#7f7f7f", "readout": "#2ca02c"}


def modes_figure(tensors, measured=None):
    fig = go.Figure()
    labels = [m.label for m in tensors]
    parts = {m: by_role(df).MiB for m, df in tensors.items()}
    for role, color in ROLE_COLORS.items():
        fig.add_trace(go.Bar(name=role, x=labels, marker_color=color,
                             y=[parts[m][role] for m in tensors]))
    if measured is not None:
        fig.add_trace(go.Scatter(x=labels, y=measured / 2**20, mode="markers", name="measured total",
                                 marker=dict(symbol="diamond", size=12, color="black")))
    fig.update_layout(barmode="stack", yaxis_title="saved for backward (MiB)", height=440,
                      title=f"{ARCH}, T = {CFG['T']}, batch {CFG['batch']}, "
                            f"{CFG['image_size']}×{CFG['image_size']}: predicted, by purpose")
    return fig


modes_fig = modes_figure(tensors, compare.measured_bytes.to_numpy())
modes_fig.show()


# %%
def layers_figure(mode="fused", T=4, batch=8, image_size=32, fuse_bn=True):
    df = predict_saved_bytes(ARCH, mode, T=T, batch=batch, image_size=image_size, fuse_bn=fuse_bn)
    per = layer_table(df)
    per = per[per.layer != "total"]
    fig = go.Figure(go.Bar(x=per.layer, y=per["bytes"] / 2**20,
                           marker_color=[KIND_COLORS["conv"] if k == "conv" else
                                         KIND_COLORS["BatchNorm"] if ("BN" in k or "Batch" in k) else
                                         KIND_COLORS["spiking node"] if "LIF" in k else
                                         KIND_COLORS["max pool"] if k == "max pool" else
                                         KIND_COLORS["readout"] for k in per.kind],
                           hovertext=per.kind))
    fig.update_layout(title=f"{MemoryMode(mode).label}: {df.attrs['total_bytes'] / 2**20:.2f} MiB "
                            f"(T = {T}, batch {batch}, {image_size}², fuse_bn={fuse_bn})",
                      yaxis_title="MiB", xaxis_tickangle=-45, height=440)
    return fig


layers_ui = widgets.interactive(
    lambda **kw: layers_figure(**kw).show(),
    mode=widgets.Dropdown(options=[(m.label, m.value) for m in MODES], value="fused",
                          description="mode"),
    T=widgets.IntSlider(value=4, min=1, max=64, description="T"),
    batch=widgets.IntSlider(value=8, min=1, max=256, description="batch"),
    image_size=widgets.Dropdown(options=[8, 16, 32, 64], value=32, description="image"),
    fuse_bn=widgets.Checkbox(value=True, description="fuse BN into node"))
display(layers_ui)
layers_ui.f(**layers_ui.kwargs)   # the same figure as a plain output, saved in an executed
# notebook (a widget's own drawing is not)

# %% [markdown]
# ## 5. Growth with T
#
# The node's own state is constant in T, but the conv inputs (= node outputs) are per step, so
# the whole network's memory still grows linearly with T in every mode; the reversible modes grow
# with a slope about three times smaller than BPTT. Checked on the model for T up to 64.

# %%
Ts = [1, 2, 4, 8, 16, 32, 64]
growth = pd.DataFrame([{"T": t, "mode": m.value, "label": m.label,
                        "MiB": predict_total(models[m], T=t, batch=CFG["batch"],
                                             image_size=CFG["image_size"]) / 2**20}
                       for m in MODES for t in Ts])
wide = growth.pivot(index="T", columns="mode", values="MiB")
wide["bptt / fused"] = wide["bptt"] / wide["fused"]
wide

# %%
slope = {m: np.polyfit(wide.index, wide[m], 1)[0] for m in ("bptt", "checkpoint", "fused")}
assert slope["fused"] < slope["checkpoint"] < slope["bptt"]
assert 2.5 < slope["bptt"] / slope["fused"] < 4.0
assert wide["bptt / fused"].is_monotonic_increasing
membranes = [predict_saved_bytes(models[MemoryMode.REVERSIBLE_FUSED], T=t, batch=2, image_size=8)
             .query("tensor == 'final membranes V₁, V₂'")["bytes"].sum() for t in (1, 8, 64)]
assert len(set(membranes)) == 1            # the node's own state does not depend on T
print({m: f"{s:.3f} MiB per step" for m, s in slope.items()})


# %%
def growth_figure(df):
    fig = go.Figure([go.Scatter(x=g["T"], y=g.MiB, mode="lines+markers", name=label)
                     for label, g in df.groupby("label", sort=False)])
    fig.update_layout(title=f"{ARCH}: saved bytes vs T (batch {CFG['batch']}, "
                            f"{CFG['image_size']}²)", xaxis_title="T", yaxis_title="MiB",
                      xaxis_type="log", yaxis_type="log", yaxis_exponentformat="power",
                      height=420)
    return fig


growth_fig = growth_figure(growth)
growth_fig.show()

# %% [markdown]
# ## 6. Export

# %%
EXPORT_DIR = Path(os.environ.get("REVSNN_EXPORT_DIR", "../artifacts/notebooks"))
FIGURES = {"saved_by_mode": modes_fig, "saved_by_layer_fused": layers_figure(),
           "saved_vs_T": growth_fig}
TABLES = {"model_vs_measured": compare,
          "what_each_layer_stores": answer.set_axis([" ".join(c) for c in answer.columns],
                                                    axis=1).reset_index(),
          "saved_vs_T": growth}
archive = EXPORT_DIR / "04_stored_vs_reconstructed.zip"
archive.parent.mkdir(parents=True, exist_ok=True)
FORMATS = ("html",) if SMALL else ("html", "png", "svg")
archive.write_bytes(export_all(FIGURES, TABLES, formats=FORMATS))
print(archive, zipfile.ZipFile(archive).namelist())

# %% [markdown]
# ## Summary, checked
#
# - The per-layer model equals the measured saved bytes in every `MemoryMode`, to the byte.
# - The activations passed between layers (conv and pool inputs) are the same in every mode, to the
#   byte: the conv keeps its input (its weight gradient needs it); with reversible nodes that input
#   is the previous node's output Y, stored once (a node output that no later layer keeps is the one
#   extra cost). Everything saved comes from private state: BN fused
#   into the node keeps a 1-byte code instead of its input, and the node keeps 4/T bytes per
#   neuron-step instead of 12 (3·T times less).
# - Whole-network memory still grows with T (conv inputs), about 3× more slowly than BPTT.

# %%
assert (compare.predicted_bytes == compare.measured_bytes).all()
assert node_ratio == 3 * CFG["T"] and all(between[m] - extra[m] == between["bptt"] for m in between)
assert {f"figures/{slugify(n)}.html" for n in FIGURES} <= set(zipfile.ZipFile(archive).namelist())
print("notebook 04: all checks passed")
