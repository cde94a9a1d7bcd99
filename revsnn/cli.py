"""Command-line entry point: ``python -m revsnn COMMAND`` (also installed as ``revsnn``).

Commands::

    revsnn info              versions of torch, revsnn, SpikingJelly; the device
    revsnn bench nodes       saved bytes, memory and fwd/bwd time of single nodes, every mode side by side
    revsnn bench network     the same for whole networks               (revsnn.bench.network)
    revsnn bench budget      the largest batch / T that fits a budget  (revsnn.bench.budget)
    revsnn train             train a small spiking network             (revsnn.train)
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
exceptions are not caught: a bug shows its traceback. The helpers below (device, dtype, modes,
output) are shared by the command modules so that every command spells its options alike.

Exit codes: 0 success, 1 command unavailable, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

__all__ = [
    "main", "Command", "COMMANDS", "UsageError", "CommandUnavailable", "load_command",
    "positive_int", "add_device_argument", "resolve_device", "add_dtype_argument",
    "add_output_arguments", "parse_modes", "default_node_modes", "DTYPE_CHOICES",
]

DTYPE_CHOICES = ("float32", "float64", "bfloat16", "float16")


class UsageError(Exception):
    """A bad option value or combination; :func:`main` prints it and exits with code 2."""


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
    Command(("info",), "revsnn.cli", "print versions (torch, revsnn, SpikingJelly) and the device",
            add_arguments="info_add_arguments", run="info_run"),
    Command(("bench", "nodes"), "revsnn.bench.nodes",
            "benchmark single spiking nodes: every memory mode side by side"),
    Command(("bench", "network"), "revsnn.bench.network",
            "benchmark whole spiking networks under every memory mode"),
    Command(("bench", "budget"), "revsnn.bench.budget",
            "find the largest batch / T each memory mode fits in a memory budget"),
    Command(("bench", "beyond"), "revsnn.bench.beyond",
            "leanest reversible networks (binary units, reversible blocks) vs SpikingJelly and memopt"),
    Command(("train",), "revsnn.train", "train a spiking network under a memory mode"),
    Command(("drift",), "revsnn.bench.drift",
            "reconstruction drift of ReversibleLIF (and of a naive coupling) vs T and dtype"),
]
"""Every command; :func:`main` routes by these and imports a module only when its command runs."""

_GROUP_HELP = {"bench": "benchmarks: nodes, network, budget, beyond"}


# --------------------------------------------------------------------------------------------
# Helpers shared by command modules


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_device_argument(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    """``--device cpu|cuda|cuda:N``; check it with :func:`resolve_device`."""
    parser.add_argument("--device", default=default, metavar="DEVICE",
                        help=f"cpu, cuda or cuda:N (default: {default})")


def add_timing_arguments(parser: argparse.ArgumentParser, *, repeats: int, per: str) -> None:
    """``--repeats``, ``--warmup`` and ``--no-track-memory`` of the benchmarks; check with
    :func:`check_timing_arguments`."""
    parser.add_argument("--repeats", type=positive_int, default=repeats,
                        help=f"timed repetitions per {per} (default: {repeats})")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed repetitions before timing (default: 1)")
    parser.add_argument("--no-track-memory", dest="track_memory", action="store_false",
                        help="skip the allocator-level act/peak tracking (faster)")


def check_timing_arguments(args: argparse.Namespace) -> None:
    """:class:`UsageError` for a negative ``--warmup``."""
    if args.warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {args.warmup}")


def resolve_device(name: str):
    """``torch.device`` for ``name``; :class:`UsageError` for a malformed name or a missing GPU."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"--device: {exc}") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda[:N], got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA GPU is visible")
            raise UsageError(f"--device {name} requested but CUDA is not available "
                             f"(torch {torch.__version__}: {why}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def add_dtype_argument(parser: argparse.ArgumentParser, default=("float32",),
                       multiple: bool = True) -> None:
    """``--dtype`` from :data:`DTYPE_CHOICES`; one or several values when ``multiple``."""
    kw = dict(nargs="+", default=list(default)) if multiple else dict(default=default[0])
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, metavar="DTYPE",
                        help=f"one of {', '.join(DTYPE_CHOICES)}"
                             f"{' (one or several)' if multiple else ''} "
                             f"(default: {' '.join(default)})", **kw)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out PATH`` (.csv or .json by suffix) and ``--quiet``."""
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="write the rows to PATH: .csv or .json, chosen by the suffix")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing on stdout (errors still go to stderr)")


def default_node_modes() -> list:
    """The modes a node benchmark runs by default (:func:`revsnn.strategy.defaults`)."""
    from .strategy import defaults
    return defaults("nodes")


def parse_modes(values: Optional[Sequence[str]], *, command: str = "nodes",
                arch: Optional[str] = None) -> list:
    """Preset names for ``--modes`` values (space- or comma-separated); the command's defaults
    (:func:`revsnn.strategy.defaults`) when none are given. Duplicates are dropped.

    :class:`UsageError` names every unknown value and every preset that is not offered for
    ``command`` or does not build ``arch`` (with the ones that do), and a preset whose dependency
    is not installed (with how to install it).
    """
    from . import strategy

    if not values:
        return strategy.defaults(command, arch)
    try:
        presets = strategy.parse_many(values, command=command, arch=arch)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for p in presets:
        ok, why = p.available()
        if not ok:
            raise UsageError(f"mode {p.name!r} requested but {why}")
    return [p.name for p in presets]


# --------------------------------------------------------------------------------------------
# revsnn info


def info_add_arguments(parser: argparse.ArgumentParser) -> None:  # noqa: D401 - contract
    """``revsnn info`` takes no options."""


def info_lines() -> list:
    """``name: value`` lines describing the installation and the devices."""
    import platform

    import torch

    from . import __version__
    from .baselines import spikingjelly_version, spikingjelly_available
    from .measure import device_name

    sj = spikingjelly_version()
    if sj is None:
        sj = "not installed"
    elif not spikingjelly_available():
        sj += " (installed, but spikingjelly.activation_based fails to import)"
    lines = [
        f"revsnn: {__version__}",
        f"torch: {torch.__version__} (CUDA build: {torch.version.cuda or 'none'})",
        f"spikingjelly: {sj}",
        f"python: {platform.python_version()} ({platform.platform()})",
        f"cpu: {device_name('cpu')}, {torch.get_num_threads()} torch threads",
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            lines.append(f"cuda:{i}: {torch.cuda.get_device_name(i)}")
        lines.append("device: cuda")
    else:
        lines.append("cuda: not available")
        lines.append("device: cpu")
    return lines


def info_run(args: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0


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
    from . import __version__

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


def _description(command: Command, run: Callable) -> str:
    module = sys.modules.get(getattr(run, "__module__", "") or "")
    doc = (getattr(module, "__doc__", None) or "").strip().split("\n\n")[0]
    return command.help + (f"\n\n{doc}" if doc and command.module != "revsnn.cli" else "")


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


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
