"""The reversible spiking node :class:`ReversibleLIF`: exact inversion and three backward algorithms.

The equations, the step functions and the loops over T are in :mod:`revsnn.functional.reversible`
(NOTE [reversible node equations], NOTE [backward algorithms]); here are the module, which holds
the hyperparameters, and the one autograd Function that spans all T steps.

NOTE [drift guard]
==================
Exactness rests on two preconditions: the saved output is unmodified and every value stays in the
exact range. The backward checks both at the cost of one comparison of two ``[B, C, ...]`` tensors:
the reconstructed state at t = 0 must equal the initial state. The per-step inverse is a bijection
of the state for fixed outputs, so a wrong state at any step stays wrong down to t = 0. Only on
failure is the inverse walked again to count flipped spikes (recomputed Θ(H − θ) disagreeing with the
decoded spike) for the message. It then raises :class:`ReconstructionError` (``on_drift="raise"``,
default) or warns (``"warn"``); ``"ignore"`` skips the check.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..functional.quantize import SIGNIFICAND_BITS, quantize
from ..functional.reversible import (_GRID_BITS, BACKWARD_ALGORITHMS, RevLIFParams, _split,
                                     autograd_forward, count_flips, default_grid_bits,
                                     forward_loop, fused_walk, rev_step_inverse, revnet_walk)
from ..kernels import BACKENDS, resolve_backend, unsupported_reason
from ..surrogate import Sigmoid, Surrogate
from .base import ON_DRIFT, SpikingNode, Stored, check_choice, check_drift, check_sequence
from .compiled import assert_reconstructed, exact_range_guard

__all__ = ["ReversibleLIF", "DRIFT_CAUSE", "run_forward", "walk_for"]


DRIFT_CAUSE = ("the saved output was modified in place or cast, or values left the exact range "
               "of the dtype (inputs must satisfy |x| < 2^(significand bits - grid_bits - 1)); "
               "use float64 or fewer grid_bits.")
"""Why a reversible node's reconstruction fails, for the drift guard's message."""


def run_forward(x, v1, v2, p: RevLIFParams, cd: torch.dtype, backend: str):
    """The graph-free forward over all T steps on ``backend`` (``"torch"`` or ``"triton"``, as
    resolved by :meth:`ReversibleLIF.backend_for`): ``(Y, V₁_T, V₂_T)``, bit-equal on both."""
    if backend == "triton":
        from ..kernels.fused import rev_forward
        return rev_forward(x, v1, v2, p, cd)
    return forward_loop(x, v1, v2, p, cd)


def walk_for(algo: str, backend: str):
    """The backward walk of ``algo`` (``"fused"`` or ``"revnet"``) on ``backend``: the fused walk
    has a Triton kernel (bit-equal, NOTE [backends] in :mod:`revsnn.kernels`); the RevNet walk
    re-runs each step under autograd and stays on PyTorch."""
    if algo != "fused":
        return revnet_walk
    if backend == "triton":
        from ..kernels.fused import rev_fused_walk
        return rev_fused_walk
    return fused_walk


class _ReversibleLIFFunction(torch.autograd.Function):
    """One autograd node over all T steps. Saves Y and the final (V₁, V₂) only: see NOTE above."""

    @staticmethod
    def forward(x, v1_0, v2_0, p, algo, on_drift, compute_dtype, backend, given_state):
        return run_forward(x, v1_0, v2_0, p, compute_dtype, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, v1_0, v2_0, p, algo, on_drift, compute_dtype, backend, given_state = inputs
        y, v1, v2 = output
        # an initial state passed in is kept (its gradient and the drift check need it); from
        # rest it is zero and not kept. Decided by the call, not by the values, so that no
        # data-dependent branch breaks a torch.compile graph.
        explicit_init = given_state or ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        ctx.save_for_backward(y, v1, v2, *((v1_0, v2_0) if explicit_init else ()))
        ctx.params, ctx.algo, ctx.on_drift, ctx.compute_dtype = p, algo, on_drift, compute_dtype
        ctx.x_dtype, ctx.backend = x.dtype, backend
        ctx.set_materialize_grads(False)  # unused final-state outputs get None, not zero tensors

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy, gv1, gv2):
        y, v1, v2, *init = ctx.saved_tensors
        p, cd = ctx.params, ctx.compute_dtype
        gy = torch.zeros_like(y) if gy is None else gy
        gv1 = torch.zeros_like(v1) if gv1 is None else gv1
        gv2 = torch.zeros_like(v2) if gv2 is None else gv2
        walk = walk_for(ctx.algo, ctx.backend)
        v1_T, v2_T = v1, v2
        gx, v1, v2, gv1, gv2, flips = walk(y, gy, v1, v2, gv1, gv2, p, cd, ctx.x_dtype)
        if ctx.on_drift != "ignore":
            v1_0, v2_0 = init if init else (torch.zeros_like(v1), torch.zeros_like(v2))
            err = torch.maximum((v1 - v1_0).abs().max(), (v2 - v2_0).abs().max())
            if torch.compiler.is_compiling():            # NOTE [compiled nodes]
                assert_reconstructed(err, "ReversibleLIF", DRIFT_CAUSE)
                return gx, gv1, gv2, None, None, None, None, None, None
            state_err = float(err)
            if state_err != 0.0 or (flips is not None and int(flips) != 0):
                if flips is None:  # the fused walk does not count them: diagnose now, off the hot path
                    flips = count_flips(y, v1_T, v2_T, p, cd)
                check_drift("ReversibleLIF", ctx.on_drift, flips=int(flips),
                            state_error=state_err, cause=DRIFT_CAUSE)
        return gx, gv1, gv2, None, None, None, None, None, None


class ReversibleLIF(SpikingNode):
    """Reversible two-group LIF node (equations in this module's NOTE blocks).

    Input ``[T, B, C, ...]`` with even C; output of the same shape, real-valued:
    ``Y = q(X) + ϑ·S`` per group. Only the final membranes are kept for backward; inputs and
    membranes are reconstructed exactly (bit for bit) while walking back in time.

    Args:
        tau: τ; the input is scaled by 1/τ when ``decay_input`` (as in SpikingJelly's LIFNode).
        v_threshold: θ.
        coupling: a, the rotation coupling between partner membranes (0 < a < 2); default 1/τ.
        spike_scale: spike amplitude in the output; default θ (moved by δ/2, see NOTE).
        decay_input: scale the input by 1/τ.
        surrogate: surrogate gradient; ``Sigmoid(4)`` by default.
        backward: ``"fused"`` (default), ``"revnet"`` or ``"autograd"`` (see NOTE [backward algorithms]).
        grid_bits: fractional bits Q of the fixed-point grid; default by dtype (fp32: 12, fp64: 24).
        on_drift: ``"raise"`` (default), ``"warn"`` or ``"ignore"`` when reconstruction fails.
        backend: what runs the loops over T: ``"auto"`` (default: the Triton kernels for CUDA
            tensors when installed, else PyTorch), ``"torch"`` or ``"triton"`` (NOTE [backends]
            in :mod:`revsnn.kernels`; bit-equal results). The forward and the fused backward have
            kernels; the RevNet backward and plain autograd run on PyTorch.

    >>> import torch
    >>> node = ReversibleLIF()
    >>> x = torch.randn(8, 2, 4, requires_grad=True)
    >>> y, state = node(x, return_state=True)
    >>> y.shape
    torch.Size([8, 2, 4])
    >>> x_rec, (v1, v2) = node.inverse(y.detach(), state)
    >>> bool((x_rec == node.quantize_input(x.detach())).all()) and bool((v1 == 0).all())
    True
    """

    HYPERPARAMETERS = frozenset({"tau", "decay_input", "v_threshold", "surrogate", "coupling",
                                 "spike_scale", "grid_bits", "on_drift", "backend"})

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, coupling: Optional[float] = None,
                 spike_scale: Optional[float] = None, decay_input: bool = True,
                 surrogate: Optional[Surrogate] = None, backward: str = "fused",
                 grid_bits: Optional[int] = None, on_drift: str = "raise", backend: str = "auto"):
        super().__init__()
        check_choice("ReversibleLIF", "backward", backward, BACKWARD_ALGORITHMS)
        check_choice("ReversibleLIF", "backend", backend, BACKENDS)
        if backend == "triton" and backward == "autograd":
            raise ValueError("ReversibleLIF: backward='autograd' (plain BPTT, the reference) runs "
                             "on PyTorch only; backend='triton' needs backward='fused' or "
                             "'revnet'")
        check_choice("ReversibleLIF", "on_drift", on_drift, ON_DRIFT)
        if not tau > 1.0:
            raise ValueError(f"ReversibleLIF: tau must be > 1, got {tau!r}")
        if not v_threshold > 0:
            raise ValueError(f"ReversibleLIF: v_threshold must be positive, got {v_threshold!r}")
        coupling = 1.0 / tau if coupling is None else float(coupling)
        if not 0.0 < coupling < 2.0:
            raise ValueError(f"ReversibleLIF: coupling must satisfy 0 < a < 2 for a bounded "
                             f"rotation, got {coupling!r}")
        if grid_bits is not None and not 1 <= int(grid_bits) <= 40:
            raise ValueError(f"ReversibleLIF: grid_bits must be in [1, 40], got {grid_bits!r}")
        self.tau, self.v_threshold, self.coupling = float(tau), float(v_threshold), coupling
        self.spike_scale = float(v_threshold if spike_scale is None else spike_scale)
        self.decay_input = bool(decay_input)
        self.surrogate = surrogate or Sigmoid()
        self.backward_algorithm = backward
        self.grid_bits = grid_bits
        self.on_drift = on_drift
        self.backend = backend
        self.last_backend: Optional[str] = None
        """The backend the last forward ran on (``"torch"`` or ``"triton"``), for measurements."""

    invertible = True

    def backend_for(self, x: torch.Tensor) -> str:
        """``"torch"`` or ``"triton"``: what runs this node's loops over T for input ``x``."""
        unsupported = ("backward='autograd' runs on PyTorch only"
                       if self.backward_algorithm == "autograd"
                       else unsupported_reason(self.surrogate, x.dtype))
        return resolve_backend("ReversibleLIF", self.backend, x, unsupported)

    @property
    def kind(self) -> str:
        return f"ReversibleLIF ({self.backward_algorithm})"

    @property
    def fuses_bn(self) -> bool:
        """Whether a BatchNorm before the node can be fused into it (:mod:`revsnn.layers.bn_node`):
        with the revnet and fused backward, which reconstruct the node's input."""
        return self.backward_algorithm in ("fused", "revnet")

    def stored(self, dtype: torch.dtype) -> tuple:
        """Under autograd: H − θ of both groups per step (in the compute dtype). Reconstructing:
        the output Y (the next layer keeps it anyway) and the final membranes, once per neuron."""
        cd = self.compute_dtype(dtype)
        if self.backward_algorithm == "autograd":
            return (Stored("H−θ of both groups per step", "neuron-step", dtype=cd),)
        return (Stored("output Y", "output"),
                Stored("final membranes V₁, V₂", "neuron", dtype=cd))

    # -- parameters -----------------------------------------------------------------------------
    def params(self, dtype: torch.dtype = torch.float32) -> RevLIFParams:
        """The node's hyperparameters snapped to the grid used for ``dtype``."""
        q_bits = self.grid_bits if self.grid_bits is not None else default_grid_bits(dtype)
        grid = 2.0 ** -q_bits
        theta = round(self.v_threshold / grid) * grid
        if theta <= 0:
            raise ValueError(f"ReversibleLIF: v_threshold {self.v_threshold} rounds to 0 on the "
                             f"grid 2^-{q_bits}")
        spike = (math.floor(self.spike_scale / grid) + 0.5) * grid
        beta = 1.0 / self.tau if self.decay_input else 1.0
        return RevLIFParams(beta, self.coupling, theta, spike, grid, self.surrogate)

    @staticmethod
    def compute_dtype(dtype: torch.dtype) -> torch.dtype:
        """States are kept in fp32 for half-precision inputs, else in the input dtype."""
        return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype

    def exact_input_bound(self, dtype: torch.dtype) -> float:
        """Largest |x| for which outputs are exactly representable in ``dtype``."""
        q_bits = self.grid_bits if self.grid_bits is not None else default_grid_bits(dtype)
        return 2.0 ** (SIGNIFICAND_BITS[dtype] - q_bits - 1) - 2 * abs(self.spike_scale)

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """q(X) (E2.0): what the node actually consumes and what the inverse reconstructs."""
        return quantize(x.to(self.compute_dtype(x.dtype)), self.params(x.dtype).grid).to(x.dtype)

    def initial_state(self, x: torch.Tensor):
        """Resting membranes (zeros) for a sequence ``x``: two ``[B, C/2, ...]`` tensors."""
        shape = (x.shape[1], x.shape[2] // 2, *x.shape[3:])
        z = torch.zeros(shape, dtype=self.compute_dtype(x.dtype), device=x.device)
        return z, z.clone()

    # -- forward / inverse ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        """Run over ``x = [T, B, C, ...]``; returns Y (and the final ``(V₁, V₂)``)."""
        check_sequence(x, node="ReversibleLIF", even_channels=True)
        if x.dtype not in _GRID_BITS:
            raise ValueError(f"ReversibleLIF: unsupported dtype {x.dtype}")
        exact_range_guard(x, self.exact_input_bound(x.dtype), who="ReversibleLIF",
                          grid_bits=self.grid_bits or default_grid_bits(x.dtype),
                          remedy="normalise the input (e.g. BatchNorm), use float64 or lower "
                                 "grid_bits")
        p = self.params(x.dtype)
        cd = self.compute_dtype(x.dtype)
        v1, v2 = self.initial_state(x) if state is None else self._check_state(state, x, cd)
        backend = self.backend_for(x)
        self.last_backend = backend
        if self.backward_algorithm == "autograd":
            y, v1, v2 = autograd_forward(x, v1, v2, p, cd)
        else:
            y, v1, v2 = _ReversibleLIFFunction.apply(x, v1, v2, p, self.backward_algorithm,
                                                     self.on_drift, cd, backend,
                                                     state is not None)
        return (y, (v1, v2)) if return_state else y

    def _check_state(self, state, x, cd):
        v1, v2 = state
        want = (x.shape[1], x.shape[2] // 2, *x.shape[3:])
        for v in (v1, v2):
            if tuple(v.shape) != want:
                raise ValueError(f"ReversibleLIF: each state tensor must have shape {want}, got "
                                 f"{tuple(v.shape)}")
        return v1.to(cd), v2.to(cd)

    @torch.no_grad()
    def inverse(self, y: torch.Tensor, state):
        """Reconstruct ``(q(X), (V₁, V₂) at t = 0)`` from the output and the final membranes."""
        p = self.params(y.dtype)
        cd = self.compute_dtype(y.dtype)
        v1, v2 = (s.to(cd) for s in state)
        x = torch.empty_like(y)
        c = y.shape[2] // 2
        for t in range(y.shape[0] - 1, -1, -1):
            y1, y2 = _split(y[t].to(cd))
            inv = rev_step_inverse(y1, y2, v1, v2, p)
            x[t, :, :c], x[t, :, c:] = inv.x1, inv.x2
            v1, v2 = inv.v1, inv.v2
        return x, (v1, v2)

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, v_threshold={self.v_threshold}, coupling={self.coupling}, "
                f"spike_scale={self.spike_scale}, decay_input={self.decay_input}, "
                f"surrogate={self.surrogate!r}, backward={self.backward_algorithm!r}, "
                f"grid_bits={self.grid_bits}, backend={self.backend!r}")
