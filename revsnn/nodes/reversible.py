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
import warnings
from typing import Optional

import torch

from ..functional.quantize import SIGNIFICAND_BITS, concrete, is_traced, quantize
from ..functional.reversible import (_GRID_BITS, BACKWARD_ALGORITHMS, RevLIFParams, _split,
                                     autograd_forward, count_flips, default_grid_bits,
                                     forward_loop, fused_walk, rev_step_inverse, revnet_walk)
from ..surrogate import Sigmoid, Surrogate
from .base import (ON_DRIFT, KernelBackend, SpikingNode, Stored, check_choice, check_drift,
                   check_exact_range, check_numbers, check_sequence, require, saved_or_explain)
from .compiled import assert_reconstructed

__all__ = ["ReversibleLIF", "DRIFT_CAUSE", "run_forward", "walk_for"]

_REMEDY = ("normalise the input (e.g. BatchNorm or a smaller scale), use float64 or lower "
           "grid_bits")


DRIFT_CAUSE = ("the saved output was modified in place or cast, or values left the exact range "
               "of the dtype (inputs must satisfy |x| < 2^(significand bits - grid_bits - 1)); "
               "use float64 or fewer grid_bits.")
"""Why a reversible node's reconstruction fails, for the drift guard's message."""


def run_forward(x, v1, v2, p: RevLIFParams, cd: torch.dtype, backend: str):
    """The graph-free forward over all T steps on ``backend`` (``"torch"`` or ``"triton"``, as
    resolved by :meth:`ReversibleLIF.backend_for`): ``(Y, V₁_T, V₂_T, max |H|)``, bit-equal on both
    in the first three. The Triton kernel does not track the membranes' peak: its fourth output is
    NaN, and :meth:`ReversibleLIF.forward` leaves the membrane check to the backward's drift
    guard there."""
    if backend == "triton":
        from ..kernels.fused import rev_forward
        y, v1, v2 = rev_forward(x, v1, v2, p, cd)
        return y, v1, v2, torch.full((), math.nan, dtype=cd, device=x.device)
    return forward_loop(x, v1, v2, p, cd, peak=True)


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


def _same_batching(saved, grads):
    """Under ``torch.func`` transforms (``vmap(grad(f))``, ``jacrev``), batch the incoming gradients
    like the saved tensors: the walks update gradient buffers in place, and an in-place update of an
    unbatched tensor by a batched one is not possible. Adds a zero; a no-op outside transforms."""
    if torch.compiler.is_compiling():
        return grads
    from torch._C._functorch import is_functorch_wrapped_tensor
    tensors = (*saved, *grads)
    if not any(is_functorch_wrapped_tensor(t) for t in tensors):
        return grads
    zero = sum(t.reshape(-1)[0] * 0 for t in tensors)
    return tuple(g + zero for g in grads)


class _ReversibleLIFFunctionTraceable(torch.autograd.Function):
    """One autograd node over all T steps. Saves Y and the final (V₁, V₂) only: see NOTE above.
    Its fourth output is the largest |H| of the forward (non-differentiable), for the range check."""

    generate_vmap_rule = True     # forward and backward are plain PyTorch ops on whole tensors

    @staticmethod
    def forward(x, v1_0, v2_0, p, algo, on_drift, compute_dtype, backend, explicit_init):
        return run_forward(x, v1_0, v2_0, p, compute_dtype, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, v1_0, v2_0, p, algo, on_drift, compute_dtype, backend, explicit_init = inputs
        y, v1, v2, h_max = output
        ctx.mark_non_differentiable(h_max)
        # an explicit initial state is saved for its gradient and for the drift check; the
        # caller says whether there is one (reading the values would cost a host sync)
        ctx.save_for_backward(y, v1, v2, *((v1_0, v2_0) if explicit_init else ()))
        ctx.params, ctx.algo, ctx.on_drift, ctx.compute_dtype = p, algo, on_drift, compute_dtype
        ctx.x_dtype, ctx.backend = x.dtype, backend
        ctx.set_materialize_grads(False)  # unused final-state outputs get None, not zero tensors

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy, gv1, gv2, _g_peak):
        y, v1, v2, *init = saved_or_explain(ctx, f"ReversibleLIF ({ctx.algo})")
        p, cd = ctx.params, ctx.compute_dtype
        gy = torch.zeros_like(y) if gy is None else gy
        gv1 = torch.zeros_like(v1) if gv1 is None else gv1
        gv2 = torch.zeros_like(v2) if gv2 is None else gv2
        gy, gv1, gv2 = _same_batching((y, v1, v2), (gy, gv1, gv2))
        walk = walk_for(ctx.algo, ctx.backend)
        v1_T, v2_T = v1, v2
        gx, v1, v2, gv1, gv2, flips = walk(y, gy, v1, v2, gv1, gv2, p, cd, ctx.x_dtype)
        if ctx.on_drift != "ignore" and torch.compiler.is_compiling():      # NOTE [compiled nodes]
            v1_0, v2_0 = init if init else (torch.zeros_like(v1), torch.zeros_like(v2))
            assert_reconstructed(torch.maximum((v1 - v1_0).abs().max(), (v2 - v2_0).abs().max()),
                                 "ReversibleLIF", DRIFT_CAUSE)
        elif ctx.on_drift != "ignore" and not is_traced(y):
            v1_0, v2_0 = init if init else (torch.zeros_like(v1), torch.zeros_like(v2))
            # concrete(): under vmap this reads every batch entry's error at once
            err = concrete(torch.maximum((v1 - v1_0).abs().amax(), (v2 - v2_0).abs().amax()))
            bad = err != 0 if flips is None else (err != 0) | (concrete(flips) != 0)
            if bool(bad.any()):
                state_err = float(err.amax())
                if flips is None:  # the fused walk does not count them: diagnose now, off the hot path
                    flips = count_flips(concrete(y), concrete(v1_T), concrete(v2_T), p, cd)
                flips = int(concrete(torch.as_tensor(flips)).sum())
                check_drift("ReversibleLIF", ctx.on_drift, flips=flips, state_error=state_err,
                            cause=DRIFT_CAUSE)
        return gx, gv1, gv2, None, None, None, None, None, None


class _ReversibleLIFFunction(_ReversibleLIFFunctionTraceable):
    """The same Function, refusing forward mode with a clear message (the one without ``jvp`` is
    used while ``torch.compile`` traces, which cannot trace a Function that defines ``jvp``)."""

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError(
            f"ReversibleLIF(backward={ctx.algo!r}) has no forward-mode derivative (torch.func.jvp, "
            f"jacfwd, torch.autograd.forward_ad); use backward='autograd' for forward mode")


class ReversibleLIF(KernelBackend, SpikingNode):
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
        self._init_backend(backend, backward, "'fused' or 'revnet'")
        check_numbers("ReversibleLIF", tau=tau, v_threshold=v_threshold, coupling=coupling,
                      spike_scale=spike_scale, grid_bits=grid_bits)
        check_choice("ReversibleLIF", "backward", backward, BACKWARD_ALGORITHMS)
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

    invertible = True


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
    def exact_membrane_bound(self, dtype: torch.dtype) -> float:
        """Largest |H| (any membrane, any step) for which the backward's reconstruction is exact.

        Every membrane and every partial sum of (E2.1)/(E2.4) and (E3.2)/(E3.4) is a multiple of δ
        and must stay below 2^(significand bits) δ in the compute dtype; with |V| ≤ max |H| = M, the
        largest partial sums are M + β·max|X| (forward, and the inverse's H − q(βX̄)) and (1 + a)·M
        (the inverse's V + q(aV')). :meth:`forward` checks M + max(a·M, β·max|X|) against this
        bound (with ``backward="fused"`` or ``"revnet"``): a sufficient condition, so it may refuse
        a few inputs whose reconstruction would happen to round exactly."""
        q_bits = self.grid_bits if self.grid_bits is not None else default_grid_bits(dtype)
        return 2.0 ** (SIGNIFICAND_BITS[self.compute_dtype(dtype)] - q_bits)

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        """Run over ``x = [T, B, C, ...]``; returns Y (and the final ``(V₁, V₂)``).

        ``ValueError`` for an input outside the exact range, and (reconstructing backward) when a
        membrane leaves the range the backward's reconstruction needs, both with the remedy; an
        initial ``state`` must be finite and on the grid (:meth:`snap_state` puts it there).
        """
        check_sequence(x, node="ReversibleLIF", even_channels=True)
        if x.dtype not in _GRID_BITS:
            raise ValueError(f"ReversibleLIF: unsupported dtype {x.dtype}")
        q_bits = self.grid_bits or default_grid_bits(x.dtype)
        check_exact_range(x, self.exact_input_bound(x.dtype), who="ReversibleLIF",
                          grid_bits=q_bits, remedy=_REMEDY)
        p = self.params(x.dtype)
        cd = self.compute_dtype(x.dtype)
        v1, v2 = self.initial_state(x) if state is None else self._check_state(state, x, cd)
        backend = self.backend_for(x)
        self.last_backend = backend
        if self.backward_algorithm == "autograd":
            y, v1, v2 = autograd_forward(x, v1, v2, p, cd)
        else:
            fn = _ReversibleLIFFunctionTraceable if torch.compiler.is_compiling() else \
                _ReversibleLIFFunction
            y, v1, v2, h_max = fn.apply(x, v1, v2, p, self.backward_algorithm, self.on_drift, cd,
                                        backend, state is not None)
            if backend == "torch":       # the Triton forward does not track max |H| (run_forward)
                self._check_membranes(h_max, x, p)
        return (y, (v1, v2)) if return_state else y

    def _check_membranes(self, h_max, x, p):
        """The membranes of this forward must stay in the range the backward reconstructs
        exactly (:meth:`exact_membrane_bound`): the error comes here, not in ``backward()``.
        ``on_drift`` applies as in the backward: raise (``ValueError``), warn, or skip."""
        if self.on_drift == "ignore":
            return
        bound = self.exact_membrane_bound(x.dtype)
        x_max = x.detach().abs().amax().to(h_max.dtype)
        need = h_max + torch.maximum(p.coupling * h_max, p.input_scale * x_max)

        def message():
            return (f"ReversibleLIF: the membranes reach |V| = {float(concrete(h_max).amax()):.4g}, "
                    f"beyond what the {self.backward_algorithm} backward reconstructs exactly "
                    f"(max|V| + max(a·max|V|, β·max|X|) = {float(concrete(need).amax()):.4g} must stay "
                    f"below {bound:.4g} for {x.dtype} with grid_bits="
                    f"{self.grid_bits or default_grid_bits(x.dtype)}); {_REMEDY}")
        if self.on_drift == "raise":
            require(need < bound, message, like=x, static=(
                f"ReversibleLIF: the membranes leave the range the {self.backward_algorithm} "
                f"backward reconstructs exactly (max|V| + max(a·max|V|, β·max|X|) < {bound:.4g} "
                f"for {x.dtype}); {_REMEDY}"))
        elif not is_traced(x) and not bool((concrete(need) < bound).all()):
            warnings.warn(message(), RuntimeWarning, stacklevel=3)

    def snap_state(self, state, dtype: torch.dtype = torch.float32):
        """``state`` rounded to the grid the node uses for inputs of ``dtype``, in its compute
        dtype: an initial state :meth:`forward` accepts (it refuses states off the grid, which the
        backward could not reconstruct bit for bit)."""
        grid, cd = self.params(dtype).grid, self.compute_dtype(dtype)
        return tuple(quantize(v.to(cd), grid) for v in state)

    def _check_state(self, state, x, cd):
        if not (isinstance(state, (tuple, list)) and len(state) == 2
                and all(isinstance(v, torch.Tensor) for v in state)):
            raise ValueError(f"ReversibleLIF: state must be a pair of tensors (V₁, V₂), got "
                             f"{type(state).__name__}")
        v1, v2 = state
        want = (x.shape[1], x.shape[2] // 2, *x.shape[3:])
        for v in (v1, v2):
            if tuple(v.shape) != want:
                raise ValueError(f"ReversibleLIF: each state tensor must have shape {want}, got "
                                 f"{tuple(v.shape)}")
            if not v.is_floating_point():
                raise ValueError(f"ReversibleLIF: state tensors must be floating point, got "
                                 f"{v.dtype}")
        v1, v2 = v1.to(cd), v2.to(cd)
        grid = self.params(x.dtype).grid
        q_bits = self.grid_bits or default_grid_bits(x.dtype)
        for name, v in (("V₁", v1), ("V₂", v2)):
            vd = v.detach()
            require(torch.isfinite(vd).all(), lambda: (
                f"ReversibleLIF: the initial state {name} contains non-finite values "
                f"({int(torch.isnan(concrete(vd)).sum())} NaN, "
                f"{int(torch.isinf(concrete(vd)).sum())} Inf)"), like=x,
                static=f"ReversibleLIF: the initial state {name} contains NaN or Inf")
            require((torch.round(vd * (1.0 / grid)) * grid == vd).all(), lambda: (
                f"ReversibleLIF: the initial state {name} is not on the node's fixed-point grid "
                f"(multiples of 2^-{q_bits} = {grid:g} for {x.dtype}), so the backward could not "
                f"reconstruct it bit for bit; pass node.snap_state(state, {x.dtype}) or a state "
                f"returned by the node"), like=x,
                static=f"ReversibleLIF: the initial state {name} is not on the grid 2^-{q_bits}")
        return v1, v2

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
