"""Command-line entry point: ``python -m revsnn COMMAND`` (also installed as ``revsnn``).

Commands (the router here, one adapter module per command in this package, the option groups
they share in :mod:`revsnn.cli.options`; the work is done by library functions)::

    revsnn info              versions of torch, revsnn, SpikingJelly; the device
    revsnn bench nodes       saved bytes, memory and fwd/bwd time of single nodes (revsnn.bench.nodes)
    revsnn bench network     the same for whole networks               (revsnn.bench.network)
    revsnn bench budget      the largest batch / T that fits a budget  (revsnn.bench.budget)
    revsnn bench beyond      the leanest reversible networks           (revsnn.bench.beyond)
    revsnn train             train a spiking network                   (revsnn.training)
    revsnn drift             reconstruction drift of the reversible node vs T and dtype

NOTE [command contract]
=======================
Each command lives in its own module, which exposes::

    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int          # the exit code

The module is imported only when its command runs (``revsnn bench nodes --help`` included), so a
command whose module is missing or fails to import reports that, with exit code 1, while every
other command keeps working. ``run`` raises :class:`UsageError` for a bad combination of options;
:func:`main` prints it and returns 2, as argparse does for a malformed command line. Unexpected
exceptions are not caught: a bug shows its traceback. The option groups of
:mod:`revsnn.cli.options` (device, dtype, modes, output, timing) are shared by the command modules
so that every command spells its options alike.

Exit codes: 0 success, 1 command unavailable, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .options import UsageError, parse_modes

__all__ = ["main", "Command", "COMMANDS", "UsageError", "CommandUnavailable", "load_command",
           "parse_modes"]

class CommandUnavailable(Exception):
    """A command's module is missing, fails to import, or lacks the contract functions."""


@dataclass(frozen=True)
class Command:
    """One command: its words on the command line and the module that implements it."""

    path: tuple
    module: str
    help: str
    add_arguments: str = "add_arguments"
    run: str = "run"

    @property
    def prog(self) -> str:
        return "revsnn " + " ".join(self.path)


COMMANDS = [
    Command(("info",), "revsnn.cli.info",
            "print versions (torch, revsnn, SpikingJelly) and the device"),
    Command(("bench", "nodes"), "revsnn.cli.nodes",
            "benchmark single spiking nodes: every memory mode side by side"),
    Command(("bench", "network"), "revsnn.cli.network",
            "benchmark whole spiking networks under every memory mode"),
    Command(("bench", "budget"), "revsnn.cli.budget",
            "find the largest batch / T each memory mode fits in a memory budget"),
    Command(("bench", "beyond"), "revsnn.cli.beyond",
            "leanest reversible networks (binary units, reversible blocks) vs SpikingJelly and memopt"),
    Command(("train",), "revsnn.cli.train", "train a spiking network under a memory mode"),
    Command(("drift",), "revsnn.cli.drift",
            "reconstruction drift of ReversibleLIF (and of a naive coupling) vs T and dtype"),
]
"""Every command; :func:`main` routes by these and imports a module only when its command runs."""

_GROUP_HELP = {"bench": "benchmarks: nodes, network, budget, beyond"}


# --------------------------------------------------------------------------------------------
# Routing


def load_command(command: Command) -> tuple:
    """``(add_arguments, run)`` of ``command``'s module; :class:`CommandUnavailable` if absent."""
    try:
        module = importlib.import_module(command.module)
    except Exception as exc:  # noqa: BLE001 - any import failure disables this command only
        raise CommandUnavailable(
            f"command unavailable: module {command.module} could not be imported "
            f"({type(exc).__name__}: {exc})") from exc
    try:
        add, run = getattr(module, command.add_arguments), getattr(module, command.run)
    except AttributeError:
        raise CommandUnavailable(
            f"command unavailable: module {command.module} does not define "
            f"{command.add_arguments}(parser) and {command.run}(args)") from None
    return add, run


def _router(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """Parser of the command words only; each command's own options are parsed after import."""
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="revsnn", description="revsnn: memory-lean spiking neural network training.",
        epilog="Run 'revsnn COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"revsnn {__version__}")
    subparsers = {(): parser.add_subparsers(dest="command", metavar="COMMAND", required=True)}
    for command in commands:
        for depth in range(1, len(command.path)):
            prefix = command.path[:depth]
            if prefix not in subparsers:
                group = subparsers[prefix[:-1]].add_parser(
                    prefix[-1], help=_GROUP_HELP.get(prefix[-1], ""),
                    description=_GROUP_HELP.get(prefix[-1]))
                subparsers[prefix] = group.add_subparsers(
                    dest="_".join(prefix), metavar="SUBCOMMAND", required=True)
        leaf = subparsers[command.path[:-1]].add_parser(
            command.path[-1], help=command.help, add_help=False)
        leaf.set_defaults(_command=command)
    return parser


def plain_text(doc: str) -> str:
    """A docstring's reST as plain help text: ````code```` and ``:mod:`x```` become ``code`` and
    ``x``.

    >>> plain_text("``revsnn bench budget``: see :mod:`revsnn.bench.budget` and `T`")
    'revsnn bench budget: see revsnn.bench.budget and T'
    """
    import re

    doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc)
    doc = re.sub(r"``([^`]+)``", r"\1", doc)
    return re.sub(r"`([^`]+)`", r"\1", doc)


def _description(command: Command, run: Callable) -> str:
    module = sys.modules.get(getattr(run, "__module__", "") or "")
    doc = plain_text((getattr(module, "__doc__", None) or "").strip().split("\n\n")[0])
    return command.help + (f"\n\n{doc}" if doc else "")


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def quiet_torch_noise() -> None:
    """Keep torch's "Triton not available, find_triton_kernels = []" warning out of command
    output: torch logs it whenever a custom operator is registered on a machine without Triton
    (SpikingJelly's do so); it says nothing about the command's results."""
    import logging

    import torch  # noqa: F401 - torch configures its loggers on import; set the level after

    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        namespace, rest = _router(COMMANDS).parse_known_args(argv)
    except SystemExit as exc:  # --help, --version, unknown command
        return _exit_code(exc)
    command: Command = namespace._command
    try:
        add, run = load_command(command)
    except CommandUnavailable as exc:
        print(f"{command.prog}: error: {exc}", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(prog=command.prog, description=_description(command, run),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add(parser)
    try:
        args = parser.parse_args(rest)
    except SystemExit as exc:
        return _exit_code(exc)
    args.command = " ".join(command.path)
    quiet_torch_noise()
    try:
        return int(run(args) or 0)
    except UsageError as exc:
        print(f"{command.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command.prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
