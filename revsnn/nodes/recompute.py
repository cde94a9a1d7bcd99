"""What a layer that recomputes part of its forward in backward must replay: BatchNorm statistics,
random numbers and neuron state (used by the binary units and by the reversible stacks).

NOTE [what recomputation breaks]
================================
Running F and G a second time in backward would, left alone, (i) update BatchNorm running
statistics twice, (ii) draw new dropout masks, and (iii) start stateful neurons from the state left
by the first pass. Here:

- BatchNorm: during recomputation every BatchNorm in training mode is switched to
  ``track_running_stats=False`` (:func:`frozen_running_stats`): it normalises with the batch
  statistics of the (bit-identical) recomputed input, so its output and gradient are those of the
  forward, and the running statistics and ``num_batches_tracked`` are updated exactly once per
  training step (by the forward), momentum-correct.
- RNG: when F or G contains dropout (or a module with ``uses_rng = True``), the CPU (and CUDA)
  generator state is captured before each F and G call in forward and replayed around the
  recomputation inside ``torch.random.fork_rng``, as ``torch.utils.checkpoint`` does, so the masks
  are identical and the global generator is left where the forward left it.
- Neuron state: revsnn's nodes start every call from rest. Stateful SpikingJelly nodes are reset
  before every F/G evaluation (:func:`reset_neuron_states`).
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import nn

__all__ = ["frozen_running_stats", "uses_rng", "capture_rng", "replay_rng", "reset_neuron_states"]


@contextlib.contextmanager
def frozen_running_stats(module: Optional[nn.Module]):
    """Within the block, BatchNorms in training mode use batch statistics without updating their
    running statistics (see NOTE [what recomputation breaks]).

    >>> bn = nn.BatchNorm1d(3).train()
    >>> with frozen_running_stats(bn):
    ...     _ = bn(torch.randn(8, 3))
    >>> int(bn.num_batches_tracked), bool((bn.running_mean == 0).all())
    (0, True)
    """
    changed = []
    if module is not None:
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training \
                    and m.track_running_stats:
                m.track_running_stats = False
                changed.append(m)
    try:
        yield
    finally:
        for m in changed:
            m.track_running_stats = True


def uses_rng(module: Optional[nn.Module]) -> bool:
    """True when ``module`` draws random numbers in training (dropout, or ``uses_rng = True``)."""
    if module is None:
        return False
    return any((isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0)
               or getattr(m, "uses_rng", False) for m in module.modules())


def capture_rng(device: torch.device) -> tuple:
    """``(cpu_state, cuda_state or None)``: the generator states used on ``device``."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


@contextlib.contextmanager
def replay_rng(cpu_state: Optional[torch.Tensor], cuda_state: Optional[torch.Tensor] = None,
               device: Optional[torch.device] = None):
    """Run the block with the generator(s) set to the captured state; restore them afterwards.

    ``cpu_state=None`` is a no-op (nothing was captured because nothing draws random numbers).
    """
    if cpu_state is None:
        yield
        return
    devices = [device] if cuda_state is not None else []
    with torch.random.fork_rng(devices=devices):
        # a fresh contiguous copy: set_rng_state reads the storage, a row view of a stacked state
        # tensor crashes it (torch 2.13)
        torch.set_rng_state(cpu_state.clone(memory_format=torch.contiguous_format))
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state.clone(), device)
        yield


def reset_neuron_states(module: Optional[nn.Module]) -> None:
    """Reset stateful (SpikingJelly ``MemoryModule``) neurons: a recomputation starts from rest."""
    if module is None:
        return
    for m in module.modules():
        if hasattr(m, "_memories") and callable(getattr(m, "reset", None)):
            m.reset()
