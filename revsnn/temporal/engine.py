"""The time-major engine: one autograd Function over every layer and every step of a spiking network.

NOTE [time-major backward]
==========================
A layer-major backward (every other strategy) runs layer by layer over all T steps at once, so
each layer's gradient, recomputed synapse and BatchNorm intermediates are ``[T, B, ...]``
transients and the peak grows with T. Here the backward walks **time** in the outer loop.

The network is a chain (or DAG) of units u = 1 … L. Unit u has a synapse f_u (e.g. [max pool →]
conv → per-timestep BN, or conv-BN of its main path plus a shortcut) applied to the spikes of its
source units at the same step, and the exact binary LIF of :mod:`revsnn.binary` (E5.*). A readout
g maps the last unit's spikes to per-step logits. Forward, for t = 0 … T−1 and u = 1 … L:

    (E9.1)  X_u[t] = f_u( S_src(u)[t] )                      S_0[t] = the input at step t
    (E9.2)  (S_u[t], R_u[t], V_u[t+1]) = step_E5( x̂_u[t], V_u[t] )
    (E9.3)  O[t] = g( S_L[t] );       logits = (1/T)·Σ_t O[t]

Only S_u[t] (1 bit), R_u[t] (⌈log₂τ⌉ bits) and, per neuron, V_u[T] are kept. Backward, with
Ō[t] from the loss and a membrane-gradient state V̄_u (zero at t = T), for t = T−1 … 0:

    (E9.4)  S̄_L[t] = g'ᵀ Ō[t]                                   readout recomputed from S_L[t]
    for u = L … 1:
    (E9.5)  X_u[t] = f_u( S_src(u)[t] )                       recomputed from stored bits
    (E9.6)  (V_u[t], H_u[t]) = step_E6( S_u[t], R_u[t], V_u[t+1], x̂_u[t] )   exact inverse
    (E9.7)  H̄ = S̄_u[t]·d + V̄_u·(1 − θd),  d = σ'(H_u[t]δ − θ);   X̄_u[t] = H̄/τ;   V̄_u ← H̄·(1 − 1/τ)
    (E9.8)  S̄_src(u)[t] += f_u'ᵀ X̄_u[t];   ∇θ_u += (∂f_u/∂θ_u)ᵀ X̄_u[t]

(E9.7) is (E6.4) for one step. Units are visited in reverse topological order, so when unit u is
reached every consumer of S_u[t] has added its share to S̄_u[t]. (E9.5) is exact only if the
recomputed synapse gives the forward's bits: the forward runs f_u on the same one-step shapes and
kernels ``[B, ...]`` as the recompute, BatchNorm uses per-step statistics (NOTE [why a time-major
backward needs per-timestep BatchNorm] in :mod:`revsnn.temporal.bn`), random layers get their
per-(step, unit) generator state replayed, and the drift guard checks every step (the rebuilt
charge must reproduce the stored spike) and the end of the walk (V_u[0] = 0 for every unit).

NOTE [time-major memory budget]
===============================
With N_u neurons per step in unit u and N = Σ N_u, what stays alive during the step:

- the input (by reference: the network input is kept by the caller anyway);
- (1 + ⌈log₂τ⌉)·T·N bits: the packed spikes and remainders (2 bits per neuron-step for τ = 2);
- per neuron, independent of T: V_u[T] (int16 when it fits), the walking membrane V_u (int32) and
  the membrane-gradient state V̄_u (fp32): at most 10 bytes per neuron;
- one step of one unit's transients: the unpacked source spikes, the recomputed synapse and its
  graph, the integer inversion and the VJP (a few ``[B, N_u/B]`` tensors), and the readout's.

Nothing is ``[T, B, ...]`` except the packed bits, so the peak grows with T only by 2 bits per
neuron-step. :func:`predict_peak_bytes` in :mod:`revsnn.temporal.memory` counts these terms.

NOTE [time-major engine under torch.compile]
============================================
To ``torch.compile`` the engine is one opaque call: :func:`_time_major` (the no-grad forward or
:class:`_TimeMajorFunction`) is wrapped in ``torch.compiler.disable``, so a compiled model breaks
its graph exactly once, there, with a reason that points here, and what surrounds it (the rate
encoder, the loss and the loss's backward) compiles. The engine itself runs eagerly, forward and
backward, so its logits and gradients are those of the uncompiled model.

Why it is not traced:

- Its forward is a Python loop over T × units × channel ranges, and its backward walks the same
  loop again (NOTE [time-major backward]). Traced, the graph would unroll T: its size and its
  compile time grow with T, and every new T recompiles. The engine exists so that memory does not
  grow with T; a graph that does is the wrong shape for it.
- Its bookkeeping is host-side by design: the channel-range plan comes from the first step's
  shapes, the walking membranes stay int16 until a host read of their largest value says they
  must widen (``int(v_prev.abs().max())``), ``V_T`` is narrowed the same way (``_narrow``), and the
  drift guard reads the flip count. Each is a data-dependent branch, i.e. a graph break.
- Traced without the wrapper, dynamo stopped at the forward's ``del outs`` (a variable a
  comprehension closes over, bytecode ``DELETE_DEREF``, not supported) inside the BatchNorm
  statistics context, which cannot be resumed after a break; it then ran the Function's frame
  eagerly and traced every function that frame called as a frame of its own, each breaking
  again: 22 breaks for the two-unit ConvNet at T = 2, reported without reasons.
- ``torch._dynamo.allow_in_graph`` does not apply: AOTAutograd still traces the Function's body
  with fake tensors and meets the same host reads. A ``torch.library`` custom op would be opaque
  to both, but its arguments can only be tensors and scalars, not the network.

Not tried: compiling the per-step unit bodies (synapse + E5 step, and their inverse and VJP in
the backward) inside the eager loop. Their shapes are fixed per (unit, channel range), so each
would compile once whatever T is; the backward's ``autograd.grad`` of the recomputed synapse
would then run a compiled backward per step. Whether that pays on a CPU is unmeasured; as it
stands a compiled ``temporal`` model runs at eager speed (``revsnn bench network --compile``).
``tests/test_compile.py`` checks the single break and that a compiled training step equals eager.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import torch
from torch import nn

from ..functional.binary import (BinaryLIFParams, _narrow, _pack_rows, _to_grid, _unpack_bits,
                                 _unpack_remainder, binary_step, binary_step_inverse,
                                 reference_step)
from ..models.encoders import make_encoder
from ..nodes.base import ON_DRIFT, check_choice, check_sequence
from ..nodes.binary import BinaryReversibleLIF, _check_range, _drift
from ..nodes.recompute import capture_rng, replay_rng, uses_rng
from .bn import collect_statistics, frozen_statistics
from .synapse import Synapse, as_synapse, narrow_inputs

__all__ = ["TemporalUnit", "TemporalNetwork", "TEMPORAL_BACKWARDS", "DEFAULT_CHUNK_BYTES"]

TEMPORAL_BACKWARDS = ("temporal", "autograd")
"""``"temporal"``: the time-major Function (NOTE [time-major backward]); ``"autograd"``: the same
time-major forward under plain autograd with the floating-point (E5.*) node, the BPTT reference."""

DEFAULT_CHUNK_BYTES = 1 << 20
"""Largest synapse output computed at once, in bytes (NOTE [channel ranges])."""


class TemporalUnit(nn.Module):
    """A synapse applied to the spikes of ``sources`` at one step, then an exact binary LIF.

    ``sources`` are indices of earlier units of the network; ``-1`` is the network input. The
    synapse takes one ``[B, ...]`` tensor per source and returns the node input ``[B, C, ...]``;
    a :class:`~revsnn.temporal.synapse.Synapse` is computed a few channels at a time, any other
    module whole (:class:`~revsnn.temporal.synapse.ModuleSynapse`).
    """

    def __init__(self, synapse: nn.Module, sources: Sequence[int] = (-1,),
                 node: Optional[BinaryReversibleLIF] = None):
        super().__init__()
        self.synapse: Synapse = as_synapse(synapse)
        self.node = node if node is not None else BinaryReversibleLIF()
        if not isinstance(self.node, BinaryReversibleLIF):
            raise TypeError("TemporalUnit: node must be a BinaryReversibleLIF")
        self.sources = tuple(int(s) for s in sources)
        if not self.sources:
            raise ValueError("TemporalUnit: a unit needs at least one source")

    def extra_repr(self) -> str:
        return f"sources={self.sources}"


def _vjp_(h: torch.Tensor, gs: torch.Tensor, gv: torch.Tensor, p: BinaryLIFParams) -> torch.Tensor:
    """(E9.7) in place: X̄ in ``gs``'s storage; the state V̄ (``gv``) updated in place."""
    d = p.surrogate.derivative_(h.to(gs.dtype).mul_(p.grid).sub_(p.theta_float))  # σ'(Hδ − θ)
    hbar = gs.sub_(gv, alpha=p.theta_float).mul_(d).add_(gv)          # H̄ = V̄' + d·(S̄ − θV̄')
    gv.copy_(hbar).mul_(1.0 - 1.0 / p.tau)                            # V̄ = H̄·(1 − 1/τ)
    return hbar.mul_(1.0 / p.tau)                                     # X̄ = H̄/τ


class _Range(NamedTuple):
    """Output channels ``c0 … c1 − 1`` of a unit; its neurons ``n0 … n1 − 1`` (channel-range-major
    order) and its packed bytes ``b0 … b1 − 1`` in the unit's trace."""

    c0: int
    c1: int
    n0: int
    n1: int
    b0: int
    b1: int


class _UnitPlan(NamedTuple):
    shape: tuple
    ranges: tuple
    neurons: int
    packed: int


def _plan(shape: tuple, itemsize: int, chunk_bytes: Optional[int],
          parameter_bytes: int = 0, grad_chunk_bytes: Optional[int] = None) -> _UnitPlan:
    """Split a unit's output channels into ranges whose output takes at most ``chunk_bytes`` and
    (when ``grad_chunk_bytes`` is set) whose slice of the ``parameter_bytes`` of sliced
    parameters at most ``grad_chunk_bytes`` (NOTE [channel ranges])."""
    channels, numel = shape[1], math.prod(shape)
    per_channel = numel // channels
    k = 1
    if chunk_bytes:
        k = -(-numel * itemsize // chunk_bytes)
    if grad_chunk_bytes:
        k = max(k, -(-parameter_bytes // grad_chunk_bytes))
    k = max(1, min(channels, k))
    bounds = [round(j * channels / k) for j in range(k + 1)]
    ranges, n0, b0 = [], 0, 0
    for c0, c1 in zip(bounds[:-1], bounds[1:]):
        n = (c1 - c0) * per_channel
        ranges.append(_Range(c0, c1, n0, n0 + n, b0, b0 + (n + 7) // 8))
        n0, b0 = n0 + n, b0 + (n + 7) // 8
    return _UnitPlan(tuple(shape), tuple(ranges), n0, b0)


def _sliced_parameter_bytes(synapse: Synapse, channels: int) -> int:
    """Bytes of the parameters a synapse slices by output channel (whose gradients arrive per
    range; a range that covers all channels gets a full-size gradient per step)."""
    pairs = synapse.parameter_slices(0, channels)
    return sum(q.numel() * q.element_size() for q, i in pairs if i is not None and q.requires_grad)


def _slices(synapse: Synapse, c0: int, c1: int, leaves: bool) -> tuple:
    """The range's parameter slices: the slices themselves, or detached leaves standing in for
    them (backward: their gradient is then a slice-sized tensor)."""
    pairs = synapse.parameter_slices(c0, c1)
    tensors = [q if i is None else q[i] for q, i in pairs]
    if leaves:
        tensors = [t.detach().requires_grad_(q.requires_grad) for t, (q, _) in zip(tensors, pairs)]
    return pairs, tensors


class _Trace:
    """What the forward keeps: per unit, packed S ``[T, bytes]``, packed R ``[T, r, bytes]`` and
    V_T; per (step, unit) that draws random numbers, the generator state before its synapse."""

    def __init__(self):
        self.plans: list = []
        self.spikes: list = []
        self.remainders: list = []
        self.v_final: list = []
        self.rng: list = []
        self.rng_index: dict = {}


def _step_input(x: torch.Tensor, static: bool, t: int) -> torch.Tensor:
    return x if static else x[t]


def _last_uses(units: Sequence[TemporalUnit]) -> dict:
    last = {}
    for i, u in enumerate(units):
        for j in u.sources:
            last[j] = i
    last[len(units) - 1] = len(units)                          # the readout
    return last


def _forward_pass(net: "TemporalNetwork", x: torch.Tensor, static: bool, T: int,
                  store: bool, mean: bool = False) -> tuple:
    """(E9.1–E9.3) without autograd: per-step logits ``[T, B, K]`` (their mean over time ``[B, K]``
    with ``mean``: no per-step tensor is kept) and (when ``store``) the trace."""
    units, trace = list(net.units), _Trace()
    params = [u.node.params() for u in units]
    last_use = _last_uses(units)
    rng_users = [uses_rng(u.synapse) for u in units] + [uses_rng(net.readout)]
    v: list = [None] * len(units)
    logits = []
    for t in range(T):
        outs = {-1: _step_input(x, static, t)}
        for i, unit in enumerate(units):
            p, syn = params[i], unit.synapse
            if store and rng_users[i]:
                trace.rng_index[(t, i)] = len(trace.rng)
                trace.rng.append(capture_rng(x.device)[0])
            prepared = syn.prepare(*[outs[j] for j in unit.sources])
            first = None
            if t == 0:
                shape = syn.out_shape(prepared)
                if shape is None:                              # known only by running it
                    first = syn.compute(narrow_inputs(syn, prepared, 0, None), 0, None,
                                        _slices(syn, 0, None, False)[1])
                    shape = tuple(first.shape)
                plan = _plan(shape, x.element_size(), net.chunk_bytes if syn.sliceable else None,
                             _sliced_parameter_bytes(syn, shape[1]) if syn.sliceable else 0,
                             net.grad_chunk_bytes if syn.sliceable else None)
                trace.plans.append(plan)
                v[i] = torch.zeros(plan.neurons, dtype=torch.int32, device=x.device)
                if store:
                    trace.spikes.append(x.new_empty(T, plan.packed, dtype=torch.uint8))
                    trace.remainders.append(x.new_empty(T, p.rem_bits, plan.packed,
                                                        dtype=torch.uint8))
            plan = trace.plans[i]
            out = x.new_empty(plan.shape)
            for rg in plan.ranges:
                z = first if first is not None else syn.compute(
                    narrow_inputs(syn, prepared, rg.c0, rg.c1), rg.c0, rg.c1,
                    _slices(syn, rg.c0, rg.c1, False)[1])                        # (E9.1)
                _check_range(z, p, f"temporal unit {i}")
                s, r, _, v_new = binary_step(_to_grid(z.reshape(-1), p), v[i][rg.n0:rg.n1], p)
                v[i][rg.n0:rg.n1] = v_new                                        # (E9.2) = (E5.*)
                if store:
                    trace.spikes[i][t, rg.b0:rg.b1] = _pack_rows(s.unsqueeze(0))[0]
                    for j in range(p.rem_bits):
                        trace.remainders[i][t, j, rg.b0:rg.b1] = \
                            _pack_rows(((r >> j) & 1).unsqueeze(0))[0]
                out.narrow(1, rg.c0, rg.c1 - rg.c0).copy_(s.view(z.shape))
                del z, s, r, v_new
            outs[i] = out
            del prepared, out, first
            for j in set(unit.sources):
                if j != -1 and last_use.get(j) == i:
                    del outs[j]
        if store and rng_users[-1]:
            trace.rng_index[(t, len(units))] = len(trace.rng)
            trace.rng.append(capture_rng(x.device)[0])
        o = net.readout(outs.pop(len(units) - 1))                             # (E9.3)
        if not mean:
            logits.append(o)
        else:
            logits = o if t == 0 else logits.add_(o)
        del outs
    if store:
        trace.v_final = [_narrow(vi) for vi in v]
    return (logits.div_(T) if mean else torch.stack(logits)), trace


def _unpack_unit(packed: torch.Tensor, plan: _UnitPlan, dtype) -> torch.Tensor:
    """A unit's spikes at one step, ``plan.shape`` in ``dtype``, from its packed row."""
    out = torch.empty(plan.shape, dtype=dtype, device=packed.device)
    for rg in plan.ranges:
        bits = _unpack_bits(packed[rg.b0:rg.b1].unsqueeze(0), rg.n1 - rg.n0)[0]
        block = out.narrow(1, rg.c0, rg.c1 - rg.c0)
        block.copy_(bits.view(block.shape))
    return out


class _Walk:
    """The backward's state: walking membranes, membrane-gradient states, accumulated gradients."""

    def __init__(self, ctx, saved):
        n = len(ctx.plans)
        self.x, self.plans = ctx.x_ref, ctx.plans
        self.spikes, self.rems = saved[:n], saved[n:2 * n]
        # walking membranes: int16 while every value fits (V_T decides), promoted when one does not
        self.v = [t.clone() for t in saved[2 * n:3 * n]]
        self.rng = saved[3 * n:]
        self.gv: list = [None] * n
        self.param_grads: dict = {}
        self.flips = torch.zeros((), dtype=torch.long, device=self.x.device)
        self.bad = 0

    def add_param(self, q: torch.Tensor, index, g: Optional[torch.Tensor]) -> None:
        if g is None:
            return
        key = id(q)
        if index is None:
            self.param_grads[key] = g if key not in self.param_grads else self.param_grads[key].add_(g)
            return
        if key not in self.param_grads:
            if g.shape == q.shape:                            # the range is the whole tensor
                self.param_grads[key] = g
                return
            self.param_grads[key] = torch.zeros_like(q)
        self.param_grads[key][index].add_(g)

    def spikes_of(self, j: int, t: int) -> torch.Tensor:
        return _unpack_unit(self.spikes[j][t], self.plans[j], self.x.dtype)


def _unit_backward(walk: _Walk, i: int, unit: TemporalUnit, p: BinaryLIFParams,
                   leaves: list, g_spikes: Optional[torch.Tensor]) -> list:
    """(E9.5–E9.8) for unit ``i`` at one step: walks its membranes back one step and returns the
    gradients of its source leaves (``None`` where not needed)."""
    syn, plan, t = unit.synapse, walk.plans[i], walk.t
    prepared = syn.prepare(*leaves)
    g_prepared: list = [None] * len(prepared)
    if walk.gv[i] is None:
        walk.gv[i] = torch.zeros(plan.neurons, dtype=walk.x.dtype, device=walk.x.device)
    for rg in plan.ranges:
        # detached stand-ins: the gradient of each (narrowed) input arrives per range, slice-sized
        stand = [q.detach().requires_grad_(q.requires_grad)
                 for q in narrow_inputs(syn, prepared, rg.c0, rg.c1)]
        narrowed = [s is not None for s in syn.input_channels(rg.c0, rg.c1)]
        narrowed += [False] * (len(stand) - len(narrowed))
        pairs, tensors = _slices(syn, rg.c0, rg.c1, True)
        z = syn.compute(stand, rg.c0, rg.c1, tensors)                             # (E9.5)
        n = rg.n1 - rg.n0
        s = _unpack_bits(walk.spikes[i][t, rg.b0:rg.b1].unsqueeze(0), n)[0]
        r = _unpack_remainder(walk.rems[i][t, :, rg.b0:rg.b1], n)
        v_prev, h, bad = binary_step_inverse(s, r, walk.v[i][rg.n0:rg.n1].to(torch.int32),
                                             _to_grid(z.detach().reshape(-1), p), p)  # (E9.6)
        if walk.v[i].dtype != torch.int32 and int(v_prev.abs().max()) >= 2 ** 15:
            walk.v[i] = walk.v[i].to(torch.int32)
        walk.v[i][rg.n0:rg.n1] = v_prev
        walk.bad += bad
        walk.flips += (h >= p.theta).ne_(s.bool()).sum()
        del s, r, v_prev
        if g_spikes is None:
            gs = torch.zeros(n, dtype=z.dtype, device=z.device)
        else:
            gs = g_spikes.narrow(1, rg.c0, rg.c1 - rg.c0).reshape(-1)
        gz = _vjp_(h, gs, walk.gv[i][rg.n0:rg.n1], p).view(z.shape)                # (E9.7)
        del h, gs
        wrt = [q for q in stand if q.requires_grad] + [q for q in tensors if q.requires_grad]
        grads = list(torch.autograd.grad(z, wrt, gz, allow_unused=True))           # (E9.8)
        del z, gz
        for k, q in enumerate(stand):
            if not q.requires_grad:
                continue
            g = grads.pop(0)
            if g is None:
                continue
            if narrowed[k]:
                if g_prepared[k] is None:
                    g_prepared[k] = torch.zeros_like(prepared[k])
                g_prepared[k].narrow(1, rg.c0, rg.c1 - rg.c0).add_(g)
            else:
                g_prepared[k] = g if g_prepared[k] is None else g_prepared[k].add_(g)
        for (q, index), tq in zip(pairs, tensors):
            if tq.requires_grad:
                walk.add_param(q, index, grads.pop(0))
    # through the shared part (the pool) to the source leaves
    wrt = [leaf for leaf in leaves if leaf.requires_grad]
    outs = [(q, g) for q, g in zip(prepared, g_prepared) if g is not None and q.requires_grad]
    if not wrt or not outs:
        return [None] * len(leaves)
    if all(any(q is leaf for leaf in leaves) for q, _ in outs):                  # identity
        found = {id(q): g for q, g in outs}
        return [found.get(id(leaf)) for leaf in leaves]
    grads = list(torch.autograd.grad([q for q, _ in outs], wrt, [g for _, g in outs],
                                     allow_unused=True))
    return [grads.pop(0) if leaf.requires_grad else None for leaf in leaves]


class _TimeMajorFunction(torch.autograd.Function):
    """One autograd node over every unit and every step; saves only the trace (NOTE [time-major
    memory budget]) and the input by reference."""

    @staticmethod
    def forward(x, net, static, T, mean, *params):
        with collect_statistics(net):
            logits, trace = _forward_pass(net, x.detach(), static, T, store=True, mean=mean)
        meta = (tuple(trace.plans), trace.rng_index)
        return (logits, meta, *trace.spikes, *trace.remainders, *trace.v_final, *trace.rng)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, net, static, T, mean, *params = inputs
        logits, (ctx.plans, ctx.rng_index), *saved = output
        ctx.mark_non_differentiable(*saved)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, *saved)
        ctx.net, ctx.static, ctx.T, ctx.mean, ctx.params = net, static, T, mean, params

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_logits, _g_meta, *_unused):
        x, *saved = ctx.saved_tensors
        ctx.x_ref = x
        net, static = ctx.net, ctx.static
        units = list(net.units)
        n = len(units)
        params = [u.node.params() for u in units]
        walk = _Walk(ctx, saved)
        want_x = ctx.needs_input_grad[0]
        gx = torch.zeros_like(x) if want_x else None
        readout_params = [q for q in net.readout.parameters() if q.requires_grad]
        if g_logits is not None and ctx.mean:
            g_logits = g_logits.div(ctx.T).expand(ctx.T, *g_logits.shape)      # Ō[t] = ḡ/T

        def rng_of(t: int, i: int):
            k = ctx.rng_index.get((t, i))
            return None if k is None else walk.rng[k]

        with frozen_statistics(net), torch.enable_grad():
            for t in range(ctx.T - 1, -1, -1):
                walk.t = t
                g_spikes: list = [None] * n
                if g_logits is not None:                                         # (E9.4)
                    leaf = walk.spikes_of(n - 1, t).requires_grad_()
                    with replay_rng(rng_of(t, n), None, x.device):
                        out = net.readout(leaf)
                    grads = torch.autograd.grad(out, [leaf] + readout_params, g_logits[t],
                                                allow_unused=True)
                    g_spikes[n - 1] = grads[0]
                    for q, g in zip(readout_params, grads[1:]):
                        walk.add_param(q, None, g)
                    del out, leaf, grads
                for i in range(n - 1, -1, -1):
                    unit = units[i]
                    leaves = [_step_input(x, static, t).detach().requires_grad_(want_x) if j == -1
                              else walk.spikes_of(j, t).requires_grad_() for j in unit.sources]
                    with replay_rng(rng_of(t, i), None, x.device):
                        grads = _unit_backward(walk, i, unit, params[i], leaves, g_spikes[i])
                    g_spikes[i] = None
                    for j, g in zip(unit.sources, grads):
                        if g is None:
                            continue
                        if j == -1:
                            (gx if static else gx[t]).add_(g)
                        elif g_spikes[j] is not None:
                            g_spikes[j].add_(g)
                        else:
                            # S̄ is overwritten in place by (E9.7) when unit j is walked, so it
                            # must not alias another unit's: a sum of sources (SEW's ADD) hands
                            # every summand the very same gradient tensor
                            shared = any(h is g for h in g_spikes)
                            g_spikes[j] = g.clone() if shared else g
                    del leaves, grads
        v0_err = max((int(vi.abs().max()) for vi in walk.v if vi.numel()), default=0)
        _drift(v0_err, int(walk.flips), walk.bad, net.on_drift)
        return (gx, None, None, None, None, *[walk.param_grads.get(id(q)) for q in ctx.params])


@torch.compiler.disable(reason="the time-major engine runs eagerly: NOTE [time-major engine "
                                "under torch.compile] in revsnn.temporal.engine")
def _time_major(net: "TemporalNetwork", x: torch.Tensor, static: bool, T: int, mean: bool,
                grad: bool, params: list) -> torch.Tensor:
    """The engine's one opaque call under ``torch.compile`` (NOTE [time-major engine under
    torch.compile]): the no-grad forward, or the time-major Function."""
    if not grad:
        with torch.no_grad(), collect_statistics(net):
            return _forward_pass(net, x, static, T, store=False, mean=mean)[0]
    return _TimeMajorFunction.apply(x, net, static, T, mean, *params)[0]


class TemporalNetwork(nn.Module):
    """A spiking classifier whose units run time-major (NOTE [time-major backward]).

    ``forward`` takes a static batch ``[B, C, H, W]`` (presented at every one of ``T`` steps, not
    copied, with ``encoder="direct"``; Bernoulli-coded with ``"rate"``) or a time-first sequence
    ``[T, B, C, H, W]``, and returns the logits averaged over time, ``[B, K]``.

    Args:
        units: :class:`TemporalUnit` s in topological order (sources point backwards).
        readout: one-step module from the last unit's spikes to logits ``[B, K]``.
        backward: ``"temporal"`` (default) or ``"autograd"`` (the reference, stores everything).
        on_drift: what the drift guard does: ``"raise"`` (default), ``"warn"`` or ``"ignore"``.
        chunk_bytes: largest synapse output computed at once (NOTE [channel ranges]); ``None``
            computes every unit whole.
        grad_chunk_bytes: also split a unit so that each range's share of its weights (whose
            gradient is a per-step transient) stays below this; ``None`` (default) does not: on
            a CPU the extra ranges cost more time than the transient is worth at typical sizes.
    """

    def __init__(self, units: Sequence[TemporalUnit], readout: nn.Module, *, T: int = 4,
                 encoder: str = "direct", seed: int = 0, backward: str = "temporal",
                 on_drift: str = "raise", chunk_bytes: Optional[int] = DEFAULT_CHUNK_BYTES,
                 grad_chunk_bytes: Optional[int] = None, config: Optional[dict] = None):
        super().__init__()
        check_choice("TemporalNetwork", "backward", backward, TEMPORAL_BACKWARDS)
        check_choice("TemporalNetwork", "on_drift", on_drift, ON_DRIFT)
        units = list(units)
        if not units:
            raise ValueError("TemporalNetwork: needs at least one unit")
        for i, u in enumerate(units):
            if not isinstance(u, TemporalUnit):
                raise TypeError(f"TemporalNetwork: unit {i} is a {type(u).__name__}, not a "
                                f"TemporalUnit")
            if any(not -1 <= j < i for j in u.sources):
                raise ValueError(f"TemporalNetwork: unit {i} has sources {u.sources}; a source "
                                 f"must be -1 (the input) or an earlier unit")
        self.units = nn.ModuleList(units)
        self.readout = readout
        self.encoder = make_encoder(encoder, T, seed)
        self.encoding = encoder
        self.backward_algorithm = backward
        self.on_drift = on_drift
        self.chunk_bytes = chunk_bytes
        self.grad_chunk_bytes = grad_chunk_bytes
        self.config = dict(config or {})

    @property
    def T(self) -> int:
        return self.encoder.T

    def nodes(self) -> list:
        """The spiking nodes, in forward order."""
        return [u.node for u in self.units]

    def _prepare(self, x: torch.Tensor) -> tuple:
        """``(input, static, T)``: a static batch is ``[B, F]`` or ``[B, C, H, W]`` (presented at
        every step), a sequence ``[T, B, F]`` or ``[T, B, C, H, W]``."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"TemporalNetwork: expected a static batch [B, F] / [B, C, H, W] or "
                             f"a sequence [T, B, F] / [T, B, C, H, W], got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        if x.dim() in (3, 5):
            check_sequence(x, node="TemporalNetwork")
            return x, False, x.shape[0]
        if self.encoding == "direct":
            return x, True, self.T
        seq = self.encoder(x)
        return seq, False, seq.shape[0]

    def _run(self, x: torch.Tensor, mean: bool) -> torch.Tensor:
        x, static, T = self._prepare(x)
        params = [q for q in self.parameters() if q.requires_grad]
        grad = torch.is_grad_enabled() and (x.requires_grad or bool(params))
        if self.backward_algorithm == "autograd" and grad:
            out = self._reference(x, static, T)
            return out.mean(0) if mean else out
        return _time_major(self, x, static, T, mean, grad, params)

    def step_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step logits ``[T, B, K]`` (E9.3) before the mean over time (for per-step losses)."""
        return self._run(x, mean=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits averaged over time, ``[B, K]`` (E9.3); no per-step logits are kept."""
        return self._run(x, mean=True)

    def _reference(self, x: torch.Tensor, static: bool, T: int) -> torch.Tensor:
        """(E9.1–E9.3) under autograd with the floating-point node: the BPTT reference."""
        units = list(self.units)
        params = [u.node.params() for u in units]
        v: list = [None] * len(units)
        logits = []
        with collect_statistics(self):
            for t in range(T):
                outs = {-1: _step_input(x, static, t)}
                for i, unit in enumerate(units):
                    z = unit.synapse(*[outs[j] for j in unit.sources])
                    _check_range(z, params[i], f"temporal unit {i}")
                    if v[i] is None:
                        v[i] = torch.zeros_like(z)
                    outs[i], v[i] = reference_step(z, v[i], params[i])
                logits.append(self.readout(outs[len(units) - 1]))
        return torch.stack(logits)

    def neurons_per_step(self, x: torch.Tensor) -> list:
        """Spiking neurons per step of each unit for input ``x`` (B included): a no-grad pass."""
        x, static, _ = self._prepare(x)
        sizes = []
        with torch.no_grad(), frozen_statistics(self):
            outs = {-1: _step_input(x, static, 0)}
            for i, unit in enumerate(self.units):
                z = unit.synapse(*[outs[j] for j in unit.sources])
                outs[i] = torch.zeros_like(z)
                sizes.append(z.numel())
        return sizes

    def extra_repr(self) -> str:
        return f"T={self.T}, encoder={self.encoding!r}, backward={self.backward_algorithm!r}"
