"""``revsnn bench budget``: the largest batch (and, at a fixed batch, the largest T) that each memory
mode trains in a memory budget.

What is measured
----------------
The peak memory of one training step (forward, cross-entropy loss, backward; no optimizer state),
*including* parameters and gradients, since they share the budget:

- CUDA: ``torch.cuda.max_memory_allocated`` over the step (the caching allocator's own count).
- CPU: the peak of live tensor storage bytes, tracked at the dispatcher (every tensor an operator
  creates is counted until its storage is freed; parameters, buffers and existing gradients are
  counted from the start). This is what ``torch.distributed._tools.mem_tracker.MemTracker`` tracks
  too, without its per-module bookkeeping, which makes it several times slower on the reversible
  modes' many small per-step operations.

How it searches
---------------
Memory grows linearly in the batch (and in T): peak(b) ≈ P + a·b. The search measures b = 1 and 2,
extrapolates the line to the budget, measures there, and then confirms the boundary b*, b* + 1
(peak(b*) ≤ budget < peak(b* + 1)) by secant steps through the two measurements nearest the budget,
falling back to bisection/doubling when the line is off. Usually 4 measurements, two of them at the
boundary. An out-of-memory error at a probe counts as "does not fit" and is recorded.

What keeps the machine safe
---------------------------
A budget above what the device has is capped to it (:func:`effective_budget`: 80% of the memory
available when the search starts; the row's ``error`` column and the command say so), and every
probe runs under :func:`revsnn.analysis.memory_guard.memory_guard`, which makes an allocation past
90% of the available memory fail with a catchable error instead of a process the kernel's
out-of-memory killer ends (NOTE [memory guard]); a probe whose peak the line through the measured
ones predicts above that is not run at all. Such probes count as "does not fit". A model whose
step at batch 1 (or T = 1) does not fit is a row with status ``oom`` that says so.

Rows (one per mode and search) have columns :data:`COLUMNS`; ``batch_ratio`` / ``T_ratio`` are
the mode's maximum over SpikingJelly's (higher = fits more).
"""

from __future__ import annotations

import math
import re
import time
from contextlib import nullcontext
from typing import Callable, Optional, Sequence

from ..analysis.measure import step_peak_bytes
from .report import failure_text, fmt_ratio, format_table, human_bytes, is_ok, safe_ratio

__all__ = ["parse_bytes", "step_peak_bytes", "search_max", "max_batch",
           "max_T", "budget_search", "format_budget_table", "effective_budget", "COLUMNS",
           "BUDGET_SHARE", "GUARD_SHARE"]

BUDGET_SHARE = 0.8
"""A budget is capped to this share of the memory available when the search starts."""
GUARD_SHARE = 0.9
"""A probe may allocate at most this share of the memory available when the search starts."""

COLUMNS = ["kind", "search", "mode", "label", "arch", "budget_bytes", "T", "batch", "image_size",
           "dtype", "device", "device_name", "torch_version", "max_value", "peak_at_max",
           "peak_above_max", "predicted_max", "predicted_by", "n_probes", "probes", "metric",
           "seconds", "ratio_vs_spikingjelly", "status", "error"]

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000 ** 2, "mb": 1000 ** 2, "g": 1000 ** 3,
          "gb": 1000 ** 3, "t": 1000 ** 4, "tb": 1000 ** 4, "kib": 1024, "mib": 1024 ** 2,
          "gib": 1024 ** 3, "tib": 1024 ** 4}


def parse_bytes(text) -> int:
    """``"8GiB"`` → 8589934592; binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB, TB) units.

    >>> parse_bytes("2GiB"), parse_bytes("512 MiB"), parse_bytes("1.5GB"), parse_bytes(4096)
    (2147483648, 536870912, 1500000000, 4096)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"cannot parse a memory size from {text!r}; use e.g. 8GiB, 512MiB, "
                             f"2GB or a number of bytes")
        value, unit = float(m.group(1)), m.group(2).lower()
    n = int(value * _UNITS[unit])
    if n <= 0:
        raise ValueError(f"a memory budget must be positive, got {text!r}")
    return n


# -- the search ----------------------------------------------------------------------------------

def search_max(peak_at: Callable[[int], float], budget: int, *, start=(1, 2),
               limit: int = 1 << 20, max_probes: int = 32, guess: Optional[int] = None) -> dict:
    """Largest integer v with ``peak_at(v) <= budget``, assuming peak_at grows (about linearly).

    ``peak_at`` returns bytes, or ``math.inf`` for a probe that ran out of memory. Extrapolates the
    line through the two largest probes until a probe fails, then narrows the bracket by regula
    falsi (Illinois rule; bisection next to an OOM) until the boundary v, v + 1 is measured.
    ``guess`` (an analytic memory model's answer) is measured first, with its neighbour above (or
    below, when the guess does not fit): a right guess confirms the boundary in two probes, a wrong
    one only narrows the bracket. Returns ``{"max": v (0 if even start[0] does not fit),
    "predicted": ``guess`` or else the extrapolation from the first two probes, "probes":
    {v: bytes}, "exact": whether v + 1 was measured not to fit}``.

    >>> r = search_max(lambda b: 100 + 10 * b, 1000)
    >>> r["max"], r["predicted"], sorted(r["probes"]), r["exact"]
    (90, 90, [1, 2, 90, 91], True)
    >>> r = search_max(lambda b: 100 + 10 * b, 1000, guess=89)
    >>> r["max"], r["predicted"], sorted(r["probes"]), r["exact"]
    (90, 89, [1, 2, 89, 90, 91], True)
    """
    probes: dict = {}

    def probe(v):
        if v not in probes:
            probes[v] = float(peak_at(v))
        return probes[v]

    a, b = start
    if probe(a) > budget:
        return dict(max=0, predicted=0, probes=probes, exact=True)
    lo, hi = a, None
    if probe(b) > budget:
        hi = b
    else:
        lo = b
    predicted = _cross((a, probes[a]), (b, probes[b]), budget, default=lo)
    if guess is not None and hi is None:
        predicted = guess = min(max(int(guess), lo + 1), limit)
        for v in (guess, guess + 1) if probe(guess) <= budget else (guess, guess - 1):
            if v <= lo or v > limit or (hi is not None and v >= hi):
                continue
            if probe(v) <= budget:
                lo = v
            else:
                hi = v
    f_hi0 = probes[hi] - budget if hi is not None else math.nan
    # Inside the bracket: regula falsi on f(v) = peak(v) − budget with the Illinois rule (an end
    # kept twice in a row has its f halved), bisection while the failing end is an OOM (f = ∞).
    f_hi, last_side = f_hi0, None
    while (hi is None or hi - lo > 1) and len(probes) < max_probes:
        if hi is None:                                   # extrapolate from the two largest fits
            fits = sorted(probes)[-2:]
            guess = _cross((fits[0], probes[fits[0]]), (fits[1], probes[fits[1]]), budget,
                           default=2 * lo)
            guess = min(max(guess, lo + 1), limit)
            if guess <= lo:
                break                                    # the limit itself fits
        elif math.isfinite(f_hi):
            f_lo = probes[lo] - budget
            guess = int(math.floor(lo + (-f_lo) * (hi - lo) / (f_hi - f_lo)))
            guess = min(max(guess, lo + 1), hi - 1)
        else:
            guess = (lo + hi) // 2
        m = probe(guess)
        side = "lo" if m <= budget else "hi"
        if side == "lo":
            lo = guess
            if last_side == "lo" and math.isfinite(f_hi):
                f_hi /= 2                                # Illinois: the kept end weighs less
        else:
            hi, f_hi = guess, m - budget
        last_side = side
    return dict(max=lo, predicted=predicted, probes=probes,
                exact=hi is not None and hi - lo == 1)


def _cross(p1, p2, budget: float, default: int) -> int:
    """Where the line through measurements p1 = (v1, m1), p2 = (v2, m2) reaches the budget."""
    (v1, m1), (v2, m2) = p1, p2
    if v1 == v2 or not (math.isfinite(m1) and math.isfinite(m2)) or m2 <= m1:
        return default
    return int(math.floor(v1 + (budget - m1) * (v2 - v1) / (m2 - m1)))


def effective_budget(budget: int, device="cpu") -> tuple:
    """``(budget, note)``: ``budget`` capped to :data:`BUDGET_SHARE` of the memory ``device`` has
    available now, and a sentence saying so when it was capped (else ``""``)."""
    from ..analysis.memory_guard import device_memory

    total, available = device_memory(device)
    cap = int(available * BUDGET_SHARE)
    if budget <= cap:
        return int(budget), ""
    return cap, (f"budget {human_bytes(budget)} capped to {human_bytes(cap)}: "
                 f"{BUDGET_SHARE:.0%} of the {human_bytes(available)} the {torch_device(device)} "
                 f"has available ({human_bytes(total)} in all)")


def torch_device(device) -> str:
    import torch
    dev = torch.device(device)
    return "CPU" if dev.type == "cpu" else str(dev)


def _probe_fn(arch, mode, *, T, batch, image_size, num_classes, dtype, device, in_channels,
              node_kwargs, seed, memopt_level, vary: str, allowance: int = 0, on_probe=None):
    """``peak_at(v)`` for ``vary`` = "batch" or "T" on one model built once.

    ``on_probe(v, seconds)``, when given, is called before each probe that runs, with the time
    the probe should take at the rate of the largest one so far (``None`` before the first):
    a step's time grows about linearly in the batch and in T."""
    import torch
    import torch.nn.functional as F

    from ..analysis.measure import is_oom, parse_dtype
    from ..analysis.memory_guard import memory_guard
    from .network import network_case

    dev, tdtype = torch.device(device), parse_dtype(dtype)
    case = network_case(arch, mode, T=T or 1, batch=1, image_size=image_size,
                        num_classes=num_classes, dtype=dtype, device=dev,
                        in_channels=in_channels, node_kwargs=node_kwargs, seed=seed,
                        memopt_level=memopt_level, command="budget")
    model = case.build()
    channels = int(case.meta["shape"].strip("[]").split(",")[1])

    measured: dict = {}
    timed: dict = {}

    def peak_at(v: int) -> float:
        if allowance and _predicted(measured, v) > allowance:
            return math.inf                     # would pass the guard: not run (NOTE above)
        if on_probe is not None:
            ref = max(timed, default=None)
            on_probe(v, None if ref is None else timed[ref] * v / ref)
        t0 = time.perf_counter()
        b, t = (v, T) if vary == "batch" else (batch, v)
        model.encoder.T = t
        g = torch.Generator().manual_seed(seed + 1)
        try:
            with memory_guard(allowance) if allowance and dev.type == "cpu" else nullcontext():
                image = torch.rand(b, channels, image_size, image_size, generator=g)
                labels = torch.randint(0, num_classes, (b,), generator=g).to(dev)
                peak = step_peak_bytes(model, lambda: image.to(dev, tdtype),
                                       lambda out: F.cross_entropy(out, labels), dev)
        except Exception as exc:  # noqa: BLE001 - OOM means "does not fit"; others propagate
            if is_oom(exc):
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                return math.inf
            raise
        measured[v] = peak
        timed[v] = time.perf_counter() - t0
        return peak

    peak_at.guess = lambda budget, limit: _model_guess(model, vary, T=T, batch=batch,
                                                       channels=channels, image_size=image_size,
                                                       budget=budget, limit=limit, dtype=tdtype)
    return peak_at


def _model_guess(model, vary: str, *, T, batch, channels, image_size, budget, limit,
                 dtype) -> Optional[int]:
    """The analytic memory model's answer for a time-major network (``None`` for other modes):
    the largest v whose predicted step peak (parameters, buffers, their gradients and the
    predicted activation peak) fits ``budget``. Linear in T exactly; in the batch, a line through
    batches 64 and 128 refined by bisection on the model (each evaluation is one no-grad step)."""
    import torch

    from ..analysis.measure import _fixed_bytes
    from ..temporal import TemporalNetwork
    from ..temporal.memory import predict_peak_bytes

    if isinstance(getattr(model, "net", None), TemporalNetwork):
        model = model.net                           # a user's network, rebuilt time-major
    if not isinstance(model, TemporalNetwork):
        return None
    fixed = _fixed_bytes(model)

    def total(v: int) -> int:
        b, t = (v, T) if vary == "batch" else (batch, v)
        x = torch.zeros(b, channels, image_size, image_size, dtype=dtype,
                        device=next(model.parameters()).device)
        return fixed + predict_peak_bytes(model, x, T=t)

    v1, v2 = (1, 2) if vary == "T" else (64, 128)
    m1, m2 = total(v1), total(v2)
    if m2 <= m1:
        return None
    g = int(v1 + (budget - m1) * (v2 - v1) // (m2 - m1))
    g = max(1, min(g, limit))
    if vary == "T":
        return g
    lo, hi = (g, None) if total(g) <= budget else (None, g)      # bracket [lo fits, hi does not]
    step = max(1, g // 16)
    while lo is None or hi is None:
        if lo is None:
            c = max(1, hi - step)
            if total(c) <= budget or c == 1:
                lo = c
            else:
                hi = c
        else:
            c = min(limit, lo + step)
            if c == lo:
                return lo
            if total(c) <= budget:
                lo = c
            else:
                hi = c
        step *= 2
    while hi - lo > 1:
        c = (lo + hi) // 2
        lo, hi = (c, hi) if total(c) <= budget else (lo, c)
    return lo


def _predicted(measured: dict, v: int) -> float:
    """The peak at ``v`` on the line through the two largest measured probes (0 with fewer)."""
    if len(measured) < 2:
        return 0.0
    (v1, m1), (v2, m2) = sorted(measured.items())[-2:]
    return m2 + (m2 - m1) / (v2 - v1) * (v - v2) if v > v2 else 0.0


def _search_row(arch, mode, budget, vary, *, T, batch, image_size, num_classes=10,
                dtype="float32", device="cpu", in_channels=None, node_kwargs=None, seed=0,
                memopt_level=1, limit=None, on_probe=None) -> dict:
    import torch

    from .. import strategy
    from ..analysis.measure import device_name, parse_dtype

    from ..conversion import is_user_model, user_modes

    preset = (strategy.get(user_modes("budget", [mode])[0]) if is_user_model(arch)  # refused
              else strategy.parse(mode, arch=arch, command="budget"))           # before any row
    mode = preset.name
    dev = torch.device(device)
    row = {c: math.nan for c in COLUMNS}
    row.update(kind="budget", search=vary, mode=mode, label=preset.label, arch=arch,
               budget_bytes=int(budget), T=T if vary == "batch" else math.nan,
               batch=batch if vary == "T" else math.nan, image_size=image_size,
               dtype=str(parse_dtype(dtype)).replace("torch.", ""), device=str(dev),
               device_name=device_name(dev), torch_version=torch.__version__,
               metric=("cuda max_memory_allocated" if dev.type == "cuda"
                       else "live tensor bytes (dispatcher-tracked)"),
               status="ok", error="")
    t0 = time.perf_counter()
    from ..analysis.memory_guard import device_memory
    budget, capped = effective_budget(int(budget), dev)
    row["budget_bytes"] = budget
    allowance = int(device_memory(dev)[1] * GUARD_SHARE)
    try:
        peak_at = _probe_fn(arch, mode, T=T, batch=batch, image_size=image_size,
                            num_classes=num_classes, dtype=dtype, device=dev,
                            in_channels=in_channels, node_kwargs=node_kwargs, seed=seed,
                            memopt_level=memopt_level, vary=vary, allowance=allowance,
                            on_probe=None if on_probe is None else
                            (lambda v, sec: on_probe(vary, preset.label, v, sec)))
        lim = limit or (1 << 20)
        guess = peak_at.guess(budget, lim)
        res = search_max(peak_at, budget, limit=lim, guess=guess)
        row["predicted_by"] = ("memory model" if guess is not None
                               else "line through the first two probes")
    except Exception as exc:  # noqa: BLE001 - a failing mode is a row
        from ..analysis.measure import is_oom
        row.update(status="oom" if is_oom(exc) else "error",
                   error=f"{type(exc).__name__}: {exc}"[:500])
        row["seconds"] = time.perf_counter() - t0
        return row
    v = res["max"]
    row.update(max_value=v, predicted_max=res["predicted"], n_probes=len(res["probes"]),
               peak_at_max=res["probes"].get(v, math.nan),
               peak_above_max=res["probes"].get(v + 1, math.nan),
               probes=" ".join(f"{k}:{int(m) if math.isfinite(m) else 'OOM'}"
                               for k, m in sorted(res["probes"].items())),
               seconds=time.perf_counter() - t0)
    if vary == "batch":
        row["batch"] = v
    else:
        row["T"] = v
    notes = [capped] if capped else []
    if v == 0:
        first = res["probes"].get(1, math.inf)
        at = (f"peaks at {human_bytes(first)}" if math.isfinite(first)
              else "runs out of memory")
        row["status"] = "oom"
        notes.insert(0, f"the model itself does not fit: one training step at {vary} = 1 {at}, "
                        f"above the budget {human_bytes(budget)}; give a larger budget or a "
                        f"smaller configuration (image size, T, batch)")
    elif limit and v >= limit:
        notes.append(f"the probe limit {limit} itself fits: the maximum is at least {limit}")
    elif not res["exact"]:
        notes.append("boundary not confirmed within the probe limit")
    row["error"] = "; ".join(notes)
    return row


def max_batch(arch: str, mode: str, budget_bytes, T: int = 8, *, image_size: int = 32,
              num_classes: int = 10, dtype="float32", device="cpu", **kw) -> dict:
    """Largest batch of ``arch`` in ``mode`` whose training step peaks within ``budget_bytes``.

    Returns a row (:data:`COLUMNS`) with ``max_value`` = the batch (0 if batch 1 does not fit).
    """
    return _search_row(arch, mode, parse_bytes(budget_bytes), "batch", T=T, batch=None,
                       image_size=image_size, num_classes=num_classes, dtype=dtype,
                       device=device, **kw)


def max_T(arch: str, mode: str, budget_bytes, batch: int = 16, *, image_size: int = 32,
          num_classes: int = 10, dtype="float32", device="cpu", **kw) -> dict:
    """Largest number of timesteps of ``arch`` in ``mode`` at ``batch`` within ``budget_bytes``."""
    return _search_row(arch, mode, parse_bytes(budget_bytes), "T", T=None, batch=batch,
                       image_size=image_size, num_classes=num_classes, dtype=dtype,
                       device=device, **kw)


def budget_search(arch: str = "vgg11", modes: Optional[Sequence] = None, budget="2GiB", *,
                  T: int = 8, batch: Optional[int] = 16, searches=("batch", "T"),
                  on_row=None, **kw) -> list:
    """Rows of :func:`max_batch` (at ``T``) and :func:`max_T` (at ``batch``) for every mode, with
    ``ratio_vs_spikingjelly`` filled in.

    ``on_row(row)`` is called after each search, ``on_probe(search, label, v, seconds)`` before
    each probe (``seconds``: its expected duration, ``None`` when unknown; a probe of a long
    search can take many minutes on a CPU).

    ``modes`` defaults to :func:`revsnn.strategy.defaults` for ``budget``; every mode is parsed
    before the first search, so one that does not build ``arch`` raises ``ValueError`` (naming
    those that do) instead of becoming an error row.
    """
    from .. import strategy

    budget = parse_bytes(budget)
    from ..conversion import is_user_model, user_modes

    if is_user_model(arch):                  # a network of your own (module:factory), converted
        modes = user_modes("budget", modes)
    else:
        modes = (strategy.defaults("budget", arch) if modes is None else
                 [p.name for p in strategy.parse_many(modes, arch=arch, command="budget")])
    rows = []
    for vary in searches:
        block = []
        for mode in modes:
            row = (max_batch(arch, mode, budget, T=T, **kw) if vary == "batch"
                   else max_T(arch, mode, budget, batch=batch, **kw))
            block.append(row)
            if on_row is not None:
                on_row(row)
        sj = next((r for r in block if r["mode"] == "spikingjelly" and is_ok(r)), None)
        for r in block:
            ok = is_ok(r) and sj is not None
            r["ratio_vs_spikingjelly"] = safe_ratio(r["max_value"], sj["max_value"]) if ok \
                else math.nan
        rows += block
    return rows


def format_budget_table(rows: Sequence[dict]) -> str:
    out = []
    for vary in ("batch", "T"):
        block = [r for r in rows if r["search"] == vary]
        if not block:
            continue
        f = block[0]
        fixed = f"T={f['T']}" if vary == "batch" else f"batch={f['batch']}"
        title = (f"largest {vary} within {human_bytes(f['budget_bytes'])}: {f['arch']}, {fixed}, "
                 f"{f['image_size']}×{f['image_size']}, {f['dtype']}, {f['device']} "
                 f"({f['metric']})")
        headers = ["mode", f"max {vary}", "peak at max", "peak at max+1", "predicted", "probes",
                   "×SJ", "search time (s)"]
        table = []
        for r in block:
            if not is_ok(r):
                table.append([r["label"], failure_text(r, width=240)])
                continue
            table.append([r["label"], str(int(r["max_value"])), human_bytes(r["peak_at_max"]),
                          human_bytes(r["peak_above_max"]), str(int(r["predicted_max"])),
                          str(int(r["n_probes"])), fmt_ratio(r["ratio_vs_spikingjelly"]),
                          f"{r['seconds']:.0f}"])
        out += [title, format_table(headers, table, align="<" + ">" * (len(headers) - 1)), ""]
    return "\n".join(out).rstrip()
