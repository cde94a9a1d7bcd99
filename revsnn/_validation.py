"""Input checks shared by every node: bad input gets a ``ValueError`` that names the problem."""

from __future__ import annotations

import torch


def check_sequence(x: torch.Tensor, *, node: str, even_channels: bool = False,
                   check_finite: bool = False) -> None:
    """Validate a time-first sequence ``[T, B, C, ...]``.

    Raises ``ValueError`` for a non-tensor, rank < 3, a non-floating dtype, T = 0, B = 0, an odd channel
    count where the node splits channels into two groups, and (when asked) NaN or Inf values.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{node}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(
            f"{node}: expected a time-first sequence [T, B, C, ...] with rank >= 3, got shape "
            f"{tuple(x.shape)} (rank {x.dim()})")
    if not x.is_floating_point():
        raise ValueError(f"{node}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{node}: the sequence has T = 0 timesteps (shape {tuple(x.shape)})")
    if x.shape[1] == 0:
        raise ValueError(f"{node}: the batch is empty (B = 0, shape {tuple(x.shape)})")
    if even_channels and x.shape[2] % 2 != 0:
        raise ValueError(
            f"{node}: the channel dimension (dim 2) must be even to split into two groups, got "
            f"C = {x.shape[2]} (shape {tuple(x.shape)})")
    if check_finite and not bool(torch.isfinite(x.detach()).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{node}: input contains non-finite values ({n_nan} NaN, {n_inf} Inf)")
