"""The bad inputs a user can give, and what each one gets: the source of ``docs/bad_inputs.md``.

Each case runs the real code and returns what the user sees (the exception and its message, or
the command's exit code and its error line). ``tests/test_bad_inputs_table.py`` checks every
outcome and that the table in ``docs/`` is the one these cases produce now; regenerate it with
``.venv/bin/python scripts/bad_inputs_table.py``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

TABLE = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"


@dataclass(frozen=True)
class Case:
    area: str
    given: str             # what the user does
    run: Callable[[], str]  # returns what the user gets
    expect: str            # the kind of outcome: an exception type name, or "exit N"


class NoError(AssertionError):
    """A bad input was accepted."""


def raises(fn) -> str:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the outcome is the point
        return f"{type(exc).__name__}: {exc}"
    raise NoError("accepted")


def cli(*argv, show: str = "") -> str:
    """``exit N: <the last error line>``, or the first output line containing ``show``."""
    from revsnn.cli import main
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(list(argv))
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if show:
        lines = [ln.strip() for ln in out.getvalue().splitlines() if show in ln][:1]
    return f"exit {rc}: {lines[-1] if lines else ''}"


@contextlib.contextmanager
def _in_temp_folder():
    before = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            Path("plain.txt").write_text("a file, not a folder")
            yield Path(folder)
        finally:
            os.chdir(before)


def in_temp(fn):
    def run():
        with _in_temp_folder():
            return fn()
    return run


def _x(*shape, scale=1.5):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * scale


def _node(**kw):
    from revsnn import ReversibleLIF
    return ReversibleLIF(**kw)


def _binary(**kw):
    from revsnn.nodes.binary import BinaryReversibleLIF
    return BinaryReversibleLIF(**kw)


def _inplace_after(mode):
    x = _x(4, 2, 8).requires_grad_()
    y = _node(backward=mode)(x)
    nn.ReLU(inplace=True)(y)
    y.sum().backward()


def _resume_from(content: Callable[[], bytes]):
    from test_checkpoint_faults import config, tiny
    from revsnn.training import train

    def run():
        Path("bad.pt").write_bytes(content())
        train(config(out_dir="run", resume="bad.pt"), tiny)
    return in_temp(lambda: raises(run))


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _vmap_binary():
    torch.vmap(_binary())(_x(3, 4, 2, 8))


def _grad_checkpointed():
    from revsnn import make_node
    node = make_node("checkpoint")
    torch.func.grad(lambda z: node(z).sum())(_x(3, 2, 4))


def _inplace_after_bn_unit():
    from revsnn.layers.bn_node import apply_bn_node
    x = _x(6, 4, 5, 5).requires_grad_()
    y = apply_bn_node(x, nn.BatchNorm2d(4), _node(backward="fused"), T=3)
    y.add_(1)
    y.sum().backward()


def _jvp_fused():
    x = _x(4, 2, 8)
    torch.func.jvp(_node(backward="fused"), (x,), (torch.ones_like(x),))


CASES = [
    # -- nodes
    Case("node", "input [T, B] (rank 2)", lambda: raises(lambda: _node()(_x(4, 8))), "ValueError"),
    Case("node", "odd channel count for ReversibleLIF", lambda: raises(lambda: _node()(_x(4, 2, 7))),
         "ValueError"),
    Case("node", "zero-size channel dimension",
         lambda: raises(lambda: _node()(torch.empty(4, 2, 0))), "ValueError"),
    Case("node", "zero-size spatial dimension",
         lambda: raises(lambda: _binary()(torch.empty(4, 2, 3, 0))), "ValueError"),
    Case("node", "NaN in the input",
         lambda: raises(lambda: _node()(torch.tensor([[[float("nan"), 1.0]]]))), "ValueError"),
    Case("node", "|x| beyond the exact range (fp32, |x| = 5000)",
         lambda: raises(lambda: _node()(torch.full((2, 1, 2), 5000.0))), "ValueError"),
    Case("node", "inputs in range whose membranes leave it (σ = 800, fused)",
         lambda: raises(lambda: _node()(_x(16, 4, 32, scale=800).clamp(-2045, 2045))),
         "ValueError"),
    Case("node", "initial state off the fixed-point grid",
         lambda: raises(lambda: _node()(_x(4, 2, 8), state=(torch.full((2, 4), 0.1),
                                                         torch.zeros(2, 4)))), "ValueError"),
    Case("node", "NaN initial state (any backward)",
         lambda: raises(lambda: _node(backward="autograd")(
             _x(4, 2, 8), state=(torch.full((2, 4), float("nan")), torch.zeros(2, 4)))),
         "ValueError"),
    Case("node", "nn.ReLU(inplace=True) after a fused node, then backward()",
         lambda: raises(lambda: _inplace_after("fused")), "ReconstructionError"),
    Case("node", "tau='abc'", lambda: raises(lambda: _node(tau="abc")), "ValueError"),
    Case("node", "BinaryReversibleLIF, bf16 input |x| = 2000",
         lambda: raises(lambda: _binary()(torch.full((2, 1, 4), 2000.0, dtype=torch.bfloat16))),
         "ValueError"),
    Case("node", "torch.vmap over BinaryReversibleLIF", lambda: raises(_vmap_binary), "ValueError"),
    Case("node", "torch.func.jvp through backward='fused'", lambda: raises(_jvp_fused),
         "NotImplementedError"),
    Case("node", "torch.func.grad through mode 'checkpoint'", lambda: raises(_grad_checkpointed),
         "NotImplementedError"),
    Case("layer", "y += 1 on a BN-fused node unit's output, then backward()",
         lambda: raises(_inplace_after_bn_unit), "ReconstructionError"),
    # -- command line
    Case("cli", "drift --out plain.txt/rows.csv (a file in the path)",
         in_temp(lambda: cli("drift", "--T", "2", "--out", "plain.txt/rows.csv")), "exit 2"),
    Case("cli", "bench nodes --out /proc/rows.csv (unwritable)",
         lambda: cli("bench", "nodes", "--out", "/proc/rows.csv"), "exit 2"),
    Case("cli", "bench network --out rows.txt (unknown suffix)",
         lambda: cli("bench", "network", "--out", "rows.txt"), "exit 2"),
    Case("cli", "train --out-dir plain.txt/run",
         in_temp(lambda: cli("train", "--data", "digits", "--out-dir", "plain.txt/run")),
         "exit 2"),
    Case("cli", "train --node tau=abc",
         in_temp(lambda: cli("train", "--data", "digits", "--node", "tau=abc", "--out-dir", "run")),
         "exit 2"),
    Case("cli", "bench budget --budget 1KiB (the model cannot fit)",
         lambda: cli("bench", "budget", "--arch", "convnet", "--budget", "1KiB", "--image-size",
                     "8", "--T", "2", "--modes", "fused", "--search", "batch",
                     show="does not fit"), "exit 3"),
    Case("cli", "bench budget --budget lots", lambda: cli("bench", "budget", "--budget", "lots"),
         "exit 2"),
    # -- resuming
    Case("resume", "train --resume from a folder",
         in_temp(lambda: cli("train", "--data", "digits", "--out-dir", "run", "--resume", ".")),
         "exit 2"),
    Case("resume", "train --resume from an empty file", _resume_from(lambda: b""),
         "TrainSetupError"),
    Case("resume", "train --resume from a text file", _resume_from(lambda: b"epoch=3\n"),
         "TrainSetupError"),
    Case("resume", "train --resume from a saved tensor", _resume_from(lambda: _saved(torch.ones(2))),
         "TrainSetupError"),
    Case("resume", "train --resume from another format version",
         _resume_from(lambda: _saved({"format": 99})), "TrainSetupError"),
    Case("resume", "train --resume from an incomplete checkpoint",
         _resume_from(lambda: _saved({"format": 1, "epoch": 2})), "TrainSetupError"),
]


def outcome_kind(outcome: str) -> str:
    return outcome.split(":", 1)[0]


def markdown(rows) -> str:
    """The table for ``(case, outcome)`` pairs."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "# What each bad input gets",
        "",
        "Generated from `tests/bad_inputs.py` by `.venv/bin/python scripts/bad_inputs_table.py`;",
        "`tests/test_bad_inputs_table.py` checks that every case still gets what is listed here.",
        "Run on a CPU; messages are shown as the user sees them. Exit codes: 2 a usage error, 3 a",
        "benchmark whose every requested row failed. Besides these, `bench budget` caps",
        "a budget above the memory the machine has available and says so, and runs every probe",
        "under a memory guard (see `revsnn/analysis/memory_guard.py`).",
        "",
        "| where | bad input | what it gets |",
        "| --- | --- | --- |",
    ]
    for case, outcome in rows:
        lines.append(f"| {case.area} | {cell(case.given)} | {cell(outcome)} |")
    return "\n".join(lines) + "\n"


def generate() -> tuple:
    """``(markdown, [(case, outcome)])`` from running every case now."""
    torch.set_num_threads(1)
    rows = [(case, case.run()) for case in CASES]
    return markdown(rows), rows
