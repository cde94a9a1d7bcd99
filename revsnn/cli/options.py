"""The option groups every command shares, so that every command spells its options alike:
positive integers, ``--device``, ``--dtype``, ``--out``/``--quiet``, ``--repeats``/``--warmup``/
``--no-track-memory`` and ``--modes`` (names from :mod:`revsnn.strategy`, parsed here, once).

A bad value raises :class:`UsageError`, which the router prints and turns into exit code 2.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

__all__ = [
    "UsageError", "positive_int", "add_device_argument", "resolve_device", "add_dtype_argument",
    "add_output_arguments", "output_path", "add_timing_arguments", "check_timing_arguments",
    "add_modes_argument", "add_network_arguments", "network_of", "conversion_lines", "parse_modes",
    "rows_exit_code", "DTYPE_CHOICES",
]

DTYPE_CHOICES = ("float32", "float64", "bfloat16", "float16")


class UsageError(Exception):
    """A bad option value or combination; the router prints it and exits with code 2."""


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


def resolve_device(name: str):
    """``torch.device`` for ``name`` (:func:`revsnn.analysis.measure.parse_device`); :class:`UsageError`
    for a malformed name or a missing GPU."""
    from ..analysis.measure import parse_device
    try:
        return parse_device(name)
    except ValueError as exc:
        raise UsageError(f"--device {exc}") from None


def add_dtype_argument(parser: argparse.ArgumentParser, default=("float32",),
                       multiple: bool = True) -> None:
    """``--dtype`` from :data:`DTYPE_CHOICES`; one or several values when ``multiple``."""
    kw = dict(nargs="+", default=list(default)) if multiple else dict(default=default[0])
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, metavar="DTYPE",
                        help=f"one of {', '.join(DTYPE_CHOICES)}"
                             f"{' (one or several)' if multiple else ''} "
                             f"(default: {' '.join(default)})", **kw)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out PATH`` (.csv or .json by suffix) and ``--quiet``; check with :func:`output_path`."""
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="write the rows to PATH: .csv or .json, chosen by the suffix")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing on stdout (errors still go to stderr)")


def output_path(args: argparse.Namespace):
    """``--out`` as a path checked before a long run (None when not given)."""
    from ..bench.report import check_output_path
    try:
        return check_output_path(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


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


def add_network_arguments(parser: argparse.ArgumentParser, archs, *, T: int = 8,
                          batch: int = 16) -> None:
    """``--arch`` (one of ``archs``), ``--T``, ``--batch``, ``--image-size`` (alias ``--size``)
    and ``--model`` (a network of your own; read both with :func:`network_of`) of the commands that
    measure whole networks."""
    parser.add_argument("--arch", default="vgg11", choices=list(archs),
                        help="zoo architecture (default: vgg11)")
    parser.add_argument("--T", type=positive_int, default=T, help=f"timesteps (default: {T})")
    parser.add_argument("--batch", type=positive_int, default=batch,
                        help=f"batch size (default: {batch})")
    parser.add_argument("--image-size", "--size", dest="image_size", type=positive_int,
                        default=32, help="input height = width (default: 32)")
    parser.add_argument("--model", default=None, metavar="MODULE:FACTORY",
                        help="a network of your own instead of --arch: package.module:factory or "
                             "path/to/file.py:factory, returning an nn.Module over [T, B, C, H, W]; "
                             "converted to every mode by revsnn.convert")


def network_of(args: argparse.Namespace, command: str) -> tuple:
    """``(arch, modes)``: ``--model`` (checked: it must import and name a callable) or ``--arch``,
    and the ``--modes`` for it (:func:`parse_modes`; for ``--model``, the node strategies a
    network converts to). :class:`UsageError` for a bad value."""
    if not getattr(args, "model", None):
        return args.arch, parse_modes(args.modes, command=command, arch=args.arch)
    from ..conversion import load_factory, user_modes
    try:
        load_factory(args.model)
        modes = user_modes(command, args.modes)
    except ValueError as exc:
        raise UsageError(f"--model: {exc}") from None
    for m in modes:
        parse_modes([m], command=command)             # a missing dependency is named here
    return args.model, modes


def conversion_lines(spec: str, modes: Sequence[str], *, in_channels: int = 3,
                     num_classes: int = 10) -> list:
    """What :func:`revsnn.convert` does to ``spec`` in each mode: the summary, and every node
    left alone or whose BatchNorm was not fused, with the reason (printed before measuring, so
    that no node is left alone unseen)."""
    from ..conversion import ConversionError, user_network

    lines = []
    for mode in modes:
        try:
            report = user_network(spec, mode, in_channels=in_channels,
                                  num_classes=num_classes).report
            built = ""
        except ConversionError as exc:          # a time-major network that cannot be built
            if exc.report is None:
                raise
            report, built = exc.report, " (not built: its rows are errors)"
        lines.append(f"convert {spec} -> {report.summary()}{built}")
        lines += [f"    {r.path}: {r.source} left alone: {r.reason}" for r in report.left_alone]
        lines += [f"    {where}: left alone: {why}" for where, why in report.patterns]
        lines += [f"    note: {n}" for n in report.notes]
    return lines


def add_modes_argument(parser: argparse.ArgumentParser, command: str) -> None:
    """``--modes``: the presets offered for ``command`` (listed from the registry), defaulting to
    those the registry marks for it; parse with :func:`parse_modes`."""
    from .. import strategy
    per_arch = command != "nodes"
    parser.add_argument(
        "--modes", nargs="+", default=None, metavar="MODE",
        help=f"presets{' that build --arch' if per_arch else ''}, of: "
             f"{', '.join(strategy.names(command=command))} (default: "
             f"{' '.join(strategy.defaults(command))}"
             f"{', those that build --arch' if per_arch else ''})")


def parse_modes(values: Optional[Sequence[str]], *, command: str = "nodes",
                arch: Optional[str] = None) -> list:
    """Preset names for ``--modes`` values (space- or comma-separated); the command's defaults
    (:func:`revsnn.strategy.defaults`) when none are given. Duplicates are dropped.

    :class:`UsageError` names every unknown value and every preset that is not offered for
    ``command`` or does not build ``arch`` (with the ones that do), and a preset whose dependency
    is not installed (with how to install it).
    """
    from .. import strategy

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


def rows_exit_code(rows) -> int:
    """A benchmark command's exit status: 0, or ``ALL_FAILED_EXIT`` (with a line on stderr) when
    every requested row failed."""
    import sys

    from ..bench.report import ALL_FAILED_EXIT, all_failed, echo

    if all_failed(rows):
        echo(f"error: every requested measurement failed ({len(rows)} rows: see the table "
             f"above); exit code {ALL_FAILED_EXIT}", file=sys.stderr)
        return ALL_FAILED_EXIT
    return 0
