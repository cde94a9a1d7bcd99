"""Reversible spiking blocks (RevSNN-style couplings of whole sub-blocks) and recomputation helpers.

NOTE [reversible block equations]
=================================
A reversible block acts on a sequence ``X = [T, B, C, H, W]`` split along channels into X₁ =
channels ``[0, C/2)`` and X₂ = ``[C/2, C)``. F and G are whole spiking sub-blocks (conv → BatchNorm
→ spiking node, over all T steps at once) mapping ``[T, B, C/2, H, W]`` to the same shape (Gomez et
al. 2017; Zhang & Zhang, AAAI 2024):

    (E7.0)  X̄ = q(X)                the stack's input on the grid δ = 2^-Q (straight-through)
    (E7.1)  Y₁ = X̄₁ + F(X̄₂)
    (E7.2)  Y₂ = X̄₂ + G(Y₁)

and inverts without storing anything but Y:

    (E7.3)  X̄₂ = Y₂ − G(Y₁)
    (E7.4)  X̄₁ = Y₁ − F(X̄₂)

:class:`RevSequence` runs a stack of blocks as ONE autograd Function that saves only the stack's
output (which the next layer stores as its input anyway). Its backward walks the blocks last to
first; per block it evaluates G once and F once under autograd, and each evaluation serves both the
inversion (E7.3)/(E7.4) and the vector-Jacobian products (RevNet's backward, Gomez et al. Alg. 1):

    (E7.5)  Ȳ₁* = Ȳ₁ + (∂G/∂Y₁)ᵀ Ȳ₂;     X̄̄₁ = Ȳ₁*;    Ḡθ = (∂G/∂θ_G)ᵀ Ȳ₂
    (E7.6)  X̄̄₂ = Ȳ₂ + (∂F/∂X₂)ᵀ Ȳ₁*;                 F̄θ = (∂F/∂θ_F)ᵀ Ȳ₁*

NOTE [exactness on the grid]
============================
In floating point Y₂ − G(Y₁) is not X₂ in general: Y₂ = fl(X₂ + G) rounds, so the subtraction is
off by up to half an ulp of Y₂. That error is small (≈1e-7 relative in fp32), but F and G contain
threshold decisions, and a value within one ulp of the threshold flips a spike, an error of the size
of a spike. The stack therefore snaps its input to the grid δ = 2^-Q (E7.0) and requires F and G to
return values on a grid (a spiking node's output is 0/1; ReversibleLIF's is on δ'/2 = 2^-13 for
fp32). Sums of grid values with magnitude below 2^(24 - 13) = 2048 in fp32 are exact, so (E7.3) and
(E7.4) reproduce the forward's inputs *bit for bit*, F and G recompute bit-identical values, and the
gradients equal those of plain autograd up to the order of floating-point summations (≤ 1e-6
relative, ``tests/test_blocks.py``). The forward checks the exactness condition per block
(``Y₁ − F == X̄₁`` and ``Y₂ − G == X̄₂``) and raises :class:`~revsnn.ReconstructionError` when it
fails.
``grid_bits=None`` turns the grid off (float arithmetic): reconstruction is then off by rounding and
the gradients by more (measured in ``tests/test_blocks.py``; see :func:`reconstruction_error`).

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
from typing import Iterable, Optional, Sequence

import torch
from torch import nn

from .reversible import ReconstructionError, quantize

__all__ = [
    "frozen_running_stats", "uses_rng", "capture_rng", "replay_rng", "reset_neuron_states",
    "ConvBNNode", "RevBlock", "RevSequence", "RevSpikingResNet", "rev_spiking_resnet",
    "REVRESNET_CONFIGS", "BLOCK_MODES", "reconstruction_error",
]

BLOCK_MODES = ("reversible", "plain")
"""``reversible``: one autograd Function per stack, saves only its output; ``plain``: the same
network under ordinary autograd (a standard spiking ResNet, every activation stored)."""


# --------------------------------------------------------------------------------------------
# Recomputation helpers (shared with revsnn.binary)


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


# --------------------------------------------------------------------------------------------
# Sub-blocks and the coupling


def _default_node() -> nn.Module:
    from .neuron import LIF
    return LIF()


class ConvBNNode(nn.Module):
    """Conv2d → BatchNorm2d → spiking node over a sequence ``[T, B, C, H, W]``.

    The convolution and BatchNorm run on the merged ``T·B`` batch (BatchNorm statistics span all
    steps, as in SpikingJelly's multi-step ``SeqToANNContainer``); the node runs over T.
    """

    def __init__(self, in_channels: int, out_channels: int, node: Optional[nn.Module] = None,
                 kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.node = node if node is not None else _default_node()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        z = self.bn(self.conv(x.flatten(0, 1)))
        return self.node(z.unflatten(0, (T, B)))


def _halves(x: torch.Tensor):
    c = x.shape[2] // 2
    return x[:, :, :c], x[:, :, c:]


class RevBlock(nn.Module):
    """One additive coupling (E7.1)/(E7.2) with its inverse (E7.3)/(E7.4).

    >>> torch.manual_seed(0) is not None
    True
    >>> blk = RevBlock(ConvBNNode(2, 2), ConvBNNode(2, 2)).eval()
    >>> x = torch.randint(0, 3, (2, 1, 4, 3, 3)).float()
    >>> torch.equal(blk.inverse(blk(x)), x)
    True
    """

    def __init__(self, f: nn.Module, g: nn.Module):
        super().__init__()
        self.f, self.g = f, g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = _halves(x)
        y1 = x1 + self.f(x2)                                   # (E7.1)
        y2 = x2 + self.g(y1)                                   # (E7.2)
        return torch.cat([y1, y2], dim=2)

    @torch.no_grad()
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = _halves(y)
        with frozen_running_stats(self):
            x2 = y2 - self.g(y1)                               # (E7.3)
            x1 = y1 - self.f(x2)                               # (E7.4)
        return torch.cat([x1, x2], dim=2)


def _check_exact(sum_, term, addend, grid_bits, which):
    if grid_bits is not None and not torch.equal(sum_ - term, addend):
        raise ReconstructionError(
            f"RevSequence: the coupling {which} is not exactly invertible in "
            f"{sum_.dtype}: its sub-block output is off the grid or the stream left the exact "
            f"range (|x| < 2^(significand bits - {grid_bits} - 1)); end F and G in a spiking "
            f"node, lower grid_bits, or use float64")


class _RevStackFunction(torch.autograd.Function):
    """One autograd node over a stack of :class:`RevBlock`; saves only the stack's output."""

    @staticmethod
    def forward(x, stack, grid_bits, record_rng, *params):
        x = x.detach()  # module hooks (e.g. MemTracker's) must not see a grad-requiring input here
        if grid_bits is not None:
            x = quantize(x, 2.0 ** -grid_bits)                                   # (E7.0)
        x1, x2 = _halves(x)
        states_cpu, states_cuda = [], []

        def call(sub, inp):
            if record_rng:                       # the state each F/G call starts from, in order
                cpu, cuda = capture_rng(x.device)
                states_cpu.append(cpu)
                if cuda is not None:
                    states_cuda.append(cuda)
            reset_neuron_states(sub)
            return sub(inp)

        for blk in stack.blocks:
            f = call(blk.f, x2)
            y1 = x1 + f                                                          # (E7.1)
            _check_exact(y1, f, x1, grid_bits, "Y1 = X1 + F(X2)")
            g = call(blk.g, y1)
            y2 = x2 + g                                                          # (E7.2)
            _check_exact(y2, g, x2, grid_bits, "Y2 = X2 + G(Y1)")
            x1, x2 = y1, y2
        empty = torch.empty(0, dtype=torch.uint8)
        cpu = torch.stack(states_cpu) if states_cpu else empty
        cuda = torch.stack(states_cuda) if states_cuda else empty.to(x.device)
        return torch.cat([x1, x2], dim=2), cpu, cuda

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, stack, grid_bits, record_rng, *params = inputs
        y, cpu, cuda = output
        ctx.mark_non_differentiable(cpu, cuda)
        ctx.save_for_backward(y, *((cpu, cuda) if record_rng else ()))
        ctx.stack, ctx.grid_bits, ctx.record_rng = stack, grid_bits, record_rng

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy, _g_cpu, _g_cuda):
        y, *rng = ctx.saved_tensors
        stack, dev = ctx.stack, y.device
        params = [p for p in stack.parameters() if p.requires_grad]
        grads = {id(p): None for p in params}
        y1, y2 = (h.contiguous() for h in _halves(y))
        gy1, gy2 = (h.contiguous() for h in _halves(gy))

        def rng_at(i):
            if not rng:
                return None, None
            cpu, cuda = rng
            return cpu[i], (cuda[i] if cuda.numel() else None)

        def vjp(sub, inp, gout, i):
            """Evaluate sub(inp) under autograd; return (value, ∂/∂inp, and accumulate θ grads)."""
            own = [p for p in sub.parameters() if p.requires_grad]
            cpu, cuda = rng_at(i)
            with torch.enable_grad(), frozen_running_stats(sub), replay_rng(cpu, cuda, dev):
                reset_neuron_states(sub)
                leaf = inp.detach().requires_grad_()
                out = sub(leaf)
            g = torch.autograd.grad(out, [leaf, *own], gout, allow_unused=True)
            for p, gp in zip(own, g[1:]):
                if gp is not None:
                    grads[id(p)] = gp if grads[id(p)] is None else grads[id(p)] + gp
            return out.detach(), g[0]

        for k in range(len(stack.blocks) - 1, -1, -1):
            blk = stack.blocks[k]
            g_val, g_in = vjp(blk.g, y1, gy2, 2 * k + 1)
            x2 = y2 - g_val                                                      # (E7.3)
            gy1 = gy1 + g_in if g_in is not None else gy1                        # (E7.5)
            f_val, f_in = vjp(blk.f, x2, gy1, 2 * k)
            x1 = y1 - f_val                                                      # (E7.4)
            gx2 = gy2 + f_in if f_in is not None else gy2                        # (E7.6)
            y1, y2, gy2 = x1, x2, gx2
        gx = torch.cat([gy1, gy2], dim=2)
        return (gx, None, None, None, *(grads[id(p)] for p in params))


class RevSequence(nn.Module):
    """A stack of :class:`RevBlock` run as one reversible autograd Function (or plainly).

    Args:
        blocks: the blocks, each mapping ``[T, B, C, H, W]`` to the same shape.
        grid_bits: Q of the stream grid δ = 2^-Q (NOTE [exactness on the grid]); ``None`` turns the
            grid off (inexact float reconstruction).
        mode: ``"reversible"`` (default) or ``"plain"`` (ordinary autograd, stores everything).
    """

    def __init__(self, blocks: Iterable[RevBlock], grid_bits: Optional[int] = 12,
                 mode: str = "reversible"):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        if not len(self.blocks):
            raise ValueError("RevSequence: needs at least one block")
        if mode not in BLOCK_MODES:
            raise ValueError(f"RevSequence: mode must be one of {BLOCK_MODES}, got {mode!r}")
        self.grid_bits = grid_bits
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[2] % 2:
            raise ValueError(f"RevSequence: expected [T, B, C, ...] with even C, got "
                             f"{tuple(x.shape)}")
        params = [p for p in self.parameters() if p.requires_grad]
        if self.mode == "plain" or not (torch.is_grad_enabled()
                                        and (x.requires_grad or params)):
            if self.grid_bits is not None:
                x = quantize(x, 2.0 ** -self.grid_bits)                          # (E7.0)
            for blk in self.blocks:
                x = blk(x)
            return x
        record = self.training and uses_rng(self)
        y, _, _ = _RevStackFunction.apply(x, self, self.grid_bits, record, *params)
        return y

    @torch.no_grad()
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct the (gridded) stack input from its output."""
        for blk in reversed(self.blocks):
            y = blk.inverse(y)
        return y

    def extra_repr(self) -> str:
        return f"grid_bits={self.grid_bits}, mode={self.mode!r}"


def reconstruction_error(stack: RevSequence, x: torch.Tensor) -> float:
    """max |inverse(forward(x)) − q(x)|: 0 on the grid, rounding-sized without it."""
    with torch.no_grad(), frozen_running_stats(stack):
        xq = x if stack.grid_bits is None else quantize(x, 2.0 ** -stack.grid_bits)
        y = xq
        for blk in stack.blocks:
            y = blk(y)
        return float((stack.inverse(y) - xq).abs().max())


# --------------------------------------------------------------------------------------------
# Networks

REVRESNET_CONFIGS = {
    "revresnet_s": (2, 2, 2),
    "revresnet_m": (4, 4, 4),
    "revresnet_l": (8, 8, 8),
}
"""Reversible blocks per stage of the named variants (three stages, widths w, 2w, 4w)."""


def _parse_block_mode(mode) -> str:
    """``"reversible"``/``"plain"``, a MemoryMode (BPTT → plain, REVERSIBLE_BLOCKS → reversible) or
    its value (``"bptt"``, ``"blocks"``)."""
    text = getattr(mode, "value", mode)
    text = str(text).strip().lower()
    if text in ("reversible", "blocks", "reversible_blocks"):
        return "reversible"
    if text in ("plain", "bptt"):
        return "plain"
    raise ValueError(f"unknown block mode {mode!r}; choose 'reversible' ('blocks') or 'plain' "
                     f"('bptt')")


class RevSpikingResNet(nn.Module):
    """Spiking ResNet whose residual stages are reversible stacks (RevSNN-style).

    stem ConvBNNode(C_in → w) → stage 1: RevSequence(n₁ blocks, w) → ConvBNNode(w → 2w, stride 2)
    → stage 2: RevSequence(n₂, 2w) → ConvBNNode(2w → 4w, stride 2) → stage 3: RevSequence(n₃, 4w)
    → mean over T and space → Linear(4w → classes). Inside a block F and G are
    ConvBNNode(c/2 → c/2). The stem and the two downsampling layers are ordinary (they store their
    inputs); the stacks store only their outputs, so memory for backward does not grow with depth.

    Input ``[T, B, C_in, H, W]``; output logits ``[B, classes]``.

    Args:
        blocks_per_stage: reversible blocks per stage.
        width: w, even.
        num_classes, in_channels: classifier outputs, input channels.
        node_factory: zero-argument callable building a multi-step node (default
            :class:`~revsnn.LIF`).
        mode: ``"reversible"``/``"blocks"`` (default) or ``"plain"``/``"bptt"``, or a MemoryMode.
        grid_bits: stream grid of the stacks (see :class:`RevSequence`).

    >>> net = rev_spiking_resnet("revresnet_s", width=4, num_classes=3)
    >>> net(torch.rand(2, 1, 3, 8, 8)).shape
    torch.Size([1, 3])
    """

    def __init__(self, blocks_per_stage: Sequence[int] = (2, 2, 2), width: int = 32,
                 num_classes: int = 10, in_channels: int = 3, node_factory=None,
                 mode="reversible", grid_bits: Optional[int] = 12):
        super().__init__()
        if width < 2 or width % 2:
            raise ValueError(f"RevSpikingResNet: width must be even and >= 2, got {width}")
        node = node_factory or _default_node
        self.mode = _parse_block_mode(mode)
        widths = [width * 2 ** i for i in range(len(blocks_per_stage))]
        self.stem = ConvBNNode(in_channels, widths[0], node())
        layers = []
        for i, (n, w) in enumerate(zip(blocks_per_stage, widths)):
            if i > 0:
                layers.append(ConvBNNode(widths[i - 1], w, node(), stride=2))
            blocks = [RevBlock(ConvBNNode(w // 2, w // 2, node()),
                               ConvBNNode(w // 2, w // 2, node())) for _ in range(n)]
            layers.append(RevSequence(blocks, grid_bits=grid_bits, mode=self.mode))
        self.stages = nn.Sequential(*layers)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"RevSpikingResNet: expected [T, B, C, H, W], got {tuple(x.shape)}")
        z = self.stages(self.stem(x))
        return self.classifier(z.mean(dim=(0, 3, 4)))

    @property
    def depth(self) -> int:
        """Spiking conv layers: stem + 2 per reversible block + downsampling layers."""
        n = sum(2 * len(s.blocks) for s in self.stages if isinstance(s, RevSequence))
        return 1 + n + sum(isinstance(s, ConvBNNode) for s in self.stages)


def rev_spiking_resnet(name: str, **kwargs) -> RevSpikingResNet:
    """Build a named variant (:data:`REVRESNET_CONFIGS`): ``revresnet_s``/``_m``/``_l``."""
    try:
        blocks = REVRESNET_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(REVRESNET_CONFIGS)}") \
            from None
    return RevSpikingResNet(blocks, **kwargs)
