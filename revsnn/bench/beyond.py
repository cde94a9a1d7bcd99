"""``revsnn bench beyond``: the leanest reversible network vs SpikingJelly's, side by side.

Three (optionally four) configurations of one architecture, measured in one
:func:`revsnn.measure.measure_cases` call (times round-robin, so ratios hold on a noisy machine):

- ``ours``: ``--arch vgg11`` (or vgg13/vgg16): :class:`~revsnn.binary.BinarySpikingVGG`, conv-BN
  synapses with the exact binary-spike reversible LIF walking back from V_T (2 bits per
  neuron-step + V_T stored, the synapse recomputed in backward); ``--arch revresnet_s|m|l``:
  :class:`~revsnn.blocks.RevSpikingResNet` (reversible stacks that store only their outputs).
- ``ours_replay`` (vgg* only): the same binary VGG with ``reconstruct="replay"`` (1 bit per
  neuron-step: the packed spikes, nothing per neuron).
- ``spikingjelly``: the same architecture with SpikingJelly's ``LIFNode`` under plain BPTT (the
  zoo's VGG for vgg*, the same RevSpikingResNet run plainly for revresnet*).
- ``memopt``: that SpikingJelly network after SpikingJelly's ``memopt.optimize_memory`` (level 1:
  every conv-BN-node block checkpointed, binary inputs compressed to 1 bit). Its checkpoints keep
  their inputs outside autograd's saved tensors, so compare it on ``act`` (the allocator-level bytes
  alive after the forward), not ``saved``.
- ``fused`` (``--with-fused``, vgg* only): the zoo VGG with ReversibleLIF (fused backward, BN
  fused).

Inputs are a ``[T, B, 3, S, S]`` sequence made outside the network (the image at every step), so no
configuration pays for encoding. Ratios printed: saved and act reductions (SpikingJelly / ours,
memopt / ours), step-time ratio (ours / SpikingJelly, ours / memopt), and for the binary VGG the
measured bits stored per neuron-step.
"""

from __future__ import annotations

import argparse
import math
from typing import Optional, Sequence

from ..cli import (UsageError, add_device_argument, add_output_arguments, add_timing_arguments,
                   check_timing_arguments, positive_int, resolve_device)
from .report import (check_output_path, echo, failure_text, fmt_ms, fmt_ratio, format_table,
                     human_bytes, safe_ratio, write_rows)

__all__ = ["add_arguments", "run", "run_beyond", "beyond_cases", "format_beyond", "binary_storage",
           "depth_sweep", "format_depth_sweep", "ARCHS", "CASES"]

ARCHS = ("vgg11", "vgg13", "vgg16", "revresnet_s", "revresnet_m", "revresnet_l")
CASES = ("ours", "ours_replay", "spikingjelly", "memopt", "fused")
OURS = ("ours", "ours_replay")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=ARCHS, default="vgg11",
                        help="architecture (default: vgg11)")
    parser.add_argument("--T", type=positive_int, default=8, help="timesteps (default: 8)")
    parser.add_argument("--batch", type=positive_int, default=16, help="batch size (default: 16)")
    parser.add_argument("--size", type=positive_int, default=32,
                        help="image side, 3 channels (default: 32)")
    parser.add_argument("--width", type=positive_int, default=32,
                        help="base width of revresnet* (default: 32)")
    parser.add_argument("--depth-sweep", action="store_true",
                        help="instead: saved bytes of revresnet_s/m/l, reversible vs plain "
                             "(forward only; uses --T --batch --size --width)")
    parser.add_argument("--with-fused", action="store_true",
                        help="also measure the zoo network with ReversibleLIF (fused backward)")
    parser.add_argument("--no-memopt", dest="memopt", action="store_false",
                        help="skip SpikingJelly memopt")
    add_device_argument(parser)
    add_timing_arguments(parser, repeats=3, per="configuration")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..baselines import spikingjelly_available

    device = resolve_device(args.device)
    check_timing_arguments(args)
    if args.arch.startswith("revresnet") and args.width % 2:
        raise UsageError(f"--width must be even, got {args.width}")
    if args.with_fused and not args.arch.startswith("vgg"):
        raise UsageError("--with-fused applies to the vgg architectures only")
    try:
        out = check_output_path(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.depth_sweep:
        if args.width % 2:
            raise UsageError(f"--width must be even, got {args.width}")
        rows = depth_sweep(T=args.T, batch=args.batch, size=args.size, width=args.width,
                           device=device)
        echo(format_depth_sweep(rows), quiet=args.quiet)
        if out is not None:
            write_rows(rows, out)
            echo(f"\nwrote {len(rows)} rows to {out}", quiet=args.quiet)
        return 0
    cases = ["ours"] + (["ours_replay"] if args.arch.startswith("vgg") else [])
    if spikingjelly_available():
        cases += ["spikingjelly"] + (["memopt"] if args.memopt else [])
    else:
        echo("SpikingJelly is not installed: measuring ours only (pip install --no-deps "
             "spikingjelly==2.0.0 numpy 'loguru>=0.7,<1')", quiet=args.quiet)
    if args.with_fused:
        cases.append("fused")
    run_beyond(args.arch, cases=cases, T=args.T, batch=args.batch, size=args.size,
               width=args.width, device=device, repeats=args.repeats, warmup=args.warmup,
               track_memory=args.track_memory, out=out, quiet=args.quiet)
    return 0


_LABELS = {
    "ours": {"vgg": "binary LIF units, reverse (ours)", "rev": "RevSpikingResNet (ours)"},
    "ours_replay": {"vgg": "binary LIF units, replay (ours)", "rev": ""},
    "spikingjelly": {"vgg": "SpikingJelly LIFNode (BPTT)", "rev": "SpikingJelly LIFNode, plain"},
    "memopt": {"vgg": "SpikingJelly + memopt L1", "rev": "SpikingJelly + memopt L1"},
    "fused": {"vgg": "ReversibleLIF fused (zoo)", "rev": ""},
}


def _builders(arch: str, T: int, size: int, width: int, device):
    """name → zero-argument builder of the network (on ``device``); ``holder`` keeps each one."""
    import torch

    holder: dict = {}
    family = "vgg" if arch.startswith("vgg") else "rev"

    def keep(name, net):
        holder[name] = net
        return net.to(device).train()

    def sj_network():
        if family == "vgg":
            from ..models import build
            return build(arch, "spikingjelly", T=T, seed=0)
        from ..baselines import SpikingJellyLIF
        from ..blocks import rev_spiking_resnet
        torch.manual_seed(0)
        return rev_spiking_resnet(arch, width=width, mode="plain", node_factory=SpikingJellyLIF)

    def ours(reconstruct="reverse"):
        torch.manual_seed(0)
        name = "ours" if reconstruct == "reverse" else "ours_replay"
        if family == "vgg":
            from ..binary import BinarySpikingVGG
            return keep(name, BinarySpikingVGG(arch, T=T, reconstruct=reconstruct))
        from ..blocks import rev_spiking_resnet
        return keep(name, rev_spiking_resnet(arch, width=width, mode="reversible"))

    def memopt():
        from spikingjelly.activation_based.memopt import optimize_memory

        from ..blocks import ConvBNNode as BlockUnit
        from ..models.layers import ConvBNNode as ZooUnit
        net = sj_network().to(device).train()
        example = torch.rand(T, 2, 3, size, size, device=device)
        optimize_memory(net, (ZooUnit, BlockUnit), lambda m: m(example), level=1,
                        checkpoint_budget="memory", compress=True)
        return keep("memopt", net)

    def fused():
        from ..models import build
        return keep("fused", build(arch, "fused", T=T, seed=0))

    return {"ours": ours, "ours_replay": lambda: ours("replay"),
            "spikingjelly": lambda: keep("spikingjelly", sj_network()),
            "memopt": memopt, "fused": fused}, holder


def beyond_cases(arch: str, cases: Sequence[str], *, T: int, batch: int, size: int = 32,
                 width: int = 32, device="cpu"):
    """``(cases, holder)``: :class:`revsnn.measure.Case` objects, and a dict that receives each
    built network (to inspect after measuring)."""
    import torch

    from ..measure import Case

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {ARCHS}")
    family = "vgg" if arch.startswith("vgg") else "rev"
    device = torch.device(device)
    builders, holder = _builders(arch, T, size, width, device)

    def make_input():
        g = torch.Generator(device="cpu").manual_seed(1)
        img = torch.rand(batch, 3, size, size, generator=g)
        return img.unsqueeze(0).repeat(T, 1, 1, 1, 1).to(device).requires_grad_()

    out = []
    for name in cases:
        if name not in CASES:
            raise ValueError(f"unknown case {name!r}; choose from {CASES}")
        if not _LABELS[name][family]:
            raise ValueError(f"case {name!r} does not apply to {arch}")
        out.append(Case(builders[name], make_input, device=device, kind="network", mode=name,
                        label=_LABELS[name][family], arch=arch, T=T, batch=batch,
                        shape=f"[{T}, {batch}, 3, {size}, {size}]", dtype="float32"))
    return out, holder


def binary_storage(net, T: int) -> Optional[dict]:
    """Bits per neuron-step of a :class:`~revsnn.binary.BinarySpikingVGG` after a forward: the
    packed spikes and remainders of every unit, and the final membranes (bytes)."""
    from ..binary import BinarySpikingVGG

    if not isinstance(net, BinarySpikingVGG):
        return None
    units = list(net.features)
    shapes = [u.node.last_shape for u in units]
    if any(s is None for s in shapes):
        return None
    sizes = [math.prod(s) for s in shapes]
    neurons = sum(sizes)
    per_step = sum(u.node.bits_per_neuron_step() * math.ceil(n / 8) * 8
                   for u, n in zip(units, sizes))
    v_bytes = sum(u.node.last_state.numel() * u.node.last_state.element_size() for u in units
                  if u.node.reconstruct == "reverse" and u.node.last_state is not None)
    return {"neurons_per_step": neurons, "bits_per_neuron_step": per_step / neurons,
            "v_final_bytes": v_bytes, "v_final_bits_per_neuron": 8 * v_bytes / neurons,
            "trace_bytes": per_step * T // 8}


def _ok(row) -> bool:
    return row is not None and row.get("status") == "ok"


def format_beyond(rows: Sequence[dict], storage: Optional[dict] = None) -> str:
    """Table and ratio lines for the rows of one :func:`run_beyond`; ``storage`` maps an ``ours*``
    case to its :func:`binary_storage`."""
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
        if not _ok(r):
            table.append([r["label"], failure_text(r)])
            continue
        table.append([r["label"], human_bytes(r["saved_bytes"]), human_bytes(r["act_bytes"]),
                      human_bytes(r["peak_bytes"]), fmt_ms(r["fwd_ms"]),
                      fmt_ms(r["bwd_ms"], r["bwd_ms_iqr"]), fmt_ms(r["step_ms"])])
    lines.append(format_table(headers, table, align="<" + ">" * (len(headers) - 1)))

    def ratio(num, den, key):
        a, b = by.get(num), by.get(den)
        return safe_ratio(a[key], b[key]) if _ok(a) and _ok(b) else math.nan

    for mine in OURS:
        ours = by.get(mine)
        if ours is None:
            continue
        for other in ("spikingjelly", "memopt", "fused"):
            if other not in by:
                continue
            if not (_ok(by[other]) and _ok(ours)):
                bad = by[other] if not _ok(by[other]) else ours
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
    if "memopt" in by:
        lines.append("note: memopt's checkpoints keep their (compressed) inputs outside autograd's "
                     "saved tensors; compare it on act/peak")
    return "\n".join(lines)


def run_beyond(arch: str = "vgg11", *,
               cases: Optional[Sequence[str]] = None,
               T: int = 8, batch: int = 16, size: int = 32, width: int = 32, device="cpu",
               repeats: int = 3, warmup: int = 1, track_memory: bool = True, out=None,
               quiet: bool = False) -> list:
    """Measure ``cases`` side by side, print the table and ratios, return the rows (and write them
    to ``out``). Default cases: ours (+ ours_replay for vgg*), spikingjelly, memopt."""
    from ..measure import COLUMNS, measure_cases

    if cases is None:
        cases = ["ours"] + (["ours_replay"] if arch.startswith("vgg") else []) + [
            "spikingjelly", "memopt"]

    echo(f"revsnn bench beyond: {arch}, cases {' '.join(cases)}, T={T}, batch={batch}, "
         f"{size}×{size}, device {device}; repeats {repeats}, warmup {warmup}", quiet=quiet)
    cs, holder = beyond_cases(arch, cases, T=T, batch=batch, size=size, width=width,
                              device=device)
    rows = measure_cases(cs, repeats=repeats, warmup=warmup, track_memory=track_memory)
    storage = {}
    for r in rows:
        st = binary_storage(holder.get(r["mode"]), T) if r["mode"] in OURS else None
        if st and r["status"] == "ok":
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
    """Saved bytes for backward (parameters and buffers excluded) of revresnet_s/m/l, reversible
    and plain (the same network under ordinary autograd, i.e. a standard spiking ResNet): one
    forward each, no timing. Rows: arch, mode, depth, blocks, saved_bytes."""
    import torch

    from ..blocks import REVRESNET_CONFIGS, rev_spiking_resnet
    from ..measure import saved_tensor_bytes

    device = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(1)
    img = torch.rand(batch, 3, size, size, generator=g)
    rows = []
    for name, blocks in REVRESNET_CONFIGS.items():
        for mode in ("reversible", "plain"):
            torch.manual_seed(0)
            net = rev_spiking_resnet(name, width=width, mode=mode).to(device).train()
            x = img.unsqueeze(0).repeat(T, 1, 1, 1, 1).to(device).requires_grad_()
            _, sb = saved_tensor_bytes(net, x, params=[*net.parameters(), *net.buffers()])
            rows.append(dict(kind="depth", arch=name, mode=mode, depth=net.depth,
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
