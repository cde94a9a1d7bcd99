""":class:`SpikingNet`: encoder → feature blocks → classifier head, output = mean over T of the logits.

The same class hosts every architecture of the zoo; the architectures only differ in the blocks
they put in ``features`` and the head. One :class:`~revsnn.layers.units.NodeSpec` (a strategy and
the node hyperparameters) is applied to every node at construction.
"""

from __future__ import annotations

import torch
from torch import nn

from .encoders import make_encoder
from ..layers.units import NodeSpec, is_node

__all__ = ["SpikingNet"]


class SpikingNet(nn.Module):
    """A spiking classifier over ``[T, B, C, H, W]``.

    ``forward`` takes a static batch ``[B, C, H, W]`` (encoded to T steps by ``encoder``) or an
    already time-first sequence ``[T, B, C, H, W]`` (used as is), and returns the logits averaged
    over time, ``[B, num_classes]`` (the head returns logits per step ``[T, B, K]``, or already
    averaged ones ``[B, K]``).
    """

    def __init__(self, features: nn.Sequential, head: nn.Module, spec: NodeSpec, *, T: int = 4,
                 encoder: str = "direct", seed: int = 0, config: dict | None = None):
        super().__init__()
        self.encoder = make_encoder(encoder, T, seed)
        self.features = features
        self.head = head
        self.spec = spec
        self.config = dict(config or {})

    @property
    def preset(self):
        """The :class:`~revsnn.strategy.Preset` every node was built for."""
        return self.spec.preset

    @property
    def strategy(self):
        return self.spec.strategy

    @property
    def T(self) -> int:
        return self.encoder.T

    def nodes(self) -> list:
        """The spiking node modules, in forward order (a wrapper, not the node inside it)."""
        found, inside = [], set()
        for name, m in self.named_modules():
            if is_node(m) and not any(name.startswith(p + ".") for p in inside):
                found.append(m)
                inside.add(name)
        return found

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return self.encoder(x)
        if x.dim() == 5:
            return x
        raise ValueError(f"{type(self).__name__}: expected [B, C, H, W] or [T, B, C, H, W], got "
                         f"shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(self.encode(x)))      # [T, B, K] or [B, K]
        return logits.mean(0) if logits.dim() == 3 else logits
