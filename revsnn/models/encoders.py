"""Input encoders: a static image ``[B, C, H, W]`` to a time-first sequence ``[T, B, C, H, W]``.

- :class:`DirectEncoder`: the image itself at every step (the first conv-BN then acts as the
  encoding layer, as in most CIFAR SNNs).
- :class:`RateEncoder`: Bernoulli spikes with probability = pixel intensity (clamped to [0, 1]),
  drawn from the encoder's own generator, so two encoders with the same seed give the same spikes
  and the global RNG is untouched.

>>> import torch
>>> x = torch.rand(2, 1, 4, 4)
>>> DirectEncoder(3)(x).shape
torch.Size([3, 2, 1, 4, 4])
>>> torch.equal(RateEncoder(5, seed=0)(x), RateEncoder(5, seed=0)(x))
True
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["DirectEncoder", "RateEncoder", "ENCODERS", "make_encoder", "encode_static"]


def _check_T(T: int) -> int:
    if int(T) < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    return int(T)


class DirectEncoder(nn.Module):
    """Repeat the input T times along a new leading time axis."""

    def __init__(self, T: int):
        super().__init__()
        self.T = _check_T(T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return encode_static(x, self.T, "direct")

    def extra_repr(self) -> str:
        return f"T={self.T}"


class RateEncoder(nn.Module):
    """Bernoulli rate coding: ``S[t] ~ Bernoulli(clamp(x, 0, 1))`` independently per step.

    ``seed`` seeds a private generator once (created on the input's device at the first call);
    later calls continue its stream. :meth:`reseed` restarts it. ``seed=None`` uses the global RNG.
    """

    def __init__(self, T: int, seed: Optional[int] = 0):
        super().__init__()
        self.T = _check_T(T)
        self.seed = seed
        self._generator: Optional[torch.Generator] = None

    def reseed(self, seed: Optional[int] = None) -> None:
        if seed is not None:
            self.seed = seed
        self._generator = None

    def _gen(self, device: torch.device):
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(int(self.seed))
        return self._generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return encode_static(x, self.T, "rate", self._gen(x.device))

    def extra_repr(self) -> str:
        return f"T={self.T}, seed={self.seed}"


ENCODERS = {"direct": DirectEncoder, "rate": RateEncoder}


def encode_static(x: torch.Tensor, T: int, encoder: str,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A static batch ``[B, ...]`` as a time-first sequence ``[T, B, ...]``: ``"direct"`` repeats
    it T times; ``"rate"`` draws S ~ Bernoulli(clamp(x, 0, 1)) independently per step from
    ``generator`` (the global RNG when None).

    >>> encode_static(torch.ones(2, 3), 4, "direct").shape
    torch.Size([4, 2, 3])
    """
    if encoder == "direct":
        return x.unsqueeze(0).repeat(T, *([1] * x.dim()))
    if encoder == "rate":
        p = x.detach().clamp(0.0, 1.0).unsqueeze(0).expand(T, *x.shape)
        return torch.bernoulli(p, generator=generator)
    raise ValueError(f"unknown encoder {encoder!r}; choose from {', '.join(ENCODERS)}")


def make_encoder(name: str, T: int, seed: Optional[int] = 0) -> nn.Module:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")
    return DirectEncoder(T) if name == "direct" else RateEncoder(T, seed=seed)
