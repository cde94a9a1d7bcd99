"""Memory strategies: a frozen record of orthogonal choices, and one registry of named presets.

A :class:`Strategy` says how a network keeps what its backward needs, one independent choice per
field (node family, backward algorithm, reconstruction, checkpointing, BatchNorm fusion, schedule,
baseline, reversible blocks). A :class:`Preset` gives one strategy a name, a legend label, a colour
and marker, the architectures and commands it is offered for, and (optionally) its own builders.
The registry (:func:`register`, :func:`get`, :func:`parse`, :func:`presets`) is the only list of
strategies: :func:`revsnn.models.build`, every command's ``--modes``, the benchmarks, the training
loop, the dashboard's menus and legends and the notebooks all take names from it.

Names are parsed once, at the edge (:func:`parse` / :func:`parse_many`), into presets; a preset that
is not offered for a command or does not build an architecture is refused there, with a message that
lists what is. :class:`MemoryMode` keeps its names working: each member is the name of a preset.

>>> parse("fused").strategy.backward
'fused'
>>> parse("REVERSIBLE_FUSED") is parse(MemoryMode.REVERSIBLE_FUSED) is get("fused")
True
>>> [p.name for p in presets(command="nodes")][:3]
['spikingjelly', 'bptt', 'checkpoint']
>>> parse("blocks", arch="vgg11")
Traceback (most recent call last):
...
ValueError: memory mode 'blocks' does not build 'vgg11' (it builds revresnet_s, revresnet_m, revresnet_l); the modes for 'vgg11' are: spikingjelly, spikingjelly_memopt, bptt, ...

Adding a strategy is one call: ``register(Preset("mine", Strategy(...), label=..., colour=...,
families=("vgg",), builder=my_builder))``; ``builder(arch, preset, **build_kwargs)`` then builds
its networks and ``node_builder(**node_kwargs)`` its standalone node (both default to the zoo's).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from torch import nn

__all__ = [
    "Strategy", "Preset", "register", "unregister", "get", "parse", "parse_many", "presets", "names", "defaults",
    "preset_for", "MemoryMode", "make_node", "backends_of", "COMMANDS", "FAMILIES", "NODE_FAMILIES",
    "BACKWARDS", "RECONSTRUCTIONS", "SCHEDULES", "BASELINES", "BLOCKS",
]

NODE_FAMILIES = ("lif", "reversible", "binary")
"""``lif``: the standard LIF (:class:`~revsnn.LIF`, or SpikingJelly's with a baseline);
``reversible``: :class:`~revsnn.ReversibleLIF`; ``binary``: :class:`~revsnn.BinaryReversibleLIF`."""
BACKWARDS = ("autograd", "revnet", "fused")
"""``autograd``: plain BPTT through the forward; ``revnet``: reconstruct a step, re-run it under
autograd; ``fused``: reconstruction and vector-Jacobian product in one graph-free pass."""
RECONSTRUCTIONS = ("none", "reverse", "replay")
"""How a reconstructing backward rebuilds the membranes: not at all (autograd stores them), by
walking back from the final state, or by re-running the forward from rest (binary node only)."""
SCHEDULES = ("layer", "temporal")
"""``layer``: every layer runs all T steps before the next layer (the zoo); ``temporal``: every
layer runs one step before the next step, forward and backward (:mod:`revsnn.temporal`, which
registers the ``temporal`` preset with its own builder)."""
BASELINES = ("none", "spikingjelly", "memopt")
"""``spikingjelly``: SpikingJelly's ``LIFNode`` (the comparison baseline); ``memopt``: that network
after SpikingJelly's ``memopt.optimize_memory``."""
BLOCKS = ("plain", "reversible")
"""``reversible``: the residual stages of a reversible-block ResNet run as reversible stacks that
store only their outputs (:class:`~revsnn.layers.reversible.RevSequence`); ``plain``: ordinary
autograd."""

COMMANDS = ("nodes", "network", "budget", "train")
"""Where a preset can be offered: ``nodes`` (a standalone node), ``network`` and ``budget`` (one
training step of a zoo network), ``train`` (the training loop)."""

FAMILIES = {
    "vgg": ("vgg11", "vgg13", "vgg16"),
    "resnet": ("resnet18", "resnet19"),
    "convnet": ("convnet",),
    "revresnet": ("revresnet_s", "revresnet_m", "revresnet_l"),
}
"""Architecture families of the zoo (:data:`revsnn.models.MODELS`) and their members."""


def _choice(field_name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"Strategy: {field_name} must be one of {', '.join(map(str, choices))}, "
                         f"got {value!r}")


@dataclass(frozen=True)
class Strategy:
    """How a network keeps what its backward needs: one independent choice per field.

    node: node family (:data:`NODE_FAMILIES`).
    backward: backward algorithm of the node (:data:`BACKWARDS`).
    reconstruct: how a reconstructing backward rebuilds membranes (:data:`RECONSTRUCTIONS`).
    checkpoint: run every node under activation checkpointing (keep its input, recompute).
    fuse_bn: fuse each BatchNorm into the reversible node after it (its input is not stored).
    schedule: ``"layer"`` or ``"temporal"`` (:data:`SCHEDULES`).
    baseline: ``"none"`` (revsnn's nodes) or SpikingJelly, with or without memopt (:data:`BASELINES`).
    blocks: reversible-block ResNets: stages as reversible stacks or plain (:data:`BLOCKS`).

    Combinations that mean nothing are refused:

    >>> Strategy(node="lif", backward="fused")
    Traceback (most recent call last):
    ...
    ValueError: Strategy: the lif node has only the autograd backward, got backward='fused'
    """

    node: str = "lif"
    backward: str = "autograd"
    reconstruct: str = "none"
    checkpoint: bool = False
    fuse_bn: bool = False
    schedule: str = "layer"
    baseline: str = "none"
    blocks: str = "plain"

    def __post_init__(self):
        for name, choices in (("node", NODE_FAMILIES), ("backward", BACKWARDS),
                              ("reconstruct", RECONSTRUCTIONS), ("schedule", SCHEDULES),
                              ("baseline", BASELINES), ("blocks", BLOCKS)):
            _choice(name, getattr(self, name), choices)
        for name in ("checkpoint", "fuse_bn"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"Strategy: {name} must be True or False, got "
                                 f"{getattr(self, name)!r}")
        problem = self._problem()
        if problem:
            raise ValueError(f"Strategy: {problem}")

    def _problem(self) -> str:
        if self.node == "lif" and self.backward != "autograd":
            return f"the lif node has only the autograd backward, got backward={self.backward!r}"
        if self.node == "binary" and self.backward == "revnet":
            return "the binary node has the autograd and fused backward only, got 'revnet'"
        if self.backward == "autograd" and self.reconstruct != "none":
            return (f"the autograd backward stores what it needs and reconstructs nothing, got "
                    f"reconstruct={self.reconstruct!r}")
        if self.backward != "autograd":
            allowed = ("reverse", "replay") if self.node == "binary" else ("reverse",)
            if self.reconstruct not in allowed:
                return (f"the {self.node} node's {self.backward} backward reconstructs by "
                        f"{' or '.join(allowed)}, got reconstruct={self.reconstruct!r}")
        if self.fuse_bn and not (self.node == "reversible" and self.backward != "autograd"):
            return "fuse_bn needs the reversible node with the revnet or fused backward"
        if self.checkpoint and (self.node != "lif" or self.baseline != "none"):
            return "checkpoint applies to revsnn's lif node only"
        if self.baseline != "none" and (self.node != "lif" or self.blocks != "plain"):
            return f"the {self.baseline} baseline is SpikingJelly's LIF node in a plain network"
        if self.blocks == "reversible" and self.node != "lif":
            return "reversible blocks are built with the lif node"
        return ""

    @property
    def uses_spikingjelly(self) -> bool:
        return self.baseline != "none"


def _default_node_builder(preset: "Preset", **node_kwargs) -> nn.Module:
    if preset.strategy.blocks != "plain":
        raise ValueError(f"make_node: {preset.name!r} is a network-level strategy (reversible "
                         f"blocks), not a node; build a revresnet with "
                         f"revsnn.models.build(..., {preset.name!r}) instead")
    return _node_for(preset.strategy, **node_kwargs)


@dataclass(frozen=True)
class Preset:
    """A named strategy with everything the tools need to offer it.

    name: the name on the command line, in rows (``mode``) and in the API.
    strategy: the :class:`Strategy`.
    label: the legend and table name (one per preset, everywhere).
    colour, symbol: the chart colour (CSS hex) and Plotly marker of its series.
    families: architecture families (:data:`FAMILIES`) its networks are built for.
    commands: where it is offered (:data:`COMMANDS`); ``build`` accepts every preset for its
        families (memopt needs ``example=``).
    aliases: more names that parse to it (case-insensitive).
    description: one line for ``--help`` and docs.
    default_for: the commands that measure it when no modes are named (:func:`defaults`).
    builder: ``builder(arch, preset, **build_kwargs) -> nn.Module``; ``None`` = the zoo's builder
        (:func:`revsnn.models.build` dispatches to it).
    node_builder: ``node_builder(preset, **node_kwargs) -> node`` for a standalone node; ``None`` =
        built from the strategy.
    """

    name: str
    strategy: Strategy
    label: str
    colour: str
    symbol: str = "circle"
    families: tuple = ()
    commands: frozenset = frozenset(COMMANDS)
    aliases: tuple = ()
    description: str = ""
    default_for: frozenset = frozenset()
    builder: Optional[Callable[..., nn.Module]] = field(default=None, compare=False, repr=False)
    node_builder: Optional[Callable[..., nn.Module]] = field(default=None, compare=False,
                                                             repr=False)

    def __post_init__(self):
        unknown = set(self.families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"Preset {self.name!r}: unknown architecture families "
                             f"{sorted(unknown)}; choose from {', '.join(FAMILIES)}")
        bad = set(self.commands) - set(COMMANDS)
        if bad:
            raise ValueError(f"Preset {self.name!r}: unknown commands {sorted(bad)}; choose from "
                             f"{', '.join(COMMANDS)}")
        object.__setattr__(self, "commands", frozenset(self.commands))
        object.__setattr__(self, "default_for", frozenset(self.default_for) & self.commands)

    @property
    def archs(self) -> tuple:
        """The zoo architectures this preset builds."""
        return tuple(a for fam in self.families for a in FAMILIES[fam])

    def supports(self, arch: str) -> bool:
        return arch in self.archs

    def offered(self, command: str) -> bool:
        return command in self.commands

    @property
    def backends(self) -> tuple:
        """The ``backend=`` values its nodes take (:func:`backends_of`)."""
        return backends_of(self.strategy)

    def make_node(self, **node_kwargs) -> nn.Module:
        """A standalone multi-step node of this preset (see :func:`make_node`)."""
        return (self.node_builder or _default_node_builder)(self, **node_kwargs)

    def available(self) -> tuple:
        """``(True, "")``, or ``(False, why and how to fix it)`` when a dependency is missing."""
        if self.strategy.uses_spikingjelly:
            from .baselines import spikingjelly_available
            if not spikingjelly_available():
                return False, ("SpikingJelly is not installed: pip install --no-deps "
                               "spikingjelly==2.0.0 numpy 'loguru>=0.7,<1'")
        return True, ""

    def __str__(self) -> str:
        return self.name


_REGISTRY: dict = {}
_ALIASES: dict = {}


def register(preset: Preset, *, replace: bool = False) -> Preset:
    """Add ``preset`` to the registry (at the end of the legend order); returns it.

    A name or alias already taken is refused unless ``replace`` (then the old entry keeps its
    place in the order).
    """
    words = [preset.name] + list(preset.aliases)
    taken = [w for w in words if w.lower() in _ALIASES
             and _ALIASES[w.lower()] != preset.name]
    if preset.name in _REGISTRY and not replace:
        taken.insert(0, preset.name)
    if taken:
        raise ValueError(f"register: {', '.join(map(repr, taken))} already names a preset; pass "
                         f"replace=True to redefine it")
    if replace and preset.name in _REGISTRY:
        for alias in [a for a, n in _ALIASES.items() if n == preset.name]:
            del _ALIASES[alias]
    _REGISTRY[preset.name] = preset
    for w in words:
        _ALIASES[w.lower()] = preset.name
    return preset


def unregister(name: str) -> Preset:
    """Remove the preset ``name`` (and its aliases) from the registry; returns it. The historic
    :class:`MemoryMode` presets stay."""
    preset = get(name)
    if preset.name in MemoryMode._value2member_map_:
        raise ValueError(f"unregister: {preset.name!r} is a MemoryMode preset and stays")
    del _REGISTRY[preset.name]
    for alias in [a for a, n in _ALIASES.items() if n == preset.name]:
        del _ALIASES[alias]
    return preset


def presets(*, command: Optional[str] = None, arch: Optional[str] = None,
            available: bool = False) -> list:
    """Registered presets in legend order, optionally only those offered for ``command``, those
    that build ``arch`` and those whose dependencies are installed."""
    if command is not None:
        _choice("command", command, COMMANDS)
    out = []
    for p in _REGISTRY.values():
        if command is not None and not p.offered(command):
            continue
        if arch is not None and not p.supports(arch):
            continue
        if available and not p.available()[0]:
            continue
        out.append(p)
    return out


def names(**filters) -> list:
    """Names of :func:`presets` (same filters)."""
    return [p.name for p in presets(**filters)]


def defaults(command: str, arch: Optional[str] = None) -> list:
    """Names a command measures when none are given: the installed presets marked for it
    (``default_for``) that build ``arch``."""
    return [p.name for p in presets(command=command, arch=arch, available=True)
            if command in p.default_for]


def get(value) -> Preset:
    """The preset for a :class:`Preset`, a :class:`MemoryMode`, a name, an alias or a MemoryMode
    member name (any case); ``ValueError`` listing the names otherwise."""
    if isinstance(value, Preset):
        return value
    text = str(getattr(value, "value", value)).strip().lower()
    if text in _ALIASES:
        return _REGISTRY[_ALIASES[text]]
    member = MemoryMode.__members__.get(text.upper())
    if member is not None:
        return _REGISTRY[member.value]
    raise ValueError(f"unknown memory mode {value!r}; choose from {', '.join(_REGISTRY)}")


def parse(value, *, arch: Optional[str] = None, command: Optional[str] = None) -> Preset:
    """:func:`get`, then refuse a preset that is not offered for ``command`` or does not build
    ``arch``, with a message that lists the ones that are."""
    preset = get(value)
    if command is not None and not preset.offered(command):
        raise ValueError(f"memory mode {preset.name!r} is not offered by {command} (it is "
                         f"offered by {', '.join(sorted(preset.commands)) or 'no command'}); the "
                         f"modes for {command} are: {', '.join(names(command=command))}")
    if arch is not None and not preset.supports(arch):
        builds = ", ".join(preset.archs) or "no zoo architecture"
        fits = names(arch=arch, command=command)
        raise ValueError(f"memory mode {preset.name!r} does not build {arch!r} (it builds "
                         f"{builds}); the modes for {arch!r} are: {', '.join(fits) or 'none'}")
    return preset


def parse_many(values: Optional[Iterable], *, arch: Optional[str] = None,
               command: Optional[str] = None) -> list:
    """Presets for ``values`` (each may hold several names separated by commas), duplicates
    dropped, order kept; one ``ValueError`` names every unknown or unsupported value."""
    out, problems, unknown = [], [], []
    for word in (w.strip() for v in (values or ()) for w in str(getattr(v, "value", v)).split(",")
                 if w.strip()):
        try:
            preset = get(word)
        except ValueError:
            unknown.append(word)
            continue
        try:
            parse(preset, arch=arch, command=command)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if preset not in out:
            out.append(preset)
    if unknown:
        choices = names(command=command, arch=arch)
        problems.insert(0, f"unknown memory mode{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(map(repr, unknown))}; choose from {', '.join(choices)}")
    if problems:
        raise ValueError("; ".join(problems))
    return out


def preset_for(strategy: Strategy) -> Optional[Preset]:
    """The first registered preset whose strategy is ``strategy`` (None when there is none)."""
    return next((p for p in _REGISTRY.values() if p.strategy == strategy), None)


# ----------------------------------------------------------------------------------------------
# Nodes of a strategy

def _node_for(strategy: Strategy, **node_kwargs) -> nn.Module:
    """A node for ``strategy`` from one set of hyperparameters; those its family does not have are
    ignored (``v_reset`` for the reversible node, ``coupling`` for LIF). The choice of blocks is a
    network's, not the node's."""
    from .nodes.binary import BinaryReversibleLIF
    from .nodes.lif import LIF, Checkpointed
    from .nodes.reversible import ReversibleLIF

    families = (LIF, ReversibleLIF, BinaryReversibleLIF)
    known = set().union(*(cls.HYPERPARAMETERS for cls in families))
    unknown = set(node_kwargs) - known
    if unknown:
        raise ValueError(f"make_node: unknown node hyperparameters {sorted(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    if strategy.schedule != "layer":
        raise ValueError(f"make_node: the {strategy.schedule} schedule has no standalone node "
                         f"in the zoo; its preset provides a node_builder")
    if node_kwargs.get("backend", "auto") not in backends_of(strategy):
        raise ValueError(f"make_node: backend={node_kwargs['backend']!r} is not available for "
                         f"this strategy; it runs on {', '.join(backends_of(strategy))}")

    def take(cls):
        return {k: v for k, v in node_kwargs.items() if k in cls.HYPERPARAMETERS}

    if strategy.uses_spikingjelly:
        from .nodes.spikingjelly import SpikingJellyLIF
        return SpikingJellyLIF(**take(LIF))
    if strategy.node == "binary":
        kw = take(BinaryReversibleLIF)
        if "tau" in kw and float(kw["tau"]).is_integer():
            kw["tau"] = int(kw["tau"])
        recon = "reverse" if strategy.reconstruct == "none" else strategy.reconstruct
        return BinaryReversibleLIF(backward=strategy.backward, reconstruct=recon, **kw)
    if strategy.node == "reversible":
        return ReversibleLIF(backward=strategy.backward, **take(ReversibleLIF))
    lif = LIF(**take(LIF))
    return Checkpointed(lif) if strategy.checkpoint else lif


def backends_of(strategy: Strategy) -> tuple:
    """The node backends (NOTE [backends] in :mod:`revsnn.kernels`) a strategy's nodes accept:
    ``"triton"`` too for the reversible and binary nodes with a fused (or, reversible, RevNet)
    backward in the layer schedule, which have Triton kernels.

    >>> backends_of(get("fused").strategy), backends_of(get("bptt").strategy)
    (('auto', 'torch', 'triton'), ('auto', 'torch'))
    """
    kernels = (strategy.node in ("reversible", "binary") and strategy.backward != "autograd"
               and strategy.schedule == "layer" and not strategy.uses_spikingjelly)
    return ("auto", "torch", "triton") if kernels else ("auto", "torch")


def make_node(mode, **node_kwargs) -> nn.Module:
    """A standalone multi-step node for ``mode`` (a preset, its name or a :class:`MemoryMode`).

    ``node_kwargs`` are hyperparameters; those a node family does not have are ignored (e.g.
    ``v_reset`` for the reversible node, which always soft-resets; ``coupling`` for LIF).

    >>> type(make_node(MemoryMode.CHECKPOINT)).__name__
    'Checkpointed'
    """
    return get(mode).make_node(**node_kwargs)


# ----------------------------------------------------------------------------------------------
# MemoryMode: the historic names, each the name of a preset

class MemoryMode(str, enum.Enum):
    """The historic memory-mode names; each value names a registered :class:`Preset`.

    >>> MemoryMode("fused") is MemoryMode.REVERSIBLE_FUSED
    True
    >>> MemoryMode.REVERSIBLE_FUSED.label
    'ReversibleLIF (fused)'
    """

    BPTT = "bptt"
    """Standard LIF, plain backpropagation through time: every intermediate is stored."""
    CHECKPOINT = "checkpoint"
    """Standard LIF under ``torch.utils.checkpoint`` (non-reentrant): stores the input, recomputes."""
    REVERSIBLE_AUTOGRAD = "autograd"
    """ReversibleLIF run under autograd: the reference, stores everything."""
    REVERSIBLE_REVNET = "revnet"
    """ReversibleLIF, reconstruct each step then re-run it under autograd (RevNet-style)."""
    REVERSIBLE_FUSED = "fused"
    """ReversibleLIF, inversion and vector-Jacobian product fused in one pass."""
    EXACT_BINARY = "binary"
    """BinaryReversibleLIF: binary spikes, integer membrane, ≤ 2 stored bits per neuron-step; in a
    network every conv-BN-node layer is a :class:`~revsnn.BinarySpikingUnit` that recomputes its
    synapse instead of storing its input."""
    REVERSIBLE_BLOCKS = "blocks"
    """Network level: RevNet-style reversible spiking blocks (:mod:`revsnn.layers.reversible`),
    memory flat in depth. Not a node: :func:`make_node` refuses it."""

    @property
    def preset(self) -> Preset:
        return _REGISTRY[self.value]

    @property
    def strategy(self) -> Strategy:
        return self.preset.strategy

    @property
    def label(self) -> str:
        """Human-readable name for legends and tables."""
        return self.preset.label

    @property
    def node_level(self) -> bool:
        """False for modes that describe a whole network rather than one node."""
        return self.preset.offered("nodes")

    @classmethod
    def node_modes(cls) -> list:
        """The modes :func:`make_node` builds a node for."""
        return [m for m in cls if m.node_level]

    @property
    def is_reversible(self) -> bool:
        """Modes built on :class:`~revsnn.ReversibleLIF` (which needs an even channel count)."""
        return self.strategy.node == "reversible"

    @classmethod
    def parse(cls, value) -> "MemoryMode":
        """Accept a MemoryMode, its value (``"fused"``) or its name (``"REVERSIBLE_FUSED"``)."""
        if isinstance(value, cls):
            return value
        text = str(value).strip()
        for mode in cls:
            if text in (mode.value, mode.name, mode.name.lower()):
                return mode
        raise ValueError(f"unknown memory mode {value!r}; choose from "
                         f"{', '.join(m.value for m in cls)}")


# ----------------------------------------------------------------------------------------------
# The presets (legend order)

_ZOO = ("vgg", "resnet", "convnet")
_ALL = _ZOO + ("revresnet",)
_NOT_NODES = frozenset({"network", "budget", "train"})
_MEASURED = frozenset({"nodes", "network", "budget"})


def _reversible(backward: str, fuse_bn: bool = False) -> Strategy:
    return Strategy(node="reversible", backward=backward,
                    reconstruct="none" if backward == "autograd" else "reverse", fuse_bn=fuse_bn)


for _preset in (
    Preset("spikingjelly", Strategy(baseline="spikingjelly"), "SpikingJelly LIFNode", "#636EFA",
           "circle", _ALL, aliases=("sj",),
           default_for=_MEASURED,
           description="SpikingJelly's LIFNode under plain BPTT: the comparison baseline"),
    Preset("spikingjelly_memopt", Strategy(baseline="memopt"), "SpikingJelly + memopt",
           "#FF97FF", "circle", _ALL, frozenset({"network", "budget"}), aliases=("memopt",), default_for=_MEASURED,
           description="the SpikingJelly network after memopt.optimize_memory (level 1 by default)"),
    Preset("bptt", Strategy(), "LIF (BPTT)", "#EF553B", "square", _ALL, default_for=_MEASURED,
           description="revsnn's LIF, plain BPTT: every intermediate stored"),
    Preset("checkpoint", Strategy(checkpoint=True), "LIF (checkpoint)", "#00CC96", "diamond", _ZOO,
           default_for=_MEASURED, description="LIF under activation checkpointing: keeps the input, recomputes"),
    Preset("autograd", _reversible("autograd"), "ReversibleLIF (autograd)", "#AB63FA",
           "triangle-up", _ZOO, description="ReversibleLIF under plain autograd (the reference)"),
    Preset("revnet", _reversible("revnet", fuse_bn=True), "ReversibleLIF (revnet)", "#FFA15A",
           "x", _ZOO, default_for=_MEASURED,
           description="ReversibleLIF, reconstruct a step and re-run it under autograd"),
    Preset("fused", _reversible("fused", fuse_bn=True), "ReversibleLIF (fused)", "#19D3F3",
           "star", _ZOO, default_for=_MEASURED,
           description="ReversibleLIF, reconstruction and VJP fused in one pass"),
    Preset("revnet_nobn", _reversible("revnet"), "ReversibleLIF (revnet, BN not fused)",
           "#FECB52", "square", _ZOO, _NOT_NODES,
           description="revnet without BatchNorm fusion (shows the node's share)"),
    Preset("fused_nobn", _reversible("fused"), "ReversibleLIF (fused, BN not fused)", "#636EFA",
           "diamond", _ZOO, _NOT_NODES,
           description="fused without BatchNorm fusion (shows the node's share)"),
    Preset("binary", Strategy(node="binary", backward="fused", reconstruct="reverse"),
           "BinaryReversibleLIF (exact binary)", "#FF6692", "cross", ("vgg", "convnet"),
           description="exact binary-spike LIF in recomputing units, walks back from V_T "
                       "(2 bits per neuron-step + V_T)"),
    Preset("binary_replay", Strategy(node="binary", backward="fused", reconstruct="replay"),
           "BinaryReversibleLIF (exact binary, replay)", "#00CC96", "x", ("vgg", "convnet"),
           description="exact binary-spike LIF in recomputing units, re-runs the forward "
                       "(1 bit per neuron-step)"),
    Preset("blocks", Strategy(blocks="reversible"), "Reversible spiking blocks", "#B6E880",
           "pentagon", ("revresnet",), _NOT_NODES, default_for=_MEASURED,
           description="reversible-block ResNets whose stacks store only their outputs"),
):
    register(_preset)
del _preset
