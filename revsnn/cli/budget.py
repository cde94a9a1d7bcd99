"""``revsnn bench budget``: the largest batch (and, at a fixed batch, the largest T) each memory mode
trains in a memory budget (:mod:`revsnn.bench.budget`)."""

from __future__ import annotations

import argparse
import sys

from ..bench.budget import (COLUMNS, budget_search, effective_budget, format_budget_table,
                            parse_bytes)
from ..bench.report import echo, human_bytes, write_rows
from .options import (UsageError, add_device_argument, add_dtype_argument, add_modes_argument,
                      add_network_arguments, add_output_arguments, conversion_lines, network_of,
                      output_path, positive_int, resolve_device, rows_exit_code)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models import MODELS

    parser.add_argument("--budget", default="2GiB",
                        help="memory budget, e.g. 8GiB, 512MiB, 2GB (default: 2GiB)")
    add_network_arguments(parser, MODELS)     # --T: of the batch search; --batch: of the T search
    parser.add_argument("--search", nargs="+", choices=("batch", "T"), default=["batch", "T"],
                        help="what to maximise: the batch at --T, T at --batch (default: batch T)")
    parser.add_argument("--num-classes", type=positive_int, default=10)
    add_dtype_argument(parser, multiple=False)
    add_device_argument(parser)
    add_modes_argument(parser, "budget")
    parser.add_argument("--memopt-level", type=int, default=1, choices=(1, 2, 3, 4),
                        help="optimize_memory level for spikingjelly_memopt (default: 1; 4 "
                             "searches with CUDA memory measurements)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="largest batch / T to probe (a search that reaches it reports "
                             "'at least LIMIT'; bounds the time of a search on a CPU)")
    add_output_arguments(parser)


def _duration(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"1.5 h"``.

    >>> _duration(40), _duration(725), _duration(5400)
    ('40 s', '12 min', '1.5 h')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run(args: argparse.Namespace) -> int:
    try:
        budget = parse_bytes(args.budget)
    except ValueError as exc:
        raise UsageError(f"--budget: {exc}") from None
    out = output_path(args)
    arch, modes = network_of(args, "budget")
    device = resolve_device(args.device)
    echo(f"revsnn bench budget: {arch} within {human_bytes(budget)}; modes "
         f"{' '.join(modes)}; device {device}", quiet=args.quiet)
    _, capped = effective_budget(budget, device)
    if capped:
        echo(f"note: {capped}; every probe runs under a memory guard", quiet=args.quiet)
    if args.model:
        echo("\n".join(conversion_lines(arch, modes, num_classes=args.num_classes)),
             quiet=args.quiet)
    rows = budget_search(arch, modes, budget, T=args.T, batch=args.batch,
                         searches=tuple(args.search), image_size=args.image_size,
                         num_classes=args.num_classes, dtype=args.dtype, device=device,
                         seed=args.seed, memopt_level=args.memopt_level, limit=args.limit,
                         on_row=lambda r: echo(f"… {r['search']} {r['label']}: "
                                               f"{r['max_value']} ({r['status']})",
                                               quiet=args.quiet),
                         on_probe=lambda search, label, v, sec: echo(
                             f"  probing {search} = {v} ({label}"
                             + ("" if sec is None or sec < 30 else f", about {_duration(sec)}")
                             + ")", quiet=args.quiet, file=sys.stderr))
    echo("\n" + format_budget_table(rows), quiet=args.quiet)
    if out is not None:
        write_rows(rows, out, columns=COLUMNS)
        echo(f"\nwrote {len(rows)} rows to {out}", quiet=args.quiet)
    return rows_exit_code(rows)
