"""Which modules of a user's network are spiking nodes, what their hyperparameters mean, and the
node a strategy puts in their place (or back: SpikingJelly's).

A node is recognised by its type, never by its name alone:

- SpikingJelly's ``neuron.LIFNode``, ``neuron.IFNode`` and ``neuron.ParametricLIFNode``
  (converted), any other ``neuron.BaseNode`` (recognised, left alone: no counterpart);
- revsnn's own nodes (:class:`~revsnn.nodes.base.SpikingNode`: converted from their
  hyperparameters, so a converted model converts again);
- a module from another spiking library (snnTorch, Norse, Lava, ...) or a leaf module whose class
  name reads like a neuron (``...LIF...``, ``...Neuron``, ``...Node``, ``Leaky``): recognised as
  a node that cannot be converted, so it is reported instead of silently kept.

:func:`source_hyperparameters` reads one node into revsnn's vocabulary (``tau``, ``decay_input``,
``v_threshold``, ``v_reset``, ``surrogate``, ``detach_reset``) and says what it had to change on
the way (a learnable τ frozen, a surrogate without a counterpart); :func:`target_node` builds the
strategy's node from them and lists what does not carry over (the reversible node always resets
softly and its leak is a rotation).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple, Optional

from torch import nn

from ..nodes.base import SpikingNode
from ..nodes.binary import BinaryReversibleLIF
from ..nodes.lif import IF, LIF, Checkpointed
from ..nodes.reversible import ReversibleLIF
from ..surrogate import ATan, Sigmoid

__all__ = ["NodeInfo", "classify", "source_hyperparameters", "target_node", "to_spikingjelly_node",
           "spikingjelly_module", "from_reversible",
           "OTHER_LIBRARIES"]

OTHER_LIBRARIES = ("snntorch", "norse", "lava", "sinabs", "spyx", "rockpool", "bindsnet")
"""Top-level packages whose modules are taken for spiking nodes revsnn cannot convert."""

_NEURON_NAME = re.compile(r"(LIF|Neuron|Node$|^Leaky|Spiking(?!Net))")


class NodeInfo(NamedTuple):
    """One recognised node.

    family: ``"lif"``, ``"if"`` (converted) or ``"unsupported"``.
    source: the node's type as written (``"spikingjelly LIFNode"``, ``"revsnn LIF"``, ...).
    why: for an unsupported node, the reason it cannot be converted.
    """

    family: str
    source: str
    why: str = ""


def _spikingjelly_neuron():
    try:
        from spikingjelly.activation_based import neuron
    except Exception:  # noqa: BLE001 - SpikingJelly is optional
        return None
    return neuron


def classify(module: nn.Module) -> Optional[NodeInfo]:
    """A :class:`NodeInfo` when ``module`` is a spiking node, else None."""
    cls = type(module)
    sj = _spikingjelly_neuron()
    if sj is not None and isinstance(module, sj.BaseNode):
        name = f"spikingjelly {cls.__name__}"
        if cls is sj.LIFNode or cls is sj.ParametricLIFNode:
            return NodeInfo("lif", name)
        if cls is sj.IFNode:
            return NodeInfo("if", name)
        return NodeInfo("unsupported", name, f"{cls.__name__} has no counterpart among the "
                        f"strategies' nodes (LIFNode, IFNode and ParametricLIFNode convert)")
    if isinstance(module, SpikingNode):
        inner = module.node if isinstance(module, Checkpointed) else module
        if isinstance(inner, IF):
            return NodeInfo("if", f"revsnn {cls.__name__}")
        if isinstance(inner, (LIF, ReversibleLIF, BinaryReversibleLIF)):
            return NodeInfo("lif", f"revsnn {cls.__name__}")
        if type(inner).__name__ == "SpikingJellyLIF":
            return NodeInfo("lif", f"revsnn {cls.__name__}")
        return NodeInfo("unsupported", f"revsnn {cls.__name__}",
                        f"{cls.__name__} is not one of the nodes a strategy builds")
    top = cls.__module__.split(".")[0]
    if top in OTHER_LIBRARIES:
        return NodeInfo("unsupported", f"{top} {cls.__name__}",
                        f"{top} nodes are not converted (SpikingJelly's and revsnn's are)")
    if (top not in ("torch", "spikingjelly", "revsnn") and not list(module.children())
            and _NEURON_NAME.search(cls.__name__)):
        return NodeInfo("unsupported", f"{cls.__module__}.{cls.__name__}",
                        f"{cls.__name__} looks like a spiking node (its name) but is not one revsnn "
                        f"knows; its dynamics cannot be read")
    return None


# ----------------------------------------------------------------------------------------------
# Source hyperparameters

def _surrogate(sg, changes: list):
    """revsnn's surrogate for a SpikingJelly surrogate function (or a revsnn one)."""
    if isinstance(sg, (Sigmoid, ATan)):
        return sg
    name = type(sg).__name__
    alpha = getattr(sg, "alpha", None)
    if name == "Sigmoid" and alpha is not None:
        return Sigmoid(float(alpha))
    if name == "ATan" and alpha is not None:
        return ATan(float(alpha))
    changes.append(f"surrogate {name}"
                   f"{'' if alpha is None else f'(alpha={alpha})'} has no counterpart: "
                   f"Sigmoid(alpha=4.0) is used (the forward is unchanged, the gradient differs)")
    return Sigmoid()


def refusal(module: nn.Module, info: NodeInfo) -> Optional[str]:
    """Why a node found in a model cannot be converted by any strategy, or ``None``."""
    if info.family == "unsupported":
        return info.why
    if getattr(module, "step_mode", "m") != "m":
        return ("single-step mode (step_mode='s'): the network loops over time itself, a "
                "strategy's node takes the whole sequence; call "
                "spikingjelly.activation_based.functional.set_step_mode(net, 'm') first")
    return None


def source_hyperparameters(module: nn.Module, info: NodeInfo) -> tuple:
    """``(hyperparameters, changes)`` of a convertible node in revsnn's vocabulary.

    ``changes`` lists what reading them changed (a learnable τ frozen, a surrogate replaced).
    """
    changes: list = []
    if isinstance(module, Checkpointed):
        module = module.node
    if isinstance(module, SpikingNode):
        if type(module).__name__ == "SpikingJellyLIF":
            module = module.node                      # its LIFNode, read below
        elif isinstance(module, (LIF, IF)):
            p = module.params
            hp = dict(v_threshold=p.v_threshold, v_reset=p.v_reset, surrogate=p.surrogate,
                      detach_reset=p.detach_reset)
            if isinstance(module, LIF):
                hp.update(tau=p.tau, decay_input=p.decay_input)
            return hp, changes
        elif isinstance(module, ReversibleLIF):
            return dict(tau=module.tau, v_threshold=module.v_threshold, v_reset=None,
                        decay_input=module.decay_input, surrogate=module.surrogate,
                        coupling=module.coupling), changes
        elif isinstance(module, BinaryReversibleLIF):
            p = module.params()
            return dict(tau=float(p.tau), v_threshold=float(module.v_threshold), v_reset=None,
                        surrogate=p.surrogate), changes
    hp = dict(v_threshold=float(module.v_threshold),
              v_reset=None if module.v_reset is None else float(module.v_reset),
              surrogate=_surrogate(module.surrogate_function, changes),
              detach_reset=bool(module.detach_reset))
    if info.family == "lif":
        hp["decay_input"] = bool(module.decay_input)
        w = getattr(module, "w", None)
        if w is not None:                               # ParametricLIFNode: 1/τ = sigmoid(w)
            tau = 1.0 / (1.0 / (1.0 + math.exp(-float(w.detach().reshape(-1)[0]))))
            hp["tau"] = tau
            changes.append(f"learnable τ (ParametricLIFNode, 1/τ = sigmoid(w)) frozen at its "
                           f"current value τ = {tau:.6g}; the parameter w is dropped")
        else:
            hp["tau"] = float(module.tau)
    return hp, changes


# ----------------------------------------------------------------------------------------------
# The strategy's node

def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else repr(v)


def target_node(preset, family: str, hp: dict, overrides: dict) -> tuple:
    """``(node, changes)``: the node ``preset`` builds for a source node of ``family`` with
    hyperparameters ``hp`` (``overrides``, the caller's node keywords, win), and what did not
    carry over. Raises ``ValueError`` when the node cannot take these hyperparameters (the caller
    leaves the node alone)."""
    strat = preset.strategy
    hp = {**hp, **overrides}
    changes = [f"{k}={_fmt(hp[k])} set by the caller" for k in sorted(overrides)]
    if strat.node == "lif":
        changes += from_reversible(hp)
    if strat.uses_spikingjelly:
        node = to_spikingjelly_node(family, hp)
        return node, changes
    if strat.node == "lif":
        keys = LIF.HYPERPARAMETERS if family == "lif" else LIF.HYPERPARAMETERS - {"tau",
                                                                                  "decay_input"}
        node = (LIF if family == "lif" else IF)(**{k: hp[k] for k in keys if k in hp})
        return (Checkpointed(node) if strat.checkpoint else node), changes
    if family == "if":
        hp.setdefault("tau", 2.0)
        changes.append("IF has no leak; the node integrates with τ = "
                       f"{_fmt(hp['tau'])} (input scaled by 1/τ)")
    if hp.get("v_reset") is not None:
        changes.append(f"hard reset to v_reset={_fmt(hp['v_reset'])} becomes a soft reset "
                       f"(V − θ·S): the node always soft-resets")
    if hp.get("detach_reset"):
        changes.append("detach_reset=True is not carried: the reset is differentiated")
    if strat.node == "reversible":
        kw = {k: v for k, v in hp.items() if k in ReversibleLIF.HYPERPARAMETERS}
        node = ReversibleLIF(backward=strat.backward, **kw)
        changes.append(f"the leak is a rotation between the two channel halves (coupling a = "
                       f"{node.coupling:g}) instead of a decay, and the output is the input plus "
                       f"a spike term (real-valued, not binary)")
        return node, changes
    kw = {k: v for k, v in hp.items() if k in BinaryReversibleLIF.HYPERPARAMETERS}
    tau = float(kw.get("tau", 2.0))
    if not tau.is_integer() or tau < 2:
        raise ValueError(f"tau={tau:g} is not an integer >= 2, which the exact binary node needs")
    kw["tau"] = int(tau)
    if not hp.get("decay_input", True):
        changes.append("decay_input=False becomes True: the binary node decays its input")
    recon = "reverse" if strat.reconstruct == "none" else strat.reconstruct
    return BinaryReversibleLIF(backward=strat.backward, reconstruct=recon, **kw), changes


def from_reversible(hp: dict) -> list:
    """What changes when a reversible node's hyperparameters configure a LIF node."""
    if "coupling" not in hp:
        return []
    return [f"the reversible node's rotation leak (coupling a = {hp['coupling']:g}) becomes LIF's "
            f"decay with τ = {hp.get('tau', 2.0):g}; the soft reset is kept; the output is binary "
            f"spikes again"]


def to_spikingjelly_node(family: str, hp: dict) -> nn.Module:
    """SpikingJelly's ``LIFNode`` / ``IFNode`` (multi-step) with ``hp``, inside the protocol
    wrapper that starts every sequence from rest (:class:`~revsnn.nodes.spikingjelly.SpikingJellyLIF`
    for LIF; the same wrapper around an ``IFNode`` for IF)."""
    from ..nodes.spikingjelly import SpikingJellyLIF

    kw = {k: hp[k] for k in ("tau", "decay_input", "v_threshold", "v_reset", "surrogate",
                             "detach_reset") if k in hp}
    node = SpikingJellyLIF(**kw)
    if family == "if":
        from spikingjelly.activation_based import neuron
        lif = node.node
        node.node = neuron.IFNode(v_threshold=lif.v_threshold, v_reset=lif.v_reset,
                                  surrogate_function=lif.surrogate_function,
                                  detach_reset=lif.detach_reset, step_mode="m")
        node.kind = "SpikingJelly IFNode"
    return node



def spikingjelly_module(family: str, hp: dict) -> nn.Module:
    """SpikingJelly's own multi-step ``LIFNode`` (``IFNode`` for IF) with ``hp`` (the reverse
    conversion; the caller resets its state between batches, as with any SpikingJelly node)."""
    from spikingjelly.activation_based import neuron, surrogate as sj_surrogate

    sg = hp.get("surrogate") or Sigmoid()
    sj_sg = (sj_surrogate.ATan(alpha=sg.alpha) if isinstance(sg, ATan)
             else sj_surrogate.Sigmoid(alpha=sg.alpha))
    common = dict(v_threshold=float(hp.get("v_threshold", 1.0)), v_reset=hp.get("v_reset", 0.0),
                  surrogate_function=sj_sg, detach_reset=bool(hp.get("detach_reset", False)),
                  step_mode="m")
    if family == "if":
        return neuron.IFNode(**common)
    return neuron.LIFNode(tau=float(hp.get("tau", 2.0)),
                          decay_input=bool(hp.get("decay_input", True)), **common)
