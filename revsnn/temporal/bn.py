"""Per-timestep BatchNorm: statistics over B·H·W at each step, so the timesteps stay independent.

NOTE [why a time-major backward needs per-timestep BatchNorm]
=============================================================
The zoo's layer-major networks fold time into the batch, ``[T·B, C, H, W]``, so BatchNorm's mean and
variance run over T·B·H·W: the output at step t depends on the inputs of every step, and the
backward of step t needs the whole ``[T, B, C, H, W]`` input at once. A backward that walks
t = T−1 … 0 one step at a time (:mod:`revsnn.temporal`) can rebuild only one step's input, so it
needs normalisation whose statistics use one step only:

    (E8.1)  μ_t = mean_{B,H,W} Z_t,   σ²_t = var_{B,H,W} Z_t
    (E8.2)  BN_t(Z_t) = γ·(Z_t − μ_t)/√(σ²_t + ε) + β

with γ, β shared by all steps (BNTT keeps one (γ, β) per step; online SNN training, OTTT and SLTT,
normalise per step the same way). What it changes against T·B BatchNorm:

- the statistics of one step are noisier (B·H·W instead of T·B·H·W samples); with B = 16 and 32×32
  maps, the first layer still sees 16 384 samples per channel and step;
- a step's normalisation no longer depends on the other steps, so a neuron's input at t is not
  shifted by activity at other times (this is what makes the model causal: streaming works);
- running statistics: one update per forward pass (not T), with the mean over t of the per-step
  mean and unbiased variance; evaluation then uses the running statistics at every step, exactly
  as a plain BatchNorm does.

:class:`TimestepBatchNorm2d` accepts one step ``[B, C, H, W]`` or a whole sequence
``[T, B, C, H, W]``; both normalise per step, so a layer-major forward over the sequence and a
time-major forward that calls it step by step compute the same values.

>>> import torch
>>> bn = TimestepBatchNorm2d(3)
>>> x = torch.randn(4, 2, 3, 5, 5)
>>> y = bn(x)
>>> torch.testing.assert_close(y[1].mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
>>> int(bn.num_batches_tracked)          # one update for the whole sequence
1
"""

from __future__ import annotations

import contextlib
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TimestepBatchNorm2d", "collect_statistics", "frozen_statistics", "timestep_norms"]

_PLAIN, _FROZEN = "plain", "frozen"


class _Statistics:
    """Per-channel sums of the step statistics seen inside :func:`collect_statistics`."""

    def __init__(self, like: torch.Tensor):
        self.mean = torch.zeros_like(like)
        self.var = torch.zeros_like(like)
        self.count = torch.zeros_like(like)

    def add(self, mean: torch.Tensor, var: torch.Tensor, c0: int) -> None:
        c1 = c0 + mean.numel()
        self.mean[c0:c1] += mean
        self.var[c0:c1] += var
        self.count[c0:c1] += 1


class TimestepBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with statistics per timestep (E8.1–E8.2); shared affine parameters.

    In training, a step ``[B, C, H, W]`` is normalised by its own batch statistics; a sequence
    ``[T, B, C, H, W]`` step by step. Running statistics are updated once per call of a sequence,
    or, inside :func:`collect_statistics`, once when the block ends with the mean over the steps it
    saw; inside :func:`frozen_statistics` (a recomputation) never. In evaluation, the running
    statistics are used at every step. Parameter and buffer names equal ``nn.BatchNorm2d``'s, so a
    state dict moves between the two. :meth:`normalise` works on a range of channels (the
    time-major engine computes large layers a few channels at a time).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self._statistics_mode: object = _PLAIN

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (4, 5):
            raise ValueError(f"TimestepBatchNorm2d: expected one step [B, C, H, W] or a sequence "
                             f"[T, B, C, H, W], got shape {tuple(x.shape)}")

    def normalise(self, y: torch.Tensor, c0: int = 0, weight=None, bias=None) -> torch.Tensor:
        """(E8.2) for one step ``y = [B, c, H, W]`` holding channels ``c0 … c0 + c − 1``, with the
        given affine parameters (slices of :attr:`weight` / :attr:`bias`, or their stand-ins)."""
        c1 = c0 + y.shape[1]
        if self.training or self.running_mean is None:
            # Batch statistics (E8.1) come out of the same kernel that normalises (momentum 1 into
            # scratch buffers), so the forward and a recomputation run the very same code path.
            mean = torch.zeros(y.shape[1], dtype=y.dtype, device=y.device)
            var = torch.ones(y.shape[1], dtype=y.dtype, device=y.device)
            out = F.batch_norm(y, mean, var, weight, bias, True, 1.0, self.eps)          # (E8.2)
            if self.track_running_stats and self._statistics_mode != _FROZEN:
                self._record(mean, var, c0, c1 - c0 == self.num_features)
            return out
        return F.batch_norm(y, self.running_mean[c0:c1], self.running_var[c0:c1], weight, bias,
                            False, 0.0, self.eps)

    def _record(self, mean: torch.Tensor, var: torch.Tensor, c0: int, whole: bool) -> None:
        if isinstance(self._statistics_mode, _Statistics):
            self._statistics_mode.add(mean, var, c0)
        elif whole:
            self.commit(mean, var)
        else:
            raise RuntimeError("TimestepBatchNorm2d: a channel range was normalised in training "
                               "outside collect_statistics(); its running statistics would be "
                               "incomplete")

    @torch.no_grad()
    def commit(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        """One running-statistics update with per-channel ``mean`` / unbiased ``var``."""
        self.num_batches_tracked.add_(1)
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(var.to(self.running_var.dtype), alpha=factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if x.dim() == 4:
            return self.normalise(x, 0, self.weight, self.bias)
        with collect_statistics(self):
            return torch.stack([self.normalise(step, 0, self.weight, self.bias)
                                for step in x.unbind(0)])


def timestep_norms(module: nn.Module) -> list:
    """Every :class:`TimestepBatchNorm2d` inside ``module``."""
    return [m for m in module.modules() if isinstance(m, TimestepBatchNorm2d)]


@contextlib.contextmanager
def collect_statistics(module: nn.Module):
    """Per-step statistics seen inside the block update each norm's running statistics ONCE, at
    the end, with their mean over steps (the time-major forward calls every norm T times per
    pass). Nested blocks defer to the outermost one."""
    norms = [bn for bn in timestep_norms(module) if bn._statistics_mode == _PLAIN]
    for bn in norms:
        bn._statistics_mode = _Statistics(bn.running_mean if bn.running_mean is not None
                                          else torch.zeros(bn.num_features))
    try:
        yield
    finally:
        for bn in norms:
            seen, bn._statistics_mode = bn._statistics_mode, _PLAIN
            if bn.track_running_stats and bool((seen.count > 0).all()):
                bn.commit(seen.mean / seen.count, seen.var / seen.count)


@contextlib.contextmanager
def frozen_statistics(module: nn.Module):
    """Inside the block, norms use batch statistics but never touch their running statistics (a
    recomputation in backward must not count the batch twice)."""
    norms = timestep_norms(module)
    saved = [bn._statistics_mode for bn in norms]
    for bn in norms:
        bn._statistics_mode = _FROZEN
    try:
        yield
    finally:
        for bn, mode in zip(norms, saved):
            bn._statistics_mode = mode
