"""``revsnn bench network``: one training step of a whole zoo network, every memory mode side by side.

For one (arch, T, batch, image size, dtype) all modes are measured in one
:func:`revsnn.measure.measure_cases` call: memory case by case, times round-robin, so the ratios
between modes hold on a noisy machine. A step is forward + cross-entropy loss + backward (no
optimizer step). Modes:

- ``spikingjelly``: the same architecture with SpikingJelly's ``LIFNode`` (plain BPTT) — the baseline;
- ``spikingjelly_memopt``: that network after ``spikingjelly.activation_based.memopt.optimize_memory``
  (level 1 by default: every conv-BN-node block checkpointed, binary block inputs bit-compressed;
  level 4 adds a greedy search driven by CUDA memory measurements and runs only on a GPU; levels 2
  and 3 need a split/chunk policy this benchmark does not pass, so they act as level 1);
- ``bptt``, ``checkpoint``, ``autograd``, ``revnet``, ``fused``: :class:`~revsnn.MemoryMode` values
  (reversible modes fuse BatchNorm into the node, :mod:`revsnn.models.bn_node`);
- ``revnet_nobn``, ``fused_nobn``: the reversible node without BN fusion (shows the node's share).

Columns beyond :data:`revsnn.measure.COLUMNS`: ``predicted_saved_bytes`` (the analytic model of
:mod:`revsnn.memory_model`; empty for memopt, which it does not model), ``saved_ratio`` /
``act_ratio`` / ``peak_ratio`` (SpikingJelly's value / the mode's: higher is leaner),
``step_ratio`` (the mode's step time / SpikingJelly's) and ``step_vs_bptt`` (/ our BPTT LIF's).
``saved_bytes`` excludes parameters; it misses what checkpointing keeps in its own frames, so
compare checkpointed modes by ``act_bytes`` / ``peak_bytes`` (allocator-level, params included).
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, Optional, Sequence

from torch import nn

from ..measure import COLUMNS as _BASE_COLUMNS
from ..cli import (UsageError, add_device_argument, add_dtype_argument, add_output_arguments,
                   add_timing_arguments, check_timing_arguments, positive_int, resolve_device,
                   split_modes)
from .report import (check_output_path, echo, failure_text, fmt_ms, fmt_ratio, format_table,
                     human_bytes, is_missing, safe_ratio, write_rows)

__all__ = ["add_arguments", "run", "measure_network", "network_case", "NETWORK_MODES", "BLOCK_ARCHS",
           "DEFAULT_MODES", "add_ratios", "format_network_table", "COLUMNS", "LEGEND"]

NETWORK_MODES = ("spikingjelly", "spikingjelly_memopt", "bptt", "checkpoint", "autograd",
                 "revnet", "fused", "revnet_nobn", "fused_nobn", "binary", "binary_replay",
                 "blocks")
"""Every mode :func:`measure_network` understands. ``binary``/``binary_replay``: the VGG built from
:class:`revsnn.BinarySpikingUnit` (exact binary-spike LIF, 2 / 1 stored bits per neuron-step);
``blocks``: the reversible spiking ResNets ``revresnet_s``/``_m``/``_l`` (:mod:`revsnn.blocks`),
whose ``bptt`` and ``spikingjelly`` rows are the same network run plainly."""

BLOCK_ARCHS = ("revresnet_s", "revresnet_m", "revresnet_l")
"""Architectures of :mod:`revsnn.blocks`, measured with modes ``blocks``, ``bptt``, ``spikingjelly``."""

DEFAULT_MODES = ("spikingjelly", "spikingjelly_memopt", "bptt", "checkpoint", "revnet", "fused")

_LABELS = {
    "spikingjelly": "SpikingJelly LIFNode",
    "spikingjelly_memopt": "SpikingJelly + memopt",
    "revnet_nobn": "ReversibleLIF (revnet, BN not fused)",
    "fused_nobn": "ReversibleLIF (fused, BN not fused)",
    "binary": "Binary reversible LIF units (reverse)",
    "binary_replay": "Binary reversible LIF units (replay)",
    "blocks": "Reversible spiking blocks",
}

EXTRA_COLUMNS = ["image_size", "num_classes", "predicted_saved_bytes", "saved_ratio", "act_ratio",
                 "peak_ratio", "step_ratio", "step_vs_bptt"]

LEGEND = (
    "saved: bytes autograd keeps for backward, parameters excluded (storage-deduplicated);\n"
    "model: the analytic prediction of revsnn.memory_model; act: activations alive after forward;\n"
    "peak: allocator-level peak over forward + backward (parameters and gradients included);\n"
    "×SJ columns: SpikingJelly's value / the mode's (higher = leaner); step/SJ and step/BPTT: the\n"
    "mode's step time / SpikingJelly's / our LIF BPTT's (lower = faster); times: median ms,\n"
    "modes timed round-robin in one run. Checkpointed modes keep inputs in their own frames,\n"
    "which saved-tensor hooks do not see: compare them by act and peak."
)


COLUMNS = list(_BASE_COLUMNS) + EXTRA_COLUMNS
"""Column order of the rows (and of ``--out``): :data:`revsnn.measure.COLUMNS` + the extras."""


def _label(mode: str) -> str:
    from ..modes import MemoryMode
    if mode in _LABELS:
        return _LABELS[mode]
    return MemoryMode.parse(mode).label


def _split_mode(mode: str) -> tuple:
    """``(build mode, fuse_bn, memopt)`` for a :data:`NETWORK_MODES` entry."""
    if mode == "spikingjelly":
        return "spikingjelly", True, False
    if mode == "spikingjelly_memopt":
        return "spikingjelly", True, True
    if mode.endswith("_nobn"):
        return mode[: -len("_nobn")], False, False
    return mode, True, False


def parse_network_modes(values: Optional[Sequence[str]]) -> list:
    """Normalise ``--modes`` (space or comma separated); MemoryMode names are accepted too."""
    if not values:
        return list(DEFAULT_MODES)
    modes, unknown = split_modes(values, extra=NETWORK_MODES)
    if unknown:
        raise UsageError(f"unknown mode{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; choose from {', '.join(NETWORK_MODES)}")
    return modes


def _memopt(model, example: Callable, level: int):
    """Apply SpikingJelly's ``optimize_memory`` to every conv-BN-node block / residual block."""
    from spikingjelly.activation_based.memopt import optimize_memory

    from ..models import BasicBlock, ConvBNNode
    return optimize_memory(model, (BasicBlock, ConvBNNode), lambda m: m(example()), level=level)


def network_case(arch: str, mode: str, *, T: int = 8, batch: int = 16, image_size: int = 32,
                 num_classes: int = 10, dtype="float32", device="cpu", in_channels=None,
                 node_kwargs: Optional[dict] = None, seed: int = 0, memopt_level: int = 1):
    """A :class:`revsnn.measure.Case` for one training step of ``arch`` in ``mode``.

    Weights come from ``seed`` (equal in every mode), the input is uniform in [0, 1) and the loss is
    cross-entropy against fixed labels, all seeded.
    """
    import torch
    import torch.nn.functional as F

    from ..baselines import spikingjelly_available
    from ..measure import Case, parse_dtype
    from ..models import DEFAULT_IN_CHANNELS, build

    if mode not in NETWORK_MODES:
        raise ValueError(f"unknown network mode {mode!r}; choose from {', '.join(NETWORK_MODES)}")
    tdtype, dev = parse_dtype(dtype), torch.device(device)
    in_channels = DEFAULT_IN_CHANNELS.get(arch, 3) if in_channels is None else int(in_channels)
    build_mode, fuse_bn, memopt = _split_mode(mode)
    g = torch.Generator().manual_seed(seed + 1)
    image = torch.rand(batch, in_channels, image_size, image_size, generator=g)
    labels = torch.randint(0, num_classes, (batch,), generator=g).to(dev)

    def make_input():
        return image.to(dev, tdtype)

    def build_model():
        if build_mode == "spikingjelly" and not spikingjelly_available():
            raise ImportError("SpikingJelly is not installed: pip install --no-deps "
                              "spikingjelly==2.0.0 numpy 'loguru>=0.7,<1'")
        if arch in BLOCK_ARCHS or build_mode in ("binary", "binary_replay", "blocks"):
            model = _beyond_model(arch, build_mode, T=T, num_classes=num_classes,
                                  in_channels=in_channels, seed=seed)
        else:
            model = build(arch, build_mode, num_classes=num_classes, in_channels=in_channels,
                          node_kwargs=node_kwargs, T=T, seed=seed, fuse_bn=fuse_bn)
        model = model.to(dev, tdtype).train()
        if memopt:
            model = _memopt(model, make_input, memopt_level)
        return model

    return Case(build_model, make_input, loss_fn=lambda out: F.cross_entropy(out, labels),
                device=dev, kind="network", mode=mode, label=_label(mode), arch=arch, T=T,
                batch=batch, shape=f"[{batch}, {in_channels}, {image_size}, {image_size}]",
                dtype=str(tdtype).replace("torch.", ""), image_size=image_size,
                num_classes=num_classes)


class _RepeatT(nn.Module):
    """Present a static image ``[B, C, H, W]`` at each of T steps (a view, not a copy)."""

    def __init__(self, net: nn.Module, T: int):
        super().__init__()
        self.net, self.T = net, int(T)

    def forward(self, x):
        return self.net(x.unsqueeze(0).expand(self.T, *x.shape) if x.dim() == 4 else x)


def _beyond_model(arch: str, mode: str, *, T: int, num_classes: int, in_channels: int, seed: int):
    """The beyond-the-paper networks: binary-unit VGGs and reversible-block ResNets."""
    import torch

    from ..baselines import SpikingJellyLIF
    from ..binary import BinarySpikingVGG
    from ..blocks import rev_spiking_resnet
    from ..neuron import LIF

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if mode in ("binary", "binary_replay"):
            if not arch.startswith("vgg"):
                raise ValueError(f"mode {mode!r} builds binary-unit VGGs (vgg11/13/16), not {arch!r}")
            return BinarySpikingVGG(arch, in_channels=in_channels, num_classes=num_classes, T=T,
                                    reconstruct="replay" if mode == "binary_replay" else "reverse")
        if arch not in BLOCK_ARCHS:
            raise ValueError(f"mode 'blocks' needs a reversible-block architecture "
                             f"({', '.join(BLOCK_ARCHS)}), got {arch!r}")
        if mode not in ("blocks", "bptt", "spikingjelly"):
            raise ValueError(f"{arch} is measured with modes blocks, bptt or spikingjelly, not "
                             f"{mode!r}")
        node = SpikingJellyLIF if mode == "spikingjelly" else LIF
        net = rev_spiking_resnet(arch, num_classes=num_classes, in_channels=in_channels,
                                 node_factory=node, mode="reversible" if mode == "blocks" else "plain")
        return _RepeatT(net, T)


def _prediction(arch, mode, T, batch, image_size, num_classes, dtype, in_channels, node_kwargs):
    from ..baselines import spikingjelly_available
    from ..memory_model import predict_total

    build_mode, fuse_bn, memopt = _split_mode(mode)
    if memopt or (build_mode == "spikingjelly" and not spikingjelly_available()):
        return math.nan
    if arch in BLOCK_ARCHS or build_mode in ("binary", "binary_replay", "blocks"):
        return math.nan  # the analytic model covers the zoo's layers only
    return predict_total(arch, build_mode, T=T, batch=batch, image_size=image_size, dtype=dtype,
                         in_channels=in_channels, num_classes=num_classes,
                         node_kwargs=node_kwargs, fuse_bn=fuse_bn)


def add_ratios(rows: Sequence[dict]) -> list:
    """Fill the ratio columns of one block of rows (same arch, T, batch) in place; returns rows."""
    by_mode = {r["mode"]: r for r in rows}

    def ok(r):
        return r is not None and r.get("status") == "ok"

    sj, bptt = by_mode.get("spikingjelly"), by_mode.get("bptt")
    for r in rows:
        good = ok(r)
        for col, key in (("saved_ratio", "saved_bytes"), ("act_ratio", "act_bytes"),
                         ("peak_ratio", "peak_bytes")):
            r[col] = safe_ratio(sj[key], r[key]) if good and ok(sj) else math.nan
        r["step_ratio"] = safe_ratio(r["step_ms"], sj["step_ms"]) if good and ok(sj) else math.nan
        r["step_vs_bptt"] = (safe_ratio(r["step_ms"], bptt["step_ms"]) if good and ok(bptt)
                             else math.nan)
    return list(rows)


def measure_network(arch: str = "vgg11", modes: Sequence[str] = DEFAULT_MODES, T: int = 8,
                    batch: int = 16, image_size: int = 32, num_classes: int = 10,
                    dtype="float32", device="cpu", repeats: int = 3, warmup: int = 1,
                    on_row=None, *, track_memory: bool = True, in_channels=None,
                    node_kwargs: Optional[dict] = None, seed: int = 0,
                    memopt_level: int = 1) -> list:
    """Measure one training step of ``arch`` in every mode; one tidy row per mode.

    Rows have :data:`revsnn.measure.COLUMNS` (kind="network") plus ``predicted_saved_bytes`` and
    the ratio columns (see the module docstring). A mode that fails or runs out of memory is a row
    with status "error"/"oom". ``on_row`` is called with each finished row.
    """
    from ..measure import measure_cases

    modes = list(modes)
    for name, val in (("T", T), ("batch", batch), ("image_size", image_size)):
        if int(val) < 1:
            raise ValueError(f"measure_network: {name} must be >= 1, got {val}")
    cases = [network_case(arch, m, T=T, batch=batch, image_size=image_size,
                          num_classes=num_classes, dtype=dtype, device=device,
                          in_channels=in_channels, node_kwargs=node_kwargs, seed=seed,
                          memopt_level=memopt_level) for m in modes]
    rows = measure_cases(cases, repeats=repeats, warmup=warmup, track_memory=track_memory)
    for r in rows:
        try:
            r["predicted_saved_bytes"] = _prediction(arch, r["mode"], T, batch, image_size,
                                                     num_classes, dtype, in_channels, node_kwargs)
        except Exception:  # noqa: BLE001 - a prediction never hides a measurement
            r["predicted_saved_bytes"] = math.nan
    add_ratios(rows)
    if on_row is not None:
        for r in rows:
            on_row(r)
    return rows


def format_network_table(rows: Sequence[dict]) -> str:
    """Title line, the table of one block, and the headline ratios."""
    rows = list(rows)
    if not rows:
        return ""
    f = rows[0]
    title = (f"{f['arch']}  T={f['T']}  batch={f['batch']}  input {f['shape']}  {f['dtype']}  "
             f"{f['device']} ({f['device_name']})")
    cuda = any(not is_missing(r.get("cuda_peak_bytes")) for r in rows)
    headers = (["mode", "saved", "model", "act", "peak"] + (["cuda peak"] if cuda else [])
               + ["fwd ms", "bwd ms", "step ms", "saved ×SJ", "act ×SJ", "peak ×SJ", "step/SJ",
                  "step/BPTT"])
    table = []
    for r in rows:
        if r.get("status") != "ok":
            table.append([r["label"], failure_text(r)])
            continue
        table.append([r["label"], human_bytes(r["saved_bytes"]),
                      human_bytes(r.get("predicted_saved_bytes")), human_bytes(r["act_bytes"]),
                      human_bytes(r["peak_bytes"])]
                     + ([human_bytes(r.get("cuda_peak_bytes"))] if cuda else [])
                     + [fmt_ms(r["fwd_ms"]), fmt_ms(r["bwd_ms"], r["bwd_ms_iqr"]),
                        fmt_ms(r["step_ms"]), fmt_ratio(r.get("saved_ratio")),
                        fmt_ratio(r.get("act_ratio")), fmt_ratio(r.get("peak_ratio")),
                        fmt_ratio(r.get("step_ratio")), fmt_ratio(r.get("step_vs_bptt"))])
    lines = [title, format_table(headers, table, align="<" + ">" * (len(headers) - 1))]
    by_mode = {r["mode"]: r for r in rows}
    for mode in ("fused", "revnet"):
        r = by_mode.get(mode)
        if r is not None and r.get("status") == "ok" and not is_missing(r.get("saved_ratio")):
            lines.append(f"{r['label']}: {fmt_ratio(r['saved_ratio'])} fewer saved bytes and "
                         f"{fmt_ratio(r['peak_ratio'])} lower peak than SpikingJelly; step time "
                         f"{fmt_ratio(r['step_vs_bptt'])} of LIF BPTT")
            break
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models import MODELS

    parser.add_argument("--arch", default="vgg11", choices=sorted(MODELS) + list(BLOCK_ARCHS),
                        help="zoo architecture (default: vgg11)")
    parser.add_argument("--T", type=positive_int, default=8, help="timesteps (default: 8)")
    parser.add_argument("--batch", type=positive_int, default=16, help="batch size (default: 16)")
    parser.add_argument("--image-size", type=positive_int, default=32,
                        help="input height = width (default: 32)")
    parser.add_argument("--num-classes", type=positive_int, default=10,
                        help="classes of the classifier (default: 10)")
    parser.add_argument("--in-channels", type=positive_int, default=None,
                        help="input channels (default: 3, 1 for convnet)")
    add_dtype_argument(parser, multiple=False)
    add_device_argument(parser)
    parser.add_argument("--modes", nargs="+", default=None, metavar="MODE",
                        help=f"any of {', '.join(NETWORK_MODES)} (default: "
                             f"{' '.join(DEFAULT_MODES)})")
    add_timing_arguments(parser, repeats=3, per="mode")
    parser.add_argument("--memopt-level", type=int, default=1, choices=(1, 2, 3, 4),
                        help="optimize_memory level for spikingjelly_memopt (default: 1; 4 "
                             "searches with CUDA memory measurements)")
    parser.add_argument("--seed", type=int, default=0, help="weight and data seed (default: 0)")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    modes = parse_network_modes(args.modes)
    device = resolve_device(args.device)
    check_timing_arguments(args)
    try:
        out = check_output_path(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    quiet = args.quiet
    echo(f"revsnn bench network: {args.arch}, modes {' '.join(modes)}; device {device}; "
         f"repeats {args.repeats}, warmup {args.warmup}", quiet=quiet)
    echo(LEGEND, quiet=quiet)
    echo(f"… measuring {len(modes)} modes", quiet=quiet, file=sys.stderr)
    rows = measure_network(args.arch, modes, T=args.T, batch=args.batch,
                           image_size=args.image_size, num_classes=args.num_classes,
                           dtype=args.dtype, device=device, repeats=args.repeats,
                           warmup=args.warmup, track_memory=args.track_memory,
                           in_channels=args.in_channels, seed=args.seed,
                           memopt_level=args.memopt_level)
    echo("\n" + format_network_table(rows), quiet=quiet)
    if out is not None:
        write_rows(rows, out, columns=COLUMNS)
        echo(f"\nwrote {len(rows)} rows to {out}", quiet=quiet)
    return 0
