"""Analytic activation peak of a time-major training step (NOTE [time-major memory budget]).

The prediction counts, from the unit shapes alone, every tensor the engine keeps alive at the
worst moment of the backward walk (the integer inversion of one channel range of one unit):

- the trace: per unit, ⌈N/8⌉ bytes of packed spikes and ⌈N/8⌉·⌈log₂τ⌉ of remainders per step;
- per neuron: V_T (int16), the walking membrane (int16), the membrane-gradient state (fp32);
- the spike gradients S̄ already sent to units not yet visited at this step;
- the unit's source spikes unpacked to floating point, what its shared part (a max pool) keeps
  (the pooled spikes and their int64 indices), and the gradients of its inputs accumulated over
  the channel ranges computed so far;
- the range itself, at the larger of two moments: the integer inversion (conv output, synapse
  output, x̂, S, R, V', H and the (E6.2) numerator) and the synapse's VJP (conv output, synapse
  output, X̄, BatchNorm's input gradient, a fresh gradient of the inputs and of the range's slice
  of the parameters);
- or, after the last range, the backward of the unit's shared part: a max pool's input gradient,
  at the unpooled size, beside the pooled gradients accumulated over the ranges (the largest
  moment once a layer needs many channel ranges, i.e. at large batches).

Parameters and their gradients are left out (they are the same in every strategy), as is the
forward pass, whose peak is lower (it holds one int32 membrane per neuron and no gradients).

>>> import torch
>>> from revsnn.temporal import temporal_model
>>> net = temporal_model("vgg11", T=4)
>>> predict_peak_bytes(net, torch.rand(2, 3, 32, 32)) > 0
True
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .bn import frozen_statistics
from .engine import TemporalNetwork, _plan, _sliced_parameter_bytes
from .synapse import ConvBN, Residual

__all__ = ["predict_peak_bytes", "predict_saved_rows", "unit_layout"]


def unit_layout(net: TemporalNetwork, x: torch.Tensor) -> list:
    """Per unit: ``(output shape, ranges, {source: (elements, pooled elements or None)}, sliced
    parameter bytes per output channel)`` for input ``x`` (one no-grad step)."""
    x, static, _ = net._prepare(x)
    step = x if static else x[0]
    rows, outs = [], {-1: step}
    with torch.no_grad(), frozen_statistics(net):
        for i, unit in enumerate(net.units):
            syn = unit.synapse
            sources = [outs[j] for j in unit.sources]
            z = syn(*sources)
            pools = _pooled_sources(syn)
            info = {}
            for k, (j, s) in enumerate(zip(unit.sources, sources)):
                pooled = None
                if pools[k] and s.dim() == 4 and min(s.shape[-2:]) >= 2:
                    pooled = s.numel() // 4
                info[j] = (s.numel(), pooled)
            chunk = net.chunk_bytes if syn.sliceable else None
            sliced = _sliced_parameter_bytes(syn, z.shape[1]) if syn.sliceable else 0
            plan = _plan(tuple(z.shape), step.element_size(), chunk, sliced,
                         net.grad_chunk_bytes if syn.sliceable else None)
            rows.append((tuple(z.shape), plan.ranges, info, sliced // z.shape[1]))
            outs[i] = torch.zeros_like(z)
    return rows


def _pooled_sources(syn) -> list:
    if isinstance(syn, Residual):
        short = syn.shortcut is not None and syn.shortcut.pool is not None
        return [syn.main.pool is not None, short]
    if isinstance(syn, ConvBN):
        return [syn.pool is not None]
    return [False] * 4


def predict_peak_bytes(net: TemporalNetwork, x: torch.Tensor, T: Optional[int] = None,
                       *, itemsize: Optional[int] = None) -> int:
    """Activation peak (bytes) of one training step of ``net`` on ``x``, parameters and their
    gradients excluded; ``T`` defaults to the network's (or the sequence length of ``x``)."""
    rows = unit_layout(net, x)
    if T is None:
        T = x.shape[0] if x.dim() == 5 else net.T
    f = itemsize or x.element_size()
    units = list(net.units)
    neurons = [math.prod(shape) for shape, *_ in rows]
    rem_bits = [u.node.params().rem_bits for u in units]
    trace = sum(T * ((n + 7) // 8) * (1 + r) for n, r in zip(neurons, rem_bits))
    per_neuron = sum(n * (2 + 2 + f) for n in neurons)            # V_T, walking V, V̄
    consumers = {}
    for k, u in enumerate(units):
        for j in u.sources:
            consumers.setdefault(j, []).append(k)
    worst = 0
    for i, (shape, ranges, info, per_channel) in enumerate(rows):
        # S̄ of units not yet visited that a visited consumer (or the readout) already produced
        pending = {i} | {j for j in range(i) if any(k > i for k in consumers.get(j, []))}
        base = sum(f * neurons[j] for j in pending)
        grads_in = 0                                              # S̄ of the prepared inputs
        for j, (n_src, pooled) in info.items():
            if j == -1:
                continue                                          # the input: by reference
            base += f * n_src + (pooled * (f + 8) if pooled is not None else 0)
            grads_in += f * (pooled if pooled is not None else n_src)
        n_max = max(r.n1 - r.n0 for r in ranges)
        accumulated = grads_in if len(ranges) > 1 else 0          # from the earlier ranges
        # the inversion (E9.6): conv out, z, x̂, S, R, V', H and the (E6.2) numerator
        inversion = base + accumulated + n_max * (f + f + 4 + 1 + 1 + 4 + 4 + 4)
        # the synapse VJP (E9.8): conv out, z, X̄, BN's input gradient, and the range's S̄ inputs
        c_max = max(r.c1 - r.c0 for r in ranges)
        vjp = base + accumulated + grads_in + n_max * 4 * f + c_max * per_channel
        # the shared part's backward after the last range: a max pool's gradient is created at
        # the unpooled size next to the pooled gradients accumulated over the ranges
        unpooled = sum(f * n_src for j, (n_src, pooled) in info.items()
                       if j != -1 and pooled is not None)
        shared = base + grads_in + unpooled
        worst = max(worst, inversion, vjp, shared)
    return int(trace + per_neuron + worst)


def predict_saved_rows(net: TemporalNetwork, x: torch.Tensor, T: Optional[int] = None) -> list:
    """What the time-major Function saves, one row per tensor (the columns of
    :func:`revsnn.memory_model.predict_saved_bytes`): per unit the packed spikes and remainders
    ``[T, bytes]`` and V_T (int16, the forward narrows it when every value fits, else int32:
    predicted as int16). The input is kept by reference (shared)."""
    rows_in = unit_layout(net, x)
    if T is None:
        T = x.shape[0] if x.dim() in (3, 5) else net.T
    out = []
    for i, ((shape, ranges, _, _), unit) in enumerate(zip(rows_in, net.units)):
        packed = sum((r.n1 - r.n0 + 7) // 8 for r in ranges)
        rem = unit.node.params().rem_bits
        n = math.prod(shape)
        for what, elements, itemsize in (("packed spikes S", T * packed, 1),
                                         ("packed remainders R", T * packed * rem, 1),
                                         ("V_T", n, 2)):
            out.append(dict(layer=f"units.{i}", kind="temporal", tensor=what,
                            shape="×".join(map(str, shape[1:])), elements=int(elements),
                            itemsize=itemsize, bytes=int(elements) * itemsize, shared=False))
    return out
