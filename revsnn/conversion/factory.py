"""A user's own network named by a ``package.module:factory`` string (or ``path/to/file.py:factory``),
built, converted to a strategy and given the zoo's interface, so that ``bench network``, ``bench
budget``, ``train`` and the dashboard measure it side by side with the zoo.

The factory is a callable returning an ``nn.Module`` over time-first sequences ``[T, B, C, H, W]``
whose output is per-step logits ``[T, B, K]`` or already averaged ``[B, K]``; it is called with
those of ``num_classes``, ``in_channels`` and ``T`` that its signature names.

>>> net = user_network("revsnn.conversion.examples:plain_vgg", "fused", num_classes=3, T=2, seed=0,
...                    cfg=(8, "M", 16, "M"))
>>> net.report.summary()
'fused: 2 of 2 nodes converted, 2 BatchNorms fused, 0 left alone'
>>> import torch
>>> net(torch.rand(2, 3, 8, 8)).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from ..models.encoders import make_encoder
from ..layers.units import is_node

__all__ = ["load_factory", "is_user_model", "user_network", "UserNetwork", "FACTORY_KEYWORDS",
           "convertible", "user_modes"]

FACTORY_KEYWORDS = ("num_classes", "in_channels", "T")
"""What a factory is given, when its signature names it."""


def is_user_model(name) -> bool:
    """Whether ``name`` names a user's factory (``module:factory``) rather than a zoo entry."""
    return isinstance(name, str) and ":" in name


def convertible(preset) -> bool:
    """Whether :func:`revsnn.conversion.convert` converts a network to ``preset``: the node
    strategies and the time-major one (which rebuilds the network; one whose data flow it cannot
    express is refused when converted), not the network-level ``blocks`` or
    ``spikingjelly_memopt``."""
    s = preset.strategy
    return s.blocks == "plain" and s.baseline != "memopt"


def user_modes(command: str, modes=None) -> list:
    """The preset names a command measures a user's network in: ``modes`` parsed (a preset that
    :func:`convertible` refuses raises ``ValueError`` naming those it accepts), or the command's
    defaults that convert."""
    from .. import strategy

    if not modes:
        return [n for n in strategy.defaults(command) if convertible(strategy.get(n))]
    presets = strategy.parse_many(modes, command=command)
    bad = [p.name for p in presets if not convertible(p)]
    if bad:
        ok = [p.name for p in strategy.presets(command=command) if convertible(p)]
        raise ValueError(f"a network of your own (module:factory) is converted to node "
                         f"strategies and the time-major one only; {', '.join(map(repr, bad))} "
                         f"{'is' if len(bad) == 1 else 'are'} not one; choose from {', '.join(ok)}")
    return [p.name for p in presets]


def load_factory(spec: str) -> Callable[..., nn.Module]:
    """The callable named by ``"package.module:factory"`` or ``"path/to/file.py:factory"``.

    The current directory is searched first (as ``python -m`` does), so a model file next to the
    user's shell imports without installing it. ``ValueError`` says what is wrong with the string,
    the module or the name.
    """
    if not is_user_model(spec):
        raise ValueError(f"expected 'package.module:factory' or 'path/to/file.py:factory', got "
                         f"{spec!r}")
    mod_name, _, attr = str(spec).rpartition(":")
    if not mod_name or not attr:
        raise ValueError(f"{spec!r}: both the module and the factory name are needed "
                         f"('package.module:factory')")
    try:
        if mod_name.endswith(".py") or "/" in mod_name:
            path = Path(mod_name)
            if not path.is_file():
                raise ValueError(f"{spec!r}: no file {path}")
            unit = importlib.util.spec_from_file_location(f"_revsnn_user_{path.stem}", path)
            module = importlib.util.module_from_spec(unit)
            unit.loader.exec_module(module)
        else:
            if "" not in sys.path and "." not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(mod_name)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module: say what failed, with the cause
        raise ValueError(f"{spec!r}: cannot import {mod_name!r}: {type(exc).__name__}: {exc}") \
            from exc
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
            raise ValueError(f"{spec!r}: {mod_name!r} has no {attr!r}; its callables: "
                             f"{', '.join(names) or 'none'}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ValueError(f"{spec!r}: {attr!r} is a {type(factory).__name__}, not a callable")
    return factory


class UserNetwork(nn.Module):
    """A user's network behind the zoo's interface: ``[B, C, H, W]`` is encoded to T steps
    (``[T, B, C, H, W]`` is used as is; a time-major network takes the static batch itself, as
    the zoo's does) and per-step logits are averaged over time.

    ``net`` is registered as ``net``, so the state dict keys are the user's prefixed by ``net.``;
    :attr:`report` is the conversion's :class:`~revsnn.conversion.ConversionReport`.
    """

    def __init__(self, net: nn.Module, *, T: int = 4, encoder: str = "direct", seed: int = 0,
                 report=None, config: Optional[dict] = None):
        super().__init__()
        self.net = net
        self.encoder = make_encoder(encoder, T, seed)
        self.report = report
        self.config = dict(config or {})

    @property
    def T(self) -> int:
        return self.encoder.T

    def nodes(self) -> list:
        """The spiking nodes, in registration order (a wrapper, not the node inside it)."""
        found, inside = [], []
        for name, m in self.named_modules():
            if is_node(m) and not any(name.startswith(p + ".") for p in inside):
                found.append(m)
                inside.append(name)
        return found

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..temporal import TemporalNetwork

        if x.dim() == 4 and not isinstance(self.net, TemporalNetwork):
            x = self.encoder(x)                # a time-major network presents it at every step
        out = self.net(x)
        return out.mean(0) if out.dim() == 3 else out


def _call_factory(factory, **given):
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kw = {k: v for k, v in given.items() if v is not None and (var_kw or k in params)}
    return factory(**kw)


def user_network(spec, mode, *, num_classes: int = 10, in_channels: int = 3, T: int = 4,
                 seed: Optional[int] = None, encoder: str = "direct", encoder_seed: int = 0,
                 node_kwargs: Optional[dict] = None, strict: bool = False, example=None,
                 **factory_kwargs) -> UserNetwork:
    """Build the user's network ``spec`` (a ``module:factory`` string or the callable), convert
    it to preset ``mode`` (:func:`revsnn.conversion.convert`) and wrap it in :class:`UserNetwork`.

    ``seed`` initialises the factory's parameters inside a forked RNG, so every mode gets the same
    weights; ``factory_kwargs`` go to the factory as they are.
    """
    from .core import convert

    factory = load_factory(spec) if isinstance(spec, str) else spec
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        net = _call_factory(factory, num_classes=int(num_classes), in_channels=int(in_channels),
                            T=int(T), **factory_kwargs)
    if not isinstance(net, nn.Module):
        raise ValueError(f"{spec!r} returned a {type(net).__name__}, not an nn.Module")
    from .. import strategy

    kw = dict(node_kwargs or {})
    if strategy.get(mode).strategy.schedule == "temporal":    # the network's own T and encoder
        kw.update(T=int(T), encoder=encoder, seed=encoder_seed)
    net, report = convert(net, mode, strict=strict, example=example, inplace=True, **kw)
    config = dict(name=spec if isinstance(spec, str) else getattr(spec, "__name__", "model"),
                  mode=report.strategy, num_classes=int(num_classes), in_channels=int(in_channels),
                  T=int(T), seed=seed, encoder=encoder)
    return UserNetwork(net, T=T, encoder=encoder, seed=encoder_seed, report=report, config=config)
