"""Measurement as library code: saved bytes, tracked and peak memory, forward/backward time.

Every measurement returns a *tidy row* (a plain dict, one per configuration) with the columns in
:data:`COLUMNS`; :func:`to_frame` turns rows into a pandas DataFrame. An out-of-memory run or an
error becomes a row with ``status="oom"`` / ``"error"``, never an exception.

What is counted
---------------
- ``saved_bytes``: bytes that autograd saves for backward during the forward, counted with
  ``torch.autograd.graph.saved_tensors_hooks`` and deduplicated by storage. Storages shared with
  the measured input, with the output, or with parameters are reported separately
  (``saved_input_bytes``, ``saved_output_bytes``, ``saved_param_bytes``): in a network the next layer
  stores the output anyway, so only ``saved_bytes`` is the piece's own cost. The hooks do not see
  what ``torch.utils.checkpoint`` keeps in its own frame, so:
- ``act_bytes``: activation bytes alive after the forward, tracked at the allocator level by
  ``torch.distributed._tools.mem_tracker.MemTracker`` (works on CPU; inputs are created inside the
  tracked region). ``peak_bytes``: its peak over forward + backward.
- ``act_peak_bytes``: the **activation peak**, the peak of live tensor storage over the whole step
  (forward, loss, backward) minus the parameters, buffers and parameter gradients, which are the
  same in every strategy. Counted at the dispatcher (:func:`step_peak_bytes`: every storage an
  operator creates is counted until it is freed), which, unlike MemTracker, also follows modules
  that run T times in one step (the time-major strategy); on CUDA from
  ``torch.cuda.max_memory_allocated``. The headline memory figure.
- ``cuda_peak_bytes``: ``torch.cuda.max_memory_allocated`` over the step (NaN on CPU).
- times: medians over ``repeats`` runs after ``warmup`` runs, with ``torch.cuda.synchronize`` /
  CUDA events on GPU. The spread of each time is its interquartile range: ``fwd_ms_q1`` …
  ``fwd_ms_q3`` (and ``bwd_``, ``step_``), with the width in ``bwd_ms_iqr``, ``fwd_ms_iqr``,
  ``step_ms_iqr``; below 4 repeats the quartiles are the minimum and the maximum.
- ``backend``: what ran the nodes' loops over T, read from the nodes after the run
  (:func:`backend_of`): ``torch`` or ``triton`` (NOTE [backends] in :mod:`revsnn.kernels`), both
  joined by ``+`` when a network mixes them, ``spikingjelly:<implementation>`` for SpikingJelly's
  node (its CUDA implementation as SpikingJelly reports it, ``cpu`` on CPU).
- ``compiled``: whether the module ran under ``torch.compile`` (its times then exclude the
  compilation, which the warmup runs absorb).
- ``compile_seconds`` (a case built with ``first_step=True``): the wall time of the first training
  step, run right after building, before anything else: for a compiled module, dynamo's tracing
  and Inductor's compilation of forward and backward plus one step. A case built with
  ``memory=False`` leaves every memory column empty (NaN): ``torch.compile`` does not run its
  compiled code while a ``TorchDispatchMode`` (:class:`LiveStorage`, MemTracker) is active, so those
  trackers would count the eager model, and saved-tensor hooks change what dynamo traces.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import torch
from torch import nn

__all__ = [
    "COLUMNS", "SavedBytes", "saved_tensor_bytes", "Case", "measure_cases", "measure",
    "node_case", "measure_node", "measure_nodes", "node_factory", "to_frame", "device_name",
    "is_oom", "parse_dtype", "parse_device", "environment", "failure_row", "step_peak_bytes",
    "activation_peak_bytes", "LiveStorage", "backend_of",
]

COLUMNS = [
    "kind", "mode", "label", "arch", "T", "batch", "shape", "dtype", "device", "device_name",
    "torch_version", "saved_bytes", "saved_input_bytes", "saved_output_bytes", "saved_param_bytes",
    "act_bytes", "peak_bytes", "act_peak_bytes", "cuda_peak_bytes", "fwd_ms", "bwd_ms", "bwd_ms_iqr",
    "step_ms", "fwd_ms_iqr", "step_ms_iqr", "fwd_ms_q1", "fwd_ms_q3", "bwd_ms_q1", "bwd_ms_q3",
    "step_ms_q1", "step_ms_q3", "repeats", "status", "error", "backend", "compiled",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
           "float16": torch.float16, "fp32": torch.float32, "fp64": torch.float64,
           "bf16": torch.bfloat16, "fp16": torch.float16}


def parse_dtype(dtype) -> torch.dtype:
    """``"float32"``/``"fp32"``/``torch.float32`` -> ``torch.float32``; ValueError otherwise."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).replace("torch.", "")]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {sorted(set(_DTYPES))}") from None


def parse_device(name) -> torch.device:
    """``torch.device`` for ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; ``ValueError`` for a malformed
    name, another device type, or a GPU that is not there (saying why and what to use instead)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{str(name)!r} is not a device ({exc}); use cpu, cuda or cuda:N") \
            from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"{str(name)!r}: must be cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA GPU is visible")
            raise ValueError(f"{name} requested but CUDA is not available (torch "
                             f"{torch.__version__}: {why}); use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def environment() -> dict:
    """``name -> value`` describing the installation and the devices (``revsnn info``)."""
    from .._version import __version__
    from ..baselines import spikingjelly_available, spikingjelly_version

    sj = spikingjelly_version()
    if sj is None:
        sj = "not installed"
    elif not spikingjelly_available():
        sj += " (installed, but spikingjelly.activation_based fails to import)"
    info = {
        "revsnn": __version__,
        "torch": f"{torch.__version__} (CUDA build: {torch.version.cuda or 'none'})",
        "spikingjelly": sj,
        "python": f"{platform.python_version()} ({platform.platform()})",
        "cpu": f"{device_name('cpu')}, {torch.get_num_threads()} torch threads",
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            info[f"cuda:{i}"] = torch.cuda.get_device_name(i)
        info["device"] = "cuda"
    else:
        info["cuda"] = "not available"
        info["device"] = "cpu"
    return info


def device_name(device) -> str:
    """Human-readable device name: the GPU's name, or the CPU's."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_name()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def is_oom(exc: BaseException) -> bool:
    """True for CUDA and CPU out-of-memory errors."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text
        or "not enough memory" in text or isinstance(exc, MemoryError))


@dataclass(frozen=True)
class SavedBytes:
    """Bytes saved for backward, deduplicated by storage, split by what they share storage with."""

    own: int
    shared_input: int
    shared_output: int
    params: int
    n_storages: int

    @property
    def total(self) -> int:
        return self.own + self.shared_input + self.shared_output + self.params


def _storage_key(t: torch.Tensor):
    s = t.untyped_storage()
    return (t.device.type, t.device.index, s.data_ptr()), s.nbytes()


def saved_tensor_bytes(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor,
                       params: Iterable[torch.Tensor] = ()):
    """Run ``fn(*inputs)`` and count what autograd saves for its backward.

    Returns ``(output, SavedBytes)``. The output may be a tensor or a tuple of tensors.

    >>> import revsnn
    >>> x = torch.randn(4, 2, 8, requires_grad=True)
    >>> _, sb = saved_tensor_bytes(revsnn.ReversibleLIF(), x)
    >>> sb.own == 2 * 8 * 4          # the final membranes: one [B, C] fp32 snapshot
    True
    """
    seen: dict = {}
    keep: list = []

    def pack(t: torch.Tensor):
        key, nbytes = _storage_key(t)
        seen[key] = nbytes
        keep.append(t)  # keep storages alive until classified so their addresses stay unique
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    keys_in = {_storage_key(t)[0] for t in inputs if isinstance(t, torch.Tensor)}
    keys_out = {_storage_key(t)[0] for t in outs if isinstance(t, torch.Tensor)}
    keys_par = {_storage_key(t)[0] for t in params}
    own = s_in = s_out = s_par = 0
    for key, nbytes in seen.items():
        if key in keys_par:
            s_par += nbytes
        elif key in keys_in:
            s_in += nbytes
        elif key in keys_out:
            s_out += nbytes
        else:
            own += nbytes
    keep.clear()
    return out, SavedBytes(own, s_in, s_out, s_par, len(seen))


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Timer:
    """Wall clock on CPU, CUDA events on GPU (milliseconds)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            self.start, self.end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.end.record()
            torch.cuda.synchronize(self.device)
            self.ms = self.start.elapsed_time(self.end)
        else:
            self.ms = (time.perf_counter() - self.t0) * 1e3


def _quartiles(values) -> tuple:
    """``(q1, median, q3)`` of ``values``; below 4 values, ``(min, median, max)``."""
    if not values:
        return math.nan, math.nan, math.nan
    if len(values) < 4:
        return min(values), statistics.median(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def _tracked_memory(module: nn.Module, make_input, loss_fn, device) -> tuple[int, int]:
    """(activation bytes alive after forward, peak bytes over forward + backward) via MemTracker."""
    from torch.distributed._tools.mem_tracker import MemTracker
    mt = MemTracker()
    mt.track_external(module)
    with mt:
        x = make_input()
        out = module(x)
        snap = mt.get_tracker_snapshot()
        loss_fn(out).backward()
        del out, x
    peak = mt.get_tracker_snapshot("peak")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    act = sum(v for k, v in snap.get(dev, {}).items() if getattr(k, "name", "") == "ACT")
    return int(act), int(peak.get(dev, {}).get("Total", 0))


class LiveStorage:
    """Counts live CPU tensor storage bytes at the dispatcher, and their peak (a
    ``TorchDispatchMode`` used as a context manager).

    ``known`` tensors (parameters, buffers, gradients that exist before the step) are counted from
    the start, once per storage; a view of one of them made inside the block is not a new storage.
    Every other storage an operator returns is counted until it is freed (``weakref.finalize``).
    """

    def __new__(cls, known=()):
        import weakref

        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        class _Mode(TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self._live: dict = {}
                for t in known:
                    if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                        st = t.untyped_storage()
                        self._live[st.data_ptr()] = st.nbytes()
                self.current = self.peak = sum(self._live.values())

            def _forget(self, key):
                n = self._live.pop(key, None)
                if n is not None:
                    self.current -= n

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_leaves(out):
                    if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
                        continue
                    st = t.untyped_storage()
                    key, n = st.data_ptr(), st.nbytes()
                    if n == 0 or key in self._live:
                        continue
                    self._live[key] = n
                    self.current += n
                    weakref.finalize(st, self._forget, key)
                    self.peak = max(self.peak, self.current)
                return out

        return _Mode()


def step_peak_bytes(model: nn.Module, make_input: Callable, loss_fn: Callable,
                    device="cpu") -> int:
    """Peak bytes of one training step of ``model`` (parameters, buffers and gradients included).

    Gradients are cleared first (so they are allocated, and counted, inside the step) and again
    after. ``make_input`` is called inside the measured region.
    """
    dev = torch.device(device)
    model.zero_grad(set_to_none=True)
    try:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            loss_fn(model(make_input())).backward()
            torch.cuda.synchronize(dev)
            return int(torch.cuda.max_memory_allocated(dev))
        tracker = LiveStorage(list(model.parameters()) + list(model.buffers()))
        with tracker:
            loss_fn(model(make_input())).backward()
        return int(tracker.peak)
    finally:
        model.zero_grad(set_to_none=True)


def _fixed_bytes(model: nn.Module) -> int:
    """Parameters, buffers and the gradients of the trainable parameters (storage-deduplicated)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total + sum(p.numel() * p.element_size() for p in model.parameters()
                       if p.requires_grad)


def activation_peak_bytes(model: nn.Module, make_input: Callable, loss_fn: Callable,
                          device="cpu") -> int:
    """The activation peak of one training step: :func:`step_peak_bytes` minus parameters,
    buffers and parameter gradients (the same in every strategy)."""
    return step_peak_bytes(model, make_input, loss_fn, device) - _fixed_bytes(model)


class Case:
    """One configuration to measure: a module builder, an input maker, a loss and row metadata;
    ``memory=False`` skips the memory columns, ``first_step=True`` times the first step
    (``compile_seconds``; both in the module docstring)."""

    def __init__(self, build: Callable[[], nn.Module], make_input: Callable[[], torch.Tensor], *,
                 loss_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 device="cpu", memory: bool = True, first_step: bool = False, **meta):
        self.build, self.make_input, self.device = build, make_input, torch.device(device)
        self.loss_fn = loss_fn
        self.memory, self.first_step = memory, first_step
        self.meta = meta
        self.module: Optional[nn.Module] = None
        self.row: dict = {}
        self.fwd: list = []
        self.bwd: list = []

    def default_loss(self, out: torch.Tensor) -> torch.Tensor:
        w = getattr(self, "_w", None)
        if w is None or w.shape != out.shape:
            g = torch.Generator(device="cpu").manual_seed(0)
            self._w = w = torch.randn(out.shape, generator=g).to(out.device, out.dtype)
        return (out * w).sum()

    def loss(self, out):
        return (self.loss_fn or self.default_loss)(out)


def _new_row(case: Case, repeats: int) -> dict:
    row = {c: math.nan for c in COLUMNS}
    meta = dict(case.meta)
    meta.setdefault("label", meta.get("mode", ""))
    meta["dtype"] = str(meta.get("dtype", "float32")).replace("torch.", "")
    row.update(kind="node", mode="", arch="", T=0, batch=0, shape="")
    row.update(meta)
    row.update(device=str(case.device), device_name=device_name(case.device),
               torch_version=torch.__version__, repeats=repeats, status="ok", error="")
    row["compiled"] = bool(meta.get("compiled", False))
    row["backend"] = ""
    return row


def failure_row(exc: BaseException, **meta) -> dict:
    """A row (:data:`COLUMNS`) for a configuration that failed before it could be measured:
    status ``"oom"`` or ``"error"`` and the exception as the error text; ``meta`` fills the
    descriptive columns (kind, mode, label, arch, T, batch, dtype, device, …)."""
    row = {c: math.nan for c in COLUMNS}
    row.update(meta, status="oom" if is_oom(exc) else "error",
               error=f"{type(exc).__name__}: {exc}"[:500])
    return row


def _fail(case: Case, exc: BaseException):
    case.row["status"] = "oom" if is_oom(exc) else "error"
    case.row["error"] = f"{type(exc).__name__}: {exc}"[:500]
    case.module = None
    if case.device.type == "cuda":
        torch.cuda.empty_cache()


def backend_of(module: nn.Module, device) -> str:
    """What ran the loops over T of ``module``'s nodes in its last forward (see ``backend`` in
    the module docstring)."""
    seen = []
    for m in module.modules():
        name = getattr(m, "last_backend", None)
        if name is None and type(m).__name__ == "SpikingJellyLIF":
            name = "spikingjelly:" + _spikingjelly_implementation(torch.device(device))
        if name is not None and name not in seen:
            seen.append(name)
    return "+".join(sorted(seen)) if seen else "torch"


def _spikingjelly_implementation(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu"
    try:
        from spikingjelly._ops.lif import _selection
        return str(_selection.diagnostics(device)["implementation"])
    except Exception as exc:  # noqa: BLE001 - a version without the query: say so in the row
        return f"unknown ({type(exc).__name__})"


def _measure_memory(case: Case, track_memory: bool):
    case.module = case.build()
    if case.first_step:                                  # compile_seconds (module docstring)
        case.module.zero_grad(set_to_none=True)
        with _Timer(torch.device("cpu")) as t:           # wall time, CUDA included
            case.loss(case.module(case.make_input())).backward()
            _sync(case.device)
        case.module.zero_grad(set_to_none=True)
        case.row["compile_seconds"] = t.ms / 1e3
    if not case.memory:
        return
    params = list(case.module.parameters()) + list(case.module.buffers())
    x = case.make_input()
    _, sb = saved_tensor_bytes(lambda inp: case.module(inp), x, params=params)
    case.row.update(saved_bytes=sb.own, saved_input_bytes=sb.shared_input,
                    saved_output_bytes=sb.shared_output, saved_param_bytes=sb.params)
    del x, _
    if track_memory:
        case.row["act_peak_bytes"] = activation_peak_bytes(case.module, case.make_input,
                                                           case.loss, case.device)
        from ..temporal import TemporalNetwork
        if isinstance(case.module, TemporalNetwork):
            # MemTracker's per-module bookkeeping is not made for modules that run T times in one
            # step (it refuses them, or crawls): the activation peak above covers this network
            case.row["act_bytes"] = case.row["peak_bytes"] = math.nan
        else:
            case.row["act_bytes"], case.row["peak_bytes"] = _tracked_memory(
                case.module, case.make_input, case.loss, case.device)


def _time_once(case: Case, record: bool):
    dev = case.device
    case.module.zero_grad(set_to_none=True)
    x = case.make_input()
    if dev.type == "cuda":
        _sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    with _Timer(dev) as tf:
        loss = case.loss(case.module(x))
    with _Timer(dev) as tb:
        loss.backward()
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) - base
        old = case.row["cuda_peak_bytes"]
        case.row["cuda_peak_bytes"] = peak if math.isnan(old) else max(old, peak)
    if record:
        case.fwd.append(tf.ms)
        case.bwd.append(tb.ms)
    case.row["backend"] = backend_of(case.module, dev)


def measure_cases(cases, *, repeats: int = 5, warmup: int = 1, track_memory: bool = True,
                  on_row: Optional[Callable[[dict], None]] = None) -> list:
    """Measure several configurations side by side; returns one row per case.

    Memory is measured case by case (it is deterministic); times are taken round-robin (every
    repetition runs every case once, in turn) so that machine noise hits all cases alike and the
    ratios between them hold. A case that runs out of memory or fails becomes a row with
    ``status`` "oom"/"error"; the others go on. ``on_row`` is called with each finished row.
    """
    cases = list(cases)
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for case in cases:
        case.row = _new_row(case, repeats)
        case.fwd, case.bwd = [], []
        try:
            _measure_memory(case, track_memory)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a row
            _fail(case, exc)
    for i in range(warmup + repeats):
        for case in cases:
            if case.module is None:
                continue
            try:
                _time_once(case, record=i >= warmup)
            except Exception as exc:  # noqa: BLE001
                _fail(case, exc)
    rows = []
    for case in cases:
        if case.row["status"] == "ok":
            steps = [f + b for f, b in zip(case.fwd, case.bwd)]
            for name, values in (("fwd", case.fwd), ("bwd", case.bwd), ("step", steps)):
                q1, med, q3 = _quartiles(values)
                case.row.update({f"{name}_ms": med, f"{name}_ms_iqr": q3 - q1,
                                 f"{name}_ms_q1": q1, f"{name}_ms_q3": q3})
        case.module = None
        rows.append(case.row)
        if on_row is not None:
            on_row(case.row)
    return rows


def measure(build: Callable[[], nn.Module], make_input: Callable[[], torch.Tensor], *,
            loss_fn=None, device="cpu", repeats: int = 5, warmup: int = 1,
            track_memory: bool = True, **meta) -> dict:
    """Measure one configuration (see :func:`measure_cases`); returns its row.

    ``meta`` fills the row's descriptive columns: kind, mode, label, arch, T, batch, shape, dtype.
    """
    case = Case(build, make_input, loss_fn=loss_fn, device=device, **meta)
    return measure_cases([case], repeats=repeats, warmup=warmup, track_memory=track_memory)[0]


def node_factory(mode, **node_kwargs) -> Callable[[], nn.Module]:
    """A zero-argument builder of the standalone node of ``mode`` (a preset offered for ``nodes``:
    its name, alias or :class:`~revsnn.MemoryMode`)."""
    from ..strategy import parse
    preset = parse(mode, command="nodes")
    return lambda: preset.make_node(**node_kwargs)


def node_case(mode, *, T: int = 8, batch: int = 64, neurons: int = 4096, dtype="float32",
              device="cpu", backend: str = "auto", compiled: bool = False,
              **node_kwargs) -> Case:
    """A :class:`Case` for one node on input ``[T, batch, neurons]`` (inputs N(0, 1.5²)).

    ``backend`` is passed to nodes that take it (:attr:`revsnn.strategy.Preset.backends`; the
    others run PyTorch, and the row's ``backend`` column says what ran); ``compiled`` wraps the
    node in ``torch.compile``.
    """
    from ..strategy import parse
    preset = parse(mode, command="nodes")
    for name, val in (("T", T), ("batch", batch), ("neurons", neurons)):
        if int(val) < 1:
            raise ValueError(f"{name} must be >= 1, got {val}")
    tdtype = parse_dtype(dtype)
    dev = torch.device(device)
    if backend in preset.backends and backend != "auto":
        node_kwargs["backend"] = backend
    make = node_factory(preset.name, **node_kwargs)

    def build():
        node = make()
        return torch.compile(node) if compiled else node

    def make_input():
        g = torch.Generator(device="cpu").manual_seed(1)
        x = torch.randn(T, batch, neurons, generator=g) * 1.5
        return x.to(dev, tdtype).requires_grad_()

    return Case(lambda: build().to(dev), make_input, device=dev, kind="node", mode=preset.name,
                label=preset.label, arch="node", T=T, batch=batch,
                shape=f"[{T}, {batch}, {neurons}]", dtype=str(tdtype).replace("torch.", ""),
                compiled=bool(compiled))


def measure_node(mode, *, repeats: int = 5, warmup: int = 1, track_memory: bool = True,
                 **kw) -> dict:
    """Measure one node; ``mode`` is a preset offered for ``nodes`` (see :func:`node_case`)."""
    return measure_cases([node_case(mode, **kw)], repeats=repeats, warmup=warmup,
                         track_memory=track_memory)[0]


def measure_nodes(modes, *, Ts=(8,), batches=(64,), neurons: int = 4096, repeats: int = 5,
                  warmup: int = 1, track_memory: bool = True, on_row=None,
                  compile_modes=(False,), backends=("auto",), **kw) -> list:
    """One row per (T, batch, mode, backend, compiled); for each (T, batch) every combination is
    timed side by side. ``compile_modes``: ``(False,)``, ``(True,)`` or both; ``backends``: node
    backends to run each mode on (a mode without kernels runs once, on PyTorch)."""
    from ..strategy import parse
    rows = []
    for T in Ts:
        for batch in batches:
            cases = [node_case(m, T=T, batch=batch, neurons=neurons, compiled=c, backend=b, **kw)
                     for m in modes
                     for b in ([x for x in backends if x in parse(m).backends] or ["auto"])
                     for c in compile_modes]
            rows += measure_cases(cases, repeats=repeats, warmup=warmup,
                                  track_memory=track_memory, on_row=on_row)
    return rows


def to_frame(rows):
    """Rows -> pandas DataFrame with the columns of :data:`COLUMNS` first."""
    import pandas as pd
    df = pd.DataFrame(list(rows))
    cols = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
    return df[cols]
