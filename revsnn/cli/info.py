"""``revsnn info``: versions of revsnn, torch and SpikingJelly, and the devices."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``revsnn info`` takes no options."""


def run(args: argparse.Namespace) -> int:
    from ..analysis.measure import environment
    print("\n".join(f"{k}: {v}" for k, v in environment().items()))
    return 0
