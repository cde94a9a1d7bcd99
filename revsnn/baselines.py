"""The optional comparison baseline: is SpikingJelly (its ``LIFNode`` and ``memopt``) installed?
The node wrapping its ``LIFNode`` is :class:`revsnn.nodes.spikingjelly.SpikingJellyLIF`.

SpikingJelly is not a dependency of revsnn; install it with
``pip install --no-deps spikingjelly==2.0.0 numpy 'loguru>=0.7,<1'`` (a plain install replaces the
CPU torch with a CUDA build).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util


__all__ = ["spikingjelly_available", "spikingjelly_version", "require_spikingjelly"]


def spikingjelly_available() -> bool:
    """True when ``spikingjelly.activation_based`` can be imported."""
    if importlib.util.find_spec("spikingjelly") is None:
        return False
    try:
        import spikingjelly.activation_based.neuron  # noqa: F401
    except Exception:  # a broken install (e.g. a mismatched torchvision) counts as absent
        return False
    return True


def spikingjelly_version() -> str | None:
    try:
        return importlib.metadata.version("spikingjelly")
    except importlib.metadata.PackageNotFoundError:
        return None


def require_spikingjelly() -> None:
    """ImportError saying how to install SpikingJelly when it cannot be imported."""
    if not spikingjelly_available():
        raise ImportError(
            "SpikingJelly is not installed: pip install --no-deps spikingjelly==2.0.0 numpy "
            "'loguru>=0.7,<1'")
