"""``revsnn bench beyond``: the leanest reversible networks vs SpikingJelly's, side by side.

Presets of :mod:`revsnn.strategy` on one zoo architecture, measured in one
:func:`revsnn.analysis.measure.measure_cases` call (times round-robin, so ratios hold on a noisy machine):

- ``binary`` (``--arch vgg11`` or vgg13/vgg16): the VGG of recomputing binary units, the exact
  binary-spike reversible LIF walking back from V_T (2 bits per neuron-step + V_T stored, the
  synapse recomputed in backward); ``binary_replay``: the same units with ``reconstruct="replay"``
  (1 bit per neuron-step: the packed spikes, nothing per neuron);
- ``blocks`` (``--arch revresnet_s|m|l``): the reversible-block ResNet (stacks that store only
  their outputs);
- ``spikingjelly``: the same architecture with SpikingJelly's ``LIFNode`` under plain BPTT;
- ``spikingjelly_memopt``: that SpikingJelly network after SpikingJelly's ``memopt.optimize_memory``
  (level 1: every conv-BN-node block checkpointed, binary inputs compressed to 1 bit). Its
  checkpoints keep their inputs outside autograd's saved tensors, so compare it on ``act`` (the
  allocator-level bytes alive after the forward), not ``saved``;
- ``fused`` (``--with-fused``, vgg* only): the zoo VGG with ReversibleLIF (fused backward, BN fused).

Inputs are a ``[T, B, 3, S, S]`` sequence made outside the network (the image at every step), so no
configuration pays for encoding. Ratios printed: saved and act reductions (SpikingJelly / ours,
memopt / ours), step-time ratio (ours / SpikingJelly, ours / memopt), and for the binary units the
measured bits stored per neuron-step.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from .report import (echo, failure_text, fmt_ms, fmt_ratio, format_table, human_bytes, is_ok,
                     safe_ratio, write_rows)

__all__ = ["run_beyond", "beyond_cases", "default_cases", "format_beyond",
           "binary_storage", "depth_sweep", "format_depth_sweep", "ARCHS"]

ARCHS = ("vgg11", "vgg13", "vgg16", "revresnet_s", "revresnet_m", "revresnet_l")
OURS = ("binary", "binary_replay", "blocks")
"""The presets this benchmark puts against SpikingJelly's."""
_THEIRS = ("spikingjelly", "spikingjelly_memopt", "fused")


def default_cases(arch: str, *, memopt: bool = True, fused: bool = False) -> list:
    """Ours for ``arch`` (binary and binary_replay for vgg*, blocks for revresnet*), then the
    installed SpikingJelly baselines, then (``fused``) the zoo's fused ReversibleLIF."""
    from .. import strategy

    names = [n for n in OURS if strategy.get(n).supports(arch)]
    sj = [p.name for p in (strategy.get("spikingjelly"), strategy.get("spikingjelly_memopt"))
          if p.available()[0] and (memopt or p.strategy.baseline != "memopt")]
    return names + sj + (["fused"] if fused else [])


def _arch_kwargs(arch: str, width: int) -> dict:
    return {"width": width} if arch.startswith("revresnet") else {}


def beyond_cases(arch: str, cases: Sequence[str], *, T: int, batch: int, size: int = 32,
                 width: int = 32, device="cpu"):
    """:class:`revsnn.analysis.measure.Case` objects for the presets ``cases`` on ``arch`` (each parsed
    here: one that does not build ``arch`` raises ``ValueError``)."""
    import torch

    from .. import strategy
    from ..analysis.measure import Case
    from ..models import build

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {ARCHS}")
    device = torch.device(device)
    presets = strategy.parse_many(cases, arch=arch, command="network")

    def make_input():
        g = torch.Generator(device="cpu").manual_seed(1)
        img = torch.rand(batch, 3, size, size, generator=g)
        return img.unsqueeze(0).repeat(T, 1, 1, 1, 1).to(device).requires_grad_()

    def builder(preset):
        def build_model():
            ok, why = preset.available()
            if not ok:
                raise ImportError(why)
            net = build(arch, preset, T=T, seed=0, example=lambda: make_input().detach(),
                        **_arch_kwargs(arch, width))
            return net.to(device).train()
        return build_model

    return [Case(builder(p), make_input, device=device, kind="network", mode=p.name,
                 label=p.label, arch=arch, T=T, batch=batch,
                 shape=f"[{T}, {batch}, 3, {size}, {size}]", dtype="float32") for p in presets]


def binary_storage(net, x) -> Optional[dict]:
    """What the binary units of ``net`` keep for backward, measured on one forward over ``x``:
    bits per neuron-step (packed spikes and remainders, uint8) and the final membranes V_T
    (int16/int32, bytes); None when ``net`` has no binary unit."""
    import torch

    from ..layers.units import BinarySpikingUnit

    units = [m for m in net.modules() if isinstance(m, BinarySpikingUnit)]
    if not units:
        return None
    neurons, seen = [], {}
    hooks = [u.register_forward_hook(lambda m, i, out: neurons.append(out[0].numel()))
             for u in units]

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x)
    finally:
        for h in hooks:
            h.remove()
    T = x.shape[0]
    packed = sum(t.untyped_storage().nbytes() for t in seen.values()
                 if t.dtype == torch.uint8 and t.dim() >= 2 and t.shape[0] == T)
    v_bytes = sum(t.untyped_storage().nbytes() for t in seen.values()
                  if t.dtype in (torch.int16, torch.int32))
    n = sum(neurons)
    return {"neurons_per_step": n, "bits_per_neuron_step": 8 * packed / (T * n),
            "v_final_bytes": v_bytes, "v_final_bits_per_neuron": 8 * v_bytes / n,
            "trace_bytes": packed}


def format_beyond(rows: Sequence[dict], storage: Optional[dict] = None) -> str:
    """Table and ratio lines for the rows of one :func:`run_beyond`; ``storage`` maps a binary
    preset to its :func:`binary_storage`."""
    rows = list(rows)
    if not rows:
        return ""
    by = {r["mode"]: r for r in rows}
    first = rows[0]
    lines = [f"{first['arch']}  T={first['T']}  batch={first['batch']}  input {first['shape']}  "
             f"{first['dtype']}  {first['device']} ({first['device_name']})"]
    headers = ["configuration", "saved", "act", "peak", "fwd ms", "bwd ms", "step ms"]
    table = []
    for r in rows:
        if not is_ok(r):
            table.append([r["label"], failure_text(r)])
            continue
        table.append([r["label"], human_bytes(r["saved_bytes"]), human_bytes(r["act_bytes"]),
                      human_bytes(r["peak_bytes"]), fmt_ms(r["fwd_ms"]),
                      fmt_ms(r["bwd_ms"], r["bwd_ms_iqr"]), fmt_ms(r["step_ms"])])
    lines.append(format_table(headers, table, align="<" + ">" * (len(headers) - 1)))

    def ratio(num, den, key):
        a, b = by.get(num), by.get(den)
        return safe_ratio(a[key], b[key]) if is_ok(a) and is_ok(b) else math.nan

    for mine in OURS:
        ours = by.get(mine)
        if ours is None:
            continue
        for other in _THEIRS:
            if other not in by:
                continue
            if not (is_ok(by[other]) and is_ok(ours)):
                bad = by[other] if not is_ok(by[other]) else ours
                lines.append(f"{ours['label']} vs {by[other]['label']}: n/a "
                             f"({failure_text(bad, 50)})")
                continue
            lines.append(
                f"{ours['label']} vs {by[other]['label']}: saved "
                f"{fmt_ratio(ratio(other, mine, 'saved_bytes'))} fewer, act "
                f"{fmt_ratio(ratio(other, mine, 'act_bytes'))} fewer, peak "
                f"{fmt_ratio(ratio(other, mine, 'peak_bytes'))} lower; step time ours/theirs "
                f"{fmt_ratio(ratio(mine, other, 'step_ms'))}")
        st = (storage or {}).get(mine)
        if st:
            head = (f"{ours['label']} stores {st['bits_per_neuron_step']:g} bits per neuron-step "
                    f"(packed spikes{' + leak remainders' if st['v_final_bytes'] else ''}) for "
                    f"{st['neurons_per_step']} neurons per step")
            if st["v_final_bytes"]:
                head += (f", plus final membranes V_T: {human_bytes(st['v_final_bytes'])} "
                         f"({st['v_final_bits_per_neuron']:g} bits per neuron = "
                         f"{st['v_final_bits_per_neuron'] / max(int(first['T']), 1):g} per "
                         f"neuron-step at T={first['T']})")
            else:
                head += ", nothing per neuron"
            lines.append(head)
    if "spikingjelly_memopt" in by:
        lines.append("note: memopt's checkpoints keep their (compressed) inputs outside autograd's "
                     "saved tensors; compare it on act/peak")
    return "\n".join(lines)


def run_beyond(arch: str = "vgg11", *,
               cases: Optional[Sequence[str]] = None,
               T: int = 8, batch: int = 16, size: int = 32, width: int = 32, device="cpu",
               repeats: int = 5, warmup: int = 1, track_memory: bool = True, out=None,
               quiet: bool = False) -> list:
    """Measure ``cases`` side by side, print the table and ratios, return the rows (and write them
    to ``out``). Default cases: :func:`default_cases`."""
    from ..analysis.measure import COLUMNS, measure_cases

    if cases is None:
        cases = default_cases(arch)
    echo(f"revsnn bench beyond: {arch}, cases {' '.join(map(str, cases))}, T={T}, batch={batch}, "
         f"{size}×{size}, device {device}; repeats {repeats}, warmup {warmup}", quiet=quiet)
    cs = beyond_cases(arch, cases, T=T, batch=batch, size=size, width=width, device=device)
    rows = measure_cases(cs, repeats=repeats, warmup=warmup, track_memory=track_memory)
    storage = {}
    for case, r in zip(cs, rows):
        if r["status"] != "ok" or r["mode"] not in OURS:
            continue
        st = binary_storage(case.build(), case.make_input())
        if st:
            storage[r["mode"]] = st
            r.update(bits_per_neuron_step=st["bits_per_neuron_step"],
                     v_final_bytes=st["v_final_bytes"])
    echo("\n" + format_beyond(rows, storage), quiet=quiet)
    if out is not None:
        write_rows(rows, out, columns=COLUMNS)
        echo(f"\nwrote {len(rows)} rows to {out}", quiet=quiet)
    return rows


def depth_sweep(*, T: int = 8, batch: int = 16, size: int = 32, width: int = 32,
                device="cpu") -> list:
    """Saved bytes for backward (parameters and buffers excluded) of revresnet_s/m/l under the
    ``blocks`` preset and under ``bptt`` (the same network under ordinary autograd, i.e. a standard
    spiking ResNet): one forward each, no timing. Rows: arch, mode, depth (conv-BN-node layers),
    blocks, saved_bytes."""
    import torch

    from ..analysis.measure import saved_tensor_bytes
    from ..models import ConvBNNode, build
    from ..models.configs import REVRESNET_CONFIGS

    device = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(1)
    img = torch.rand(batch, 3, size, size, generator=g)
    rows = []
    for name, blocks in REVRESNET_CONFIGS.items():
        for mode in ("blocks", "bptt"):
            net = build(name, mode, width=width, seed=0).to(device).train()
            x = img.unsqueeze(0).repeat(T, 1, 1, 1, 1).to(device).requires_grad_()
            _, sb = saved_tensor_bytes(net, x, params=[*net.parameters(), *net.buffers()])
            depth = sum(isinstance(m, ConvBNNode) for m in net.modules())
            rows.append(dict(kind="depth", arch=name, mode=mode, depth=depth,
                             blocks=sum(blocks), T=T, batch=batch, width=width,
                             shape=f"[{T}, {batch}, 3, {size}, {size}]", saved_bytes=sb.own))
            del net, x
    return rows


def format_depth_sweep(rows: Sequence[dict]) -> str:
    """Table of :func:`depth_sweep` rows with the growth from the shallowest variant."""
    first = {}
    table = []
    for r in rows:
        base = first.setdefault(r["mode"], r["saved_bytes"])
        table.append([r["arch"], r["mode"], str(r["depth"]), human_bytes(r["saved_bytes"]),
                      f"{100 * (r['saved_bytes'] / base - 1):+.1f}%"])
    head = (f"saved bytes for backward vs depth (parameters excluded), input {rows[0]['shape']}, "
            f"width {rows[0]['width']}" if rows else "")
    return head + "\n" + format_table(["variant", "mode", "conv layers", "saved", "vs shallowest"],
                                      table, align="<<>>>")
