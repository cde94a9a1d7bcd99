"""Fused Triton kernels for the reversible nodes, and the choice of backend.

NOTE [backends]
===============
A node's ``backend`` says what runs its loop over T:

- ``"torch"``: the PyTorch loops of :mod:`revsnn.functional` (one set of elementwise kernels per
  step; runs on every device; the reference).
- ``"triton"``: one Triton kernel launch per pass over the sequence (:mod:`revsnn.kernels.triton`):
  each program owns a block of neurons (ReversibleLIF: neuron pairs), keeps their state in
  registers and loops over T inside the kernel, reading each step's input (or Y, or the packed bits)
  and writing each step's output (or gradient) once. It needs the ``triton`` package and CUDA
  tensors, or ``TRITON_INTERPRET=1`` set before the kernels are first imported, which runs the same
  kernels on CPU tensors through Triton's NumPy interpreter (slow; it is how the test suite checks
  them without a GPU).
- ``"auto"`` (default): Triton for CUDA tensors when it is installed and the node's configuration
  has a kernel, PyTorch otherwise. Inside a ``torch.compile`` graph ``auto`` means PyTorch: the
  loops are then Inductor's to fuse, and the graph has no opaque kernel call in it. An explicit
  ``"triton"`` there runs the kernels as calls the compiler does not trace (a graph break).

The kernels compute the same operations as the PyTorch loops in the same order, one rounding per
operation (NOTE [one rounding per operation] in :mod:`revsnn.functional.reversible`), with
round-half-to-even on the grid and the same spike decoding, so outputs, reconstructed states,
packed bits and drift checks are bit-equal to the PyTorch path, and so are the gradients wherever
the surrogate derivative is made of IEEE operations only (``ATan``). ``Sigmoid`` needs ``exp``,
whose last bit differs between implementations: the kernel calls CUDA's ``expf``/``exp`` on a GPU
(the function PyTorch's CUDA sigmoid calls) and NumPy's under the interpreter, which differs from
PyTorch's CPU ``exp`` in the last bit of some values; there the gradients agree to that rounding
(``tests/test_kernels.py`` measures both).
"""

from __future__ import annotations

import importlib.util
import os

import torch

from ..surrogate import ATan, Sigmoid

__all__ = ["BACKENDS", "triton_available", "interpreting", "triton_unavailable_reason",
           "resolve_backend", "surrogate_code", "unsupported_reason"]

BACKENDS = ("auto", "torch", "triton")
"""What runs a node's loop over T (NOTE [backends])."""


_TRITON_INSTALLED = importlib.util.find_spec("triton") is not None   # looked up once, not imported


def triton_available() -> bool:
    """Whether the ``triton`` package is installed (nothing is imported)."""
    return _TRITON_INSTALLED


def interpreting() -> bool:
    """Whether Triton kernels run under the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def triton_unavailable_reason(x: torch.Tensor) -> str | None:
    """Why the Triton kernels cannot run on ``x`` here, or None when they can."""
    if not triton_available():
        return "the 'triton' package is not installed (pip install 'revsnn[triton]')"
    if x.device.type == "cuda":
        return None
    if x.device.type == "cpu" and interpreting():
        return None
    return (f"the tensors are on {x.device.type}; Triton kernels need CUDA tensors, or "
            f"TRITON_INTERPRET=1 (set before the kernels are imported) to interpret them on CPU")


def resolve_backend(who: str, backend: str, x: torch.Tensor, unsupported: str | None = None) -> str:
    """``"torch"`` or ``"triton"`` for a node with ``backend`` on input ``x`` (NOTE [backends]).

    ``unsupported`` is the node's reason why its configuration has no kernel (None: it has one).
    ``backend="triton"`` raises ``RuntimeError`` with the reason when the kernels cannot run;
    ``"auto"`` then falls back to PyTorch.
    """
    if backend == "torch":
        return "torch"
    if backend == "auto":
        if unsupported is None and x.device.type == "cuda" and triton_available() \
                and not torch.compiler.is_compiling():
            return "triton"
        return "torch"
    reason = unsupported or triton_unavailable_reason(x)
    if reason is not None:
        raise RuntimeError(f"{who}: backend='triton' cannot run: {reason}; use backend='auto' "
                           f"or 'torch'")
    return "triton"


_SUPPORTED = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def surrogate_code(s) -> int | None:
    """Kernel code of a surrogate (0 Sigmoid, 1 ATan), None when the kernels do not have it."""
    if type(s) is Sigmoid:
        return 0
    if type(s) is ATan:
        return 1
    return None


def unsupported_reason(surrogate, dtype: torch.dtype) -> str | None:
    """Why no kernel runs a node with ``surrogate`` on ``dtype`` inputs, or None."""
    if surrogate_code(surrogate) is None:
        return (f"the kernels compute the Sigmoid and ATan surrogates only, got "
                f"{type(surrogate).__name__}")
    if dtype not in _SUPPORTED:
        return f"the kernels do not take {dtype} inputs"
    return None
