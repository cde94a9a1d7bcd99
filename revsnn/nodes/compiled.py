"""What changes when a node runs inside a ``torch.compile`` graph.

NOTE [compiled nodes]
=====================
Eager, the exact-range guard (:func:`revsnn.nodes.base.check_exact_range`) reads the input's
largest magnitude on the host to name it in its message; a graph cannot contain that read (it is a
``Tensor.item()`` and breaks the graph). Traced by ``torch.compile``, the guard is the same test as
a graph operation instead, ``torch._assert_async(max |x| < bound)``: the step still fails on an
input outside the exact range (or NaN), with a shorter message. The drift guard at the end of a
reconstructing backward likewise becomes ``torch._assert_async(max |V(t=0) error| == 0)``
(:func:`assert_reconstructed`): ``on_drift="raise"`` and ``"warn"`` both stop the step there (a
graph cannot warn), ``"ignore"`` skips it, and the flipped spikes are not counted for the
message. Everything else the nodes compute is the same under compile.

Two backwards differentiate a recomputed piece with ``torch.autograd.grad``: the RevNet walk
(``backward="revnet"``) and the binary units' synapse. Dynamo traces that call only with
``torch._dynamo.config.trace_autograd_ops = True`` (off by default in torch 2.13); otherwise each
such Function is one graph break and runs eagerly, correct but uncompiled. :func:`tracing_autograd`
sets the flag for a block: compile and run ``revnet`` and ``binary`` models inside it.
"""

from __future__ import annotations

import torch

from .base import check_exact_range

__all__ = ["exact_range_guard", "assert_reconstructed", "tracing_autograd"]


def tracing_autograd():
    """A context (or decorator) under which ``torch.compile`` traces ``torch.autograd.grad``
    inside the nodes' backwards instead of breaking the graph there (NOTE above); compilation
    happens at a compiled function's calls, so run those inside it."""
    return torch._dynamo.config.patch(trace_autograd_ops=True)


def exact_range_guard(x: torch.Tensor, bound: float, *, who: str, grid_bits: int,
                      remedy: str) -> None:
    """:func:`~revsnn.nodes.base.check_exact_range`, or its graph form under ``torch.compile``."""
    if torch.compiler.is_compiling():
        ok = x.detach().abs().amax() < bound                # NaN compares False: refused too
        torch._assert_async(ok, f"{who}: input outside the exact range |x| < {bound:.4g} for "
                                f"{x.dtype} with grid_bits={grid_bits} (or not finite); {remedy}")
        return
    check_exact_range(x, bound, who=who, grid_bits=grid_bits, remedy=remedy)


def assert_reconstructed(error: torch.Tensor, who: str, cause: str) -> None:
    """The drift guard's graph form (NOTE above): fail unless the walk ended where the forward
    started (``error``, a 0-d tensor, is 0)."""
    torch._assert_async(error == 0, f"{who} backward: reconstruction disagrees with the forward "
                                    f"(V(t=0) error != 0); the gradients would be wrong. Causes: "
                                    f"{cause}")
