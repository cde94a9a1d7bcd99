"""How much memory a device really has, and a guard that turns an allocation beyond it into a
catchable error instead of a process the kernel kills.

NOTE [memory guard]
===================
On CUDA an allocation beyond the device's memory raises ``torch.cuda.OutOfMemoryError``. On a CPU
it does not: Linux overcommits, the allocation succeeds, and when the pages are touched the kernel's
out-of-memory killer ends the process (or another one) without an exception. A search that grows a
batch until it stops fitting must therefore (1) never aim above the memory the device has
(:func:`device_memory`), and (2) probe under a limit the kernel enforces for this process alone:
:func:`memory_guard` lowers ``RLIMIT_DATA`` (private writable memory, which on Linux ≥ 4.7 includes
the anonymous mappings large tensors live in) to what the process already holds plus an allowance,
so an allocation past it fails at once with ``RuntimeError: ... can't allocate memory``, which
:func:`revsnn.analysis.measure.is_oom` reads as "does not fit". The limit is restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional, Tuple

import torch

__all__ = ["device_memory", "memory_guard", "guard_supported"]


def _meminfo() -> dict:
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[key] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    except OSError:
        pass
    return out


def device_memory(device="cpu") -> Tuple[int, int]:
    """``(total, available)`` bytes of ``device``: for a GPU, ``torch.cuda.mem_get_info``; for the
    CPU, ``MemTotal`` and ``MemAvailable`` of ``/proc/meminfo`` (else the physical pages)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, total = torch.cuda.mem_get_info(dev)
        return int(total), int(free)
    info = _meminfo()
    if "MemTotal" in info:
        return info["MemTotal"], info.get("MemAvailable", info.get("MemFree", info["MemTotal"]))
    pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return pages * size, pages * size


def _vm_data() -> Optional[int]:
    """This process's private writable memory (``VmData``) in bytes, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def guard_supported() -> bool:
    """Whether :func:`memory_guard` can enforce its limit here (Linux, ``resource`` module)."""
    try:
        import resource  # noqa: F401
    except ImportError:
        return False
    return _vm_data() is not None


RUNTIME_SLACK = 256 * 2 ** 20
"""Added to every guard's allowance: thread stacks and allocator arenas the runtime may map
during a probe (a thread pool resized by an earlier call, say) count against ``RLIMIT_DATA`` too,
and must not turn a probe that fits into an out-of-memory result."""


@contextlib.contextmanager
def memory_guard(allowance: int) -> Iterator[bool]:
    """Within the block, this process may allocate at most ``allowance`` (plus
    :data:`RUNTIME_SLACK`) more bytes of private memory; beyond, allocations fail with a catchable error (NOTE [memory guard]). Yields whether
    the limit is enforced (False where the platform has no such limit: the caller must then rely
    on its own prediction). The previous limit is restored on exit."""
    if not guard_supported():
        yield False
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = _vm_data() + max(int(allowance), 0) + RUNTIME_SLACK
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        yield True
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
