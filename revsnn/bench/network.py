"""``revsnn bench network``: one training step of a whole zoo network (or of a network of your own,
``arch="package.module:factory"``, converted to every mode by :func:`revsnn.convert`), every memory
mode side by side.

For one (arch, T, batch, image size, dtype) all modes are measured in one
:func:`revsnn.analysis.measure.measure_cases` call: memory case by case, times round-robin, so the ratios
between modes hold on a noisy machine. A step is forward + cross-entropy loss + backward (no
optimizer step). Modes are the presets of :mod:`revsnn.strategy` that build the architecture, e.g.:

- ``spikingjelly``: the same architecture with SpikingJelly's ``LIFNode`` (plain BPTT) — the baseline;
- ``spikingjelly_memopt``: that network after ``spikingjelly.activation_based.memopt.optimize_memory``
  (level 1 by default: every conv-BN-node block checkpointed, binary block inputs bit-compressed;
  level 4 adds a greedy search driven by CUDA memory measurements and runs only on a GPU; levels 2
  and 3 need a split/chunk policy this benchmark does not pass, so they act as level 1);
- ``bptt``, ``checkpoint``, ``autograd``, ``revnet``, ``fused`` (reversible modes fuse BatchNorm
  into the node, :mod:`revsnn.layers.bn_node`); ``revnet_nobn``, ``fused_nobn`` without BN fusion;
- ``binary``, ``binary_replay``: VGGs and the ConvNet of recomputing binary units; ``blocks``: the
  reversible-block ResNets ``revresnet_s/m/l`` (whose ``bptt`` row is the same network run plainly).

Columns beyond :data:`revsnn.analysis.measure.COLUMNS`: ``predicted_saved_bytes`` (the analytic model of
:mod:`revsnn.analysis.memory_model`; empty for memopt, which it does not model),
``predicted_act_peak_bytes`` (the analytic activation peak of :mod:`revsnn.temporal.memory`; the
``temporal`` preset only), ``act_peak_ratio`` (SpikingJelly's activation peak / the mode's: the
headline figure), ``saved_ratio`` / ``act_ratio`` / ``peak_ratio`` (SpikingJelly's value / the
mode's: higher is leaner),
``step_ratio`` (the mode's step time / SpikingJelly's) and ``step_vs_bptt`` (/ our BPTT LIF's).
``saved_bytes`` excludes parameters; it misses what checkpointing keeps in its own frames, so
compare checkpointed modes by ``act_bytes`` / ``peak_bytes`` (allocator-level, params included).

With ``compile=True`` (or a ``torch.compile`` backend name; ``True`` is ``"inductor"``) every mode
is measured twice, eager and as ``torch.compile(model, backend=...)`` (the loss stays eager), all
rows timed round-robin in one run. A compiled row has ``compiled`` True, its backend in
``compile_backend``, a label ending in " (compiled)" (" (compiled, <backend>)" for a backend other
than Inductor), ``compile_seconds`` is the wall time of its first step (tracing
and compiling forward and backward, plus one step; not in the step times) and ``compile_speedup``
is the eager row's step time / the compiled row's. Its memory columns are empty: ``torch.compile``
does not run compiled code while the dispatcher-level trackers are active, so they would count the
eager model (:mod:`revsnn.analysis.measure`); on CUDA ``cuda_peak_bytes`` (from the timed steps)
is measured. The whole run is under :func:`revsnn.nodes.compiled.tracing_autograd` (the
``revnet`` and binary modes need it; it changes nothing for the others), with a recompile limit
high enough for every compiled mode. The ratios against SpikingJelly, BPTT and fused compare
with those modes' eager rows.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from ..analysis.measure import COLUMNS as _BASE_COLUMNS
from .report import MISSING, failure_text, fmt_ms, fmt_ratio, format_table, human_bytes, \
    is_missing, is_ok, safe_ratio

__all__ = ["measure_network", "network_sweep", "network_case", "add_ratios",
           "format_network_table", "COLUMNS", "LEGEND", "COMPILE_LEGEND"]

EXTRA_COLUMNS = ["image_size", "num_classes", "predicted_saved_bytes", "predicted_act_peak_bytes",
                 "act_peak_ratio", "saved_ratio", "act_ratio", "peak_ratio", "step_ratio",
                 "step_vs_bptt", "step_vs_fused", "compile_backend", "compile_seconds",
                 "compile_speedup"]

LEGEND = (
    "act peak: the activation peak, the peak of live storage over forward + loss + backward minus\n"
    "parameters, buffers and parameter gradients (counted at the dispatcher; every mode);\n"
    "model peak: its analytic prediction (temporal); the headline is act peak ×SJ;\n"
    "saved: bytes autograd keeps for backward, parameters excluded (storage-deduplicated);\n"
    "model: the analytic prediction of revsnn.analysis.memory_model; act: activations alive after forward;\n"
    "peak: allocator-level peak over forward + backward (parameters and gradients included);\n"
    "×SJ columns: SpikingJelly's value / the mode's (higher = leaner); step/SJ and step/BPTT: the\n"
    "mode's step time / SpikingJelly's / our LIF BPTT's (lower = faster); times: median ms,\n"
    "modes timed round-robin in one run. Checkpointed modes keep inputs in their own frames,\n"
    "which saved-tensor hooks do not see: compare them by act and peak."
)

COMPILE_LEGEND = (
    "(compiled): torch.compile(model), timed round-robin with the eager rows; ×compile: eager\n"
    "step / compiled step (higher = compile is faster); compile s: its first step, compiling\n"
    "included (not in the step times). Compiled rows have no memory columns: torch.compile runs\n"
    "eagerly under the dispatcher-level trackers, so they would measure the eager model."
)


COLUMNS = list(_BASE_COLUMNS) + EXTRA_COLUMNS
"""Column order of the rows (and of ``--out``): :data:`revsnn.analysis.measure.COLUMNS` + the extras."""


def network_case(arch: str, mode, *, T: int = 8, batch: int = 16, image_size: int = 32,
                 num_classes: int = 10, dtype="float32", device="cpu", in_channels=None,
                 node_kwargs: Optional[dict] = None, seed: int = 0, memopt_level: int = 1,
                 command: str = "network", compiled=False, **arch_kwargs):
    """A :class:`revsnn.analysis.measure.Case` for one training step of ``arch`` under preset ``mode``
    (``compiled``: True or a backend name, of ``torch.compile(model)``, without memory columns;
    module docstring).

    ``mode`` is parsed here: a preset that is not offered for ``command`` or does not build
    ``arch`` raises ``ValueError`` naming the ones that do. Weights come from ``seed`` (equal in
    every mode), the input is uniform in [0, 1) and the loss is cross-entropy against fixed labels,
    all seeded. A missing dependency (SpikingJelly) is an error row when measured.
    """
    import torch
    import torch.nn.functional as F

    from .. import strategy
    from ..analysis.measure import Case, parse_dtype
    from ..models import DEFAULT_IN_CHANNELS, build

    from ..conversion import is_user_model, user_modes, user_network

    user = is_user_model(arch)
    preset = (strategy.get(user_modes(command, [mode])[0]) if user
              else strategy.parse(mode, arch=arch, command=command))
    tdtype, dev = parse_dtype(dtype), torch.device(device)
    backend = _compile_backend(compiled)
    suffix = ("" if backend is None else " (compiled)" if backend == "inductor"
              else f" (compiled, {backend})")
    in_channels = DEFAULT_IN_CHANNELS.get(arch, 3) if in_channels is None else int(in_channels)
    g = torch.Generator().manual_seed(seed + 1)
    image = torch.rand(batch, in_channels, image_size, image_size, generator=g)
    labels = torch.randint(0, num_classes, (batch,), generator=g).to(dev)

    def make_input():
        return image.to(dev, tdtype)

    def build_model():
        ok, why = preset.available()
        if not ok:
            raise ImportError(why)
        if user:                               # a user's network, converted (revsnn.conversion)
            model = user_network(arch, preset, num_classes=num_classes, in_channels=in_channels,
                                 T=T, seed=seed, node_kwargs=node_kwargs, **arch_kwargs)
        else:
            model = build(arch, preset, num_classes=num_classes, in_channels=in_channels,
                          node_kwargs=node_kwargs, T=T, seed=seed, example=make_input,
                          memopt_level=memopt_level, **arch_kwargs)
        model = model.to(dev, tdtype).train()
        return model if backend is None else torch.compile(model, backend=backend)

    return Case(build_model, make_input, loss_fn=lambda out: F.cross_entropy(out, labels),
                device=dev, memory=backend is None, first_step=backend is not None,
                compiled=backend is not None, compile_backend=backend or "",
                kind="network", mode=preset.name, label=preset.label + suffix, arch=arch, T=T,
                batch=batch, shape=f"[{batch}, {in_channels}, {image_size}, {image_size}]",
                dtype=str(tdtype).replace("torch.", ""), image_size=image_size,
                num_classes=num_classes)


def _prediction(arch, mode, T, batch, image_size, num_classes, dtype, in_channels, node_kwargs):
    from .. import strategy
    from ..analysis.memory_model import predict_total

    from ..conversion import is_user_model

    preset = strategy.get(mode)
    if is_user_model(arch) or preset.strategy.baseline == "memopt" or not preset.available()[0]:
        return math.nan                       # memopt's checkpoints are not modelled
    return predict_total(arch, preset, T=T, batch=batch, image_size=image_size, dtype=dtype,
                         in_channels=in_channels, num_classes=num_classes,
                         node_kwargs=node_kwargs)


def _peak_prediction(arch, row, T, batch, image_size, num_classes, in_channels, node_kwargs):
    """The analytic activation peak of a time-major row (NaN for the other presets)."""
    from .. import strategy
    from ..models import DEFAULT_IN_CHANNELS, build
    from ..temporal import TemporalNetwork
    from ..temporal.memory import predict_peak_bytes

    import torch

    from ..conversion import is_user_model

    if not is_ok(row) or strategy.get(row["mode"]).strategy.schedule != "temporal":
        return math.nan
    c = DEFAULT_IN_CHANNELS.get(arch, 3) if in_channels is None else int(in_channels)
    if is_user_model(arch):                           # a user's network, rebuilt time-major
        from ..conversion import user_network
        model = user_network(arch, row["mode"], num_classes=num_classes, in_channels=c, T=T,
                             node_kwargs=node_kwargs).net
    else:
        model = build(arch, row["mode"], num_classes=num_classes, in_channels=c,
                      node_kwargs=node_kwargs, T=T)
    if not isinstance(model, TemporalNetwork):        # another engine's time-major preset
        return math.nan
    return predict_peak_bytes(model, torch.zeros(batch, c, image_size, image_size))


def add_ratios(rows: Sequence[dict]) -> list:
    """Fill the ratio columns of one block of rows (same arch, T, batch) in place; returns rows."""
    by_mode = {r["mode"]: r for r in rows if r.get("compiled") is not True}   # eager baselines

    sj, bptt = by_mode.get("spikingjelly"), by_mode.get("bptt")
    for r in rows:
        good = is_ok(r)
        for col, key in (("saved_ratio", "saved_bytes"), ("act_ratio", "act_bytes"),
                         ("peak_ratio", "peak_bytes"), ("act_peak_ratio", "act_peak_bytes")):
            r[col] = safe_ratio(sj[key], r[key]) if good and is_ok(sj) else math.nan
        r["step_ratio"] = safe_ratio(r["step_ms"], sj["step_ms"]) if good and is_ok(sj) else math.nan
        r["step_vs_bptt"] = (safe_ratio(r["step_ms"], bptt["step_ms"]) if good and is_ok(bptt)
                             else math.nan)
        fused = by_mode.get("fused")
        r["step_vs_fused"] = (safe_ratio(r["step_ms"], fused["step_ms"])
                              if good and is_ok(fused) else math.nan)
        eager = by_mode.get(r["mode"])
        r["compile_speedup"] = (safe_ratio(eager["step_ms"], r["step_ms"])
                                if r.get("compiled") is True and good and is_ok(eager)
                                else math.nan)
        r.setdefault("compile_seconds", math.nan)
    return list(rows)


def measure_network(arch: str = "vgg11", modes: Optional[Sequence] = None, T: int = 8,
                    batch: int = 16, image_size: int = 32, num_classes: int = 10,
                    dtype="float32", device="cpu", repeats: int = 5, warmup: int = 1,
                    on_row=None, *, track_memory: bool = True, in_channels=None,
                    node_kwargs: Optional[dict] = None, seed: int = 0,
                    memopt_level: int = 1, compile=False, **arch_kwargs) -> list:
    """Measure one training step of ``arch`` under every preset in ``modes``; one tidy row each
    (with ``compile``, True or a ``torch.compile`` backend name, two: eager, then compiled; see
    the module docstring).

    ``modes`` defaults to :func:`revsnn.strategy.defaults` for ``network``; a preset that does not build ``arch`` raises
    ``ValueError`` before anything runs. Rows have :data:`revsnn.analysis.measure.COLUMNS`
    (kind="network") plus ``predicted_saved_bytes`` and the ratio columns (see the module
    docstring). A mode that fails or runs out of memory is a row with status "error"/"oom".
    ``on_row`` is called with each finished row.
    """
    from .. import strategy
    from ..analysis.measure import measure_cases

    from ..conversion import is_user_model, user_modes

    if is_user_model(arch):                      # a user's network: the modes it converts to
        modes = user_modes("network", modes)
    modes = strategy.defaults("network", arch) if modes is None else list(modes)
    for name, val in (("T", T), ("batch", batch), ("image_size", image_size)):
        if int(val) < 1:
            raise ValueError(f"measure_network: {name} must be >= 1, got {val}")
    variants = (False, _compile_backend(compile)) if compile else (False,)
    cases = [network_case(arch, m, T=T, batch=batch, image_size=image_size,
                          num_classes=num_classes, dtype=dtype, device=device,
                          in_channels=in_channels, node_kwargs=node_kwargs, seed=seed,
                          memopt_level=memopt_level, compiled=c, **arch_kwargs)
             for m in modes for c in variants]
    with _compile_context(bool(compile), len(cases)):
        rows = measure_cases(cases, repeats=repeats, warmup=warmup, track_memory=track_memory)
    for r in rows:
        if r.get("compiled") is True:              # no memory measured, so nothing to predict
            r["predicted_saved_bytes"] = r["predicted_act_peak_bytes"] = math.nan
            continue
        try:
            r["predicted_saved_bytes"] = _prediction(arch, r["mode"], T, batch, image_size,
                                                     num_classes, dtype, in_channels, node_kwargs)
        except Exception:  # noqa: BLE001 - a prediction never hides a measurement
            r["predicted_saved_bytes"] = math.nan
        r["predicted_act_peak_bytes"] = _peak_prediction(arch, r, T, batch, image_size,
                                                         num_classes, in_channels, node_kwargs)
    add_ratios(rows)
    if on_row is not None:
        for r in rows:
            on_row(r)
    return rows


def _compile_backend(compiled) -> Optional[str]:
    """``None`` (eager) for False/None, ``"inductor"`` for True, else the backend name given."""
    if compiled is None or compiled is False:
        return None
    return "inductor" if compiled is True else str(compiled)


def _compile_context(compile: bool, cases: int):
    """For a run with compiled rows: dynamo traces the nodes' ``autograd.grad``
    (:func:`~revsnn.nodes.compiled.tracing_autograd`), and one forward code compiled for several
    models stays under the recompile limit (past it, dynamo would silently run eagerly)."""
    import contextlib

    import torch

    from ..nodes.compiled import tracing_autograd

    stack = contextlib.ExitStack()
    if compile:
        stack.enter_context(tracing_autograd())
        limit = max(torch._dynamo.config.recompile_limit, 2 * cases)
        stack.enter_context(torch._dynamo.config.patch(recompile_limit=limit))
    return stack


def network_sweep(archs: Sequence[str], modes: Sequence, Ts: Sequence[int],
                  batches: Sequence[int], *, on_rows=None, stop=None, measure=None,
                  **kw) -> list:
    """:func:`measure_network` over every (arch, T, batch), each architecture with those of
    ``modes`` that build it; one row per mode and configuration.

    ``on_rows(rows, done, total)`` is called after each configuration with its rows; ``stop()``
    is checked before each one (True ends the sweep early). A configuration that raises becomes
    one error row per mode. ``measure`` replaces :func:`measure_network` (same signature).
    """
    from .. import strategy
    from ..analysis.measure import failure_row

    measure = measure or measure_network
    configs = [(a, T, b) for a in archs for T in Ts for b in batches]
    rows: list = []
    for i, (arch, T, batch) in enumerate(configs):
        if stop is not None and stop():
            break
        from ..conversion import convertible, is_user_model

        fits = [strategy.get(m) for m in modes
                if (convertible(strategy.get(m)) if is_user_model(arch)
                    else strategy.get(m).supports(arch))]
        names = [p.name for p in fits]
        try:
            new = measure(arch, names, T=T, batch=batch, **kw)
        except Exception as exc:  # noqa: BLE001 - a configuration that fails is rows
            new = [failure_row(exc, kind="network", arch=arch, T=T, batch=batch, mode=p.name,
                               label=p.label, dtype=kw.get("dtype", "float32"),
                               device=str(kw.get("device", "cpu"))) for p in fits]
        rows += list(new)
        if on_rows is not None:
            on_rows(list(new), i + 1, len(configs))
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
    compiled = any(r.get("compiled") is True for r in rows)
    headers = (["mode", "act peak", "model peak", "act peak ×SJ", "saved", "model", "peak"]
               + (["cuda peak"] if cuda else [])
               + ["fwd ms", "bwd ms", "step ms", "saved ×SJ", "step/SJ", "step/BPTT"]
               + (["×compile", "compile s"] if compiled else []))
    table = []
    for r in rows:
        if not is_ok(r):
            table.append([r["label"], failure_text(r)])
            continue
        table.append([r["label"], human_bytes(r.get("act_peak_bytes")),
                      human_bytes(r.get("predicted_act_peak_bytes")),
                      fmt_ratio(r.get("act_peak_ratio")), human_bytes(r["saved_bytes"]),
                      human_bytes(r.get("predicted_saved_bytes")), human_bytes(r["peak_bytes"])]
                     + ([human_bytes(r.get("cuda_peak_bytes"))] if cuda else [])
                     + [fmt_ms(r["fwd_ms"]), fmt_ms(r["bwd_ms"], r["bwd_ms_iqr"]),
                        fmt_ms(r["step_ms"]), fmt_ratio(r.get("saved_ratio")),
                        fmt_ratio(r.get("step_ratio")), fmt_ratio(r.get("step_vs_bptt"))]
                     + ([fmt_ratio(r.get("compile_speedup")), _fmt_seconds(r)] if compiled
                        else []))
    lines = [title, format_table(headers, table, align="<" + ">" * (len(headers) - 1))]
    speedups = [f"{r['label'].partition(' (compiled')[0]} {fmt_ratio(r['compile_speedup'])}"
                for r in rows if r.get("compiled") is True and is_ok(r)
                and not is_missing(r.get("compile_speedup"))]
    if speedups:
        lines.append("torch.compile speed-up (eager step / compiled step): " + ", ".join(speedups))
    by_mode = {r["mode"]: r for r in rows if r.get("compiled") is not True}
    r = by_mode.get("temporal")
    if is_ok(r) and not is_missing(r.get("act_peak_ratio")):
        pred = r.get("predicted_act_peak_bytes")
        model = ("" if is_missing(pred) else
                 f" (analytic model {human_bytes(pred)}, {100 * (pred / r['act_peak_bytes'] - 1):+.1f}%)")
        lines.append(f"{r['label']}: activation peak {fmt_ratio(r['act_peak_ratio'])} below "
                     f"SpikingJelly's{model}; step time {fmt_ratio(r['step_ratio'])} of "
                     f"SpikingJelly's, {fmt_ratio(r['step_vs_fused'])} of fused")
    for mode in ("fused", "revnet"):
        r = by_mode.get(mode)
        if is_ok(r) and not is_missing(r.get("saved_ratio")):
            lines.append(f"{r['label']}: {fmt_ratio(r['saved_ratio'])} fewer saved bytes and "
                         f"{fmt_ratio(r['peak_ratio'])} lower peak than SpikingJelly; step time "
                         f"{fmt_ratio(r['step_vs_bptt'])} of LIF BPTT")
            break
    return "\n".join(lines)


def _fmt_seconds(row: dict) -> str:
    v = row.get("compile_seconds")
    return MISSING if is_missing(v) else f"{float(v):.1f}"
