"""BatchNorm fused with a reversible node: ``conv → BN → node`` whose BN input is reconstructed in
backward, not stored. The equations (E2.B1)–(E2.B4), what is stored and why it is exact: NOTE [BN +
node fusion] in :mod:`revsnn.functional.bn_inverse`.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..functional.bn_inverse import (IN_GRAPH, RESIDUAL_TOLERANCE, code_step, decode_node_input,
                                     encode_residual, encode_residual_in_graph, residual_bits)
# The node's backward walks are shared with the node, not copied (one backward per algorithm).
from ..nodes.base import check_drift, saved_or_explain
from ..nodes.compiled import assert_reconstructed
from ..nodes.reversible import DRIFT_CAUSE, ReversibleLIF, walk_for

__all__ = ["BNNodeFunction", "apply_bn_node", "can_fuse"]


def can_fuse(bn: nn.Module, node: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``bn → node`` on ``x`` can run as one :class:`BNNodeFunction`.

    Needs an affine 2-d/1-d BatchNorm, a node that says it fuses (``node.fuses_bn``: a
    :class:`ReversibleLIF` whose backward is ``fused`` or ``revnet``; under ``autograd`` everything
    is stored anyway) and fp32/fp64. ``SyncBatchNorm`` is never fused: the fused unit computes
    per-process statistics and would bypass the sync.
    """
    return (isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.affine
            and not isinstance(bn, nn.SyncBatchNorm)
            and getattr(node, "fuses_bn", False) and x.dtype in RESIDUAL_TOLERANCE)


def _bn_call(bn: nn.modules.batchnorm._BatchNorm):
    """``(training, momentum factor, running_mean, running_var)`` exactly as ``_BatchNorm.forward``.

    Increments ``num_batches_tracked`` like the module does (once per call).
    """
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    training = bn.training or (bn.running_mean is None and bn.running_var is None)
    use_running = not bn.training or bn.track_running_stats
    return (training, factor, bn.running_mean if use_running else None,
            bn.running_var if use_running else None)


def _batch_norm(x, weight, bias, rmean, rvar, training: bool, factor: float, eps: float):
    """``(z, μ, σ⁻¹)`` (E2.B1): the output of the very kernel ``F.batch_norm`` dispatches to (so z
    equals ``nn.BatchNorm2d``'s bit for bit, on CPU and CUDA) and the statistics it normalised
    with (the batch's in training, the running ones in eval)."""
    if training:
        impl = getattr(torch, "_batch_norm_impl_index", None)
        if impl is not None:
            # (output, save_mean, save_invstd, reserve, backend); native, cuDNN and MIOpen all
            # return the batch mean and the inverse standard deviation.
            z, mean, invstd, _, _ = impl(x, weight, bias, rmean, rvar, True, factor, eps,
                                         torch.backends.cudnn.enabled)
            if mean.numel() == x.shape[1] and invstd.numel() == x.shape[1]:
                return z, mean, invstd
            raise RuntimeError("BatchNorm backend returned no batch statistics")  # pragma: no cover
        z = F.batch_norm(x, rmean, rvar, weight, bias, True, factor, eps)  # pragma: no cover
        var, mean = torch.var_mean(x, dim=[d for d in range(x.dim()) if d != 1],  # pragma: no cover
                                   unbiased=False)
        return z, mean, torch.rsqrt(var + eps)  # pragma: no cover
    z = F.batch_norm(x, rmean, rvar, weight, bias, False, factor, eps)
    return z, rmean.clone(), torch.rsqrt(rvar + eps)


class BNNodeFunction(torch.autograd.Function):
    """``z = BN(x) (+ a); Y = node(z)`` in one autograd node that stores no BN input (NOTE above).

    ``x`` is the BN input with time folded into the batch, ``[T·B, C, ...]``; ``Y`` is ``[T, B, C, ...]``.
    Outputs ``(Y, V₁, V₂, code, μ, σ⁻¹)``; only Y is differentiable.
    """

    @staticmethod
    def forward(x, weight, bias, addend, bn, node, T, bits):
        training, factor, rmean, rvar = _bn_call(bn)
        z, mean, invstd = _batch_norm(x, weight, bias, rmean, rvar, training, factor, bn.eps)
        z = z.view(T, -1, *z.shape[1:])
        if addend is not None:
            z = z + addend
        y, (v1, v2) = node(z, return_state=True)
        if bits == IN_GRAPH:
            code = encode_residual_in_graph(z, weight, node.params(z.dtype).grid)
        elif bits:
            code = encode_residual(z, node.params(z.dtype).grid, bits, inplace=True)
        else:
            code = x.new_empty(0)
        return y, v1, v2, code, mean, invstd

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, addend, bn, node, T, bits = inputs
        y, v1, v2, code, mean, invstd = output
        ctx.mark_non_differentiable(v1, v2, code, mean, invstd)
        ctx.set_materialize_grads(False)   # no zero tensors for the unused outputs' gradients
        # bits == 0: some |γ| too small for (E2.B2); keep the BN input (and its mean) instead.
        stored = (code,) if bits else (x, mean)
        ctx.save_for_backward(y, v1, v2, invstd, weight, bias,
                              *(() if addend is None else (addend,)), *stored)
        ctx.node, ctx.bits, ctx.training = node, bits, bn.training or bn.running_mean is None
        ctx.has_addend = addend is not None

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy, *_unused):
        # NOTE: in a network the first (largest) layer's backward is where the fused network
        # reaches its peak memory, so nothing of Y's size is allocated here besides the node's
        # input gradient z̄ (from the walk), which then becomes x̄ in place. x̂ is rebuilt from Y
        # and the residual code twice (for γ̄, then for x̄), in chunks of timesteps of at most
        # _CHUNK_ELEMENTS elements (whole small layers at once: fewer, larger operations).
        y, v1, v2, invstd, weight, bias, *rest = saved_or_explain(ctx, "BatchNorm + ReversibleLIF")
        addend = rest.pop(0) if ctx.has_addend else None
        node: ReversibleLIF = ctx.node
        p, cd = node.params(y.dtype), node.compute_dtype(y.dtype)
        if gy is None:
            gy = torch.zeros_like(y)
        walk = walk_for(node.backward_algorithm, node.backend_for(y))
        zeros = torch.zeros_like(v1)
        gz, v1_0, v2_0, _, _, flips = walk(y, gy, v1, v2, zeros, zeros.clone(), p, cd, y.dtype)
        del gy
        _check_drift(flips, v1_0, v2_0, node.on_drift)
        T = y.shape[0]
        shape = (1, 1, -1) + (1,) * (y.dim() - 3)              # per channel, over [t, B, C, ...]
        n_chunks = min(T, max(1, -(-y.numel() // _CHUNK_ELEMENTS)))
        chunks = _split_steps(T, n_chunks)
        if ctx.bits:
            (code,) = rest
            step = code_step(weight, p.grid, y.dtype, ctx.bits)
            inv_gamma, beta = (1.0 / weight).view(shape), bias.view(shape)

            def xhat(c):
                z = decode_node_input(y[c], node)
                if ctx.bits == IN_GRAPH:                                       # step: a tensor
                    z = z + code[c].to(z.dtype) * step
                else:
                    z.add_(code[c], alpha=step)                                # q(z) + r', (E2.B4)
                if addend is not None:
                    z.sub_(addend[c])
                return z.sub_(beta).mul_(inv_gamma)                            # (E2.B2)
        else:
            x, mean = rest
            x = x.view(T, -1, *x.shape[1:])

            def xhat(c):
                return (x[c] - mean.view(shape)).mul_(invstd.view(shape))    # (E2.B1)

        need_ga = ctx.has_addend and ctx.needs_input_grad[3]
        dims = [d for d in range(y.dim()) if d != 2]
        gbeta = gz.sum(dims)                                                  # (E2.B3)
        ggamma = sum(xhat(c).mul_(gz[c]).sum(dims) for c in chunks)
        scale = (weight * invstd).view(shape)
        gx = torch.empty_like(gz) if need_ga else gz                          # in place in z̄
        if ctx.training:
            m = gz.numel() // gz.shape[2]
            a, b = (-ggamma / m).view(shape), (gbeta / m).view(shape)
            for c in chunks:
                torch.add(gz[c], xhat(c).mul_(a), out=gx[c]).sub_(b).mul_(scale)
        else:
            torch.mul(gz, scale, out=gx)
        return (gx.flatten(0, 1) if ctx.needs_input_grad[0] else None,
                ggamma if ctx.needs_input_grad[1] else None,
                gbeta if ctx.needs_input_grad[2] else None,
                gz if need_ga else None, None, None, None, None)


def _split_steps(T: int, n: int) -> list:
    """``range(T)`` in ``n`` consecutive slices, as ``torch.arange(T).tensor_split(n)`` cuts it (the
    first ``T % n`` one step longer), without tensors (no host read in a graph).

    >>> _split_steps(5, 3)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    size, extra = divmod(T, n)
    bounds = [0]
    for i in range(n):
        bounds.append(bounds[-1] + size + (i < extra))
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


_CHUNK_ELEMENTS = 1 << 20
"""Elements per chunk of the BN backward (4 MiB in fp32), or one timestep if that is larger."""


def _check_drift(flips, v1_0, v2_0, on_drift: str) -> None:
    """The node's drift guard (NOTE [drift guard]): the walk must end at rest (the models start
    every sequence from rest) with no flipped spike decision (when the walk counts them)."""
    if on_drift == "ignore":
        return
    if torch.compiler.is_compiling():                                   # NOTE [compiled nodes]
        assert_reconstructed(torch.maximum(v1_0.abs().max(), v2_0.abs().max()),
                             "BN+ReversibleLIF", DRIFT_CAUSE)
        return
    check_drift("BN+ReversibleLIF", on_drift, flips=0 if flips is None else int(flips),
                state_error=float(torch.maximum(v1_0.abs().max(), v2_0.abs().max())),
                cause=DRIFT_CAUSE)


def apply_bn_node(x: torch.Tensor, bn: nn.Module, node: nn.Module, T: int,
                  addend: Optional[torch.Tensor] = None, fuse: bool = True) -> torch.Tensor:
    """``node(bn(x).view(T, B, ...) (+ addend))``, fused into :class:`BNNodeFunction` when possible.

    ``x`` is ``[T·B, C, ...]`` (time folded into the batch), ``addend`` ``[T, B, C, ...]``. The
    result is the same tensor either way; fused, the BN input is not stored (NOTE above).
    """
    if fuse and can_fuse(bn, node, x):
        grid = node.params(x.dtype).grid
        # a graph cannot read γ on the host: NOTE [BN + node fusion], "In a graph"
        bits = IN_GRAPH if torch.compiler.is_compiling() else residual_bits(bn.weight, grid,
                                                                             x.dtype)
        return BNNodeFunction.apply(x, bn.weight, bn.bias, addend, bn, node, T, bits)[0]
    z = bn(x)
    z = z.view(T, -1, *z.shape[1:])
    return node(z if addend is None else z + addend)
