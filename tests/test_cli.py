"""The command line: routing, lazily imported command modules, `info`, `drift`, the GPU script."""

import importlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

import revsnn
from revsnn import cli
from revsnn.bench.drift import DRIFT_COLUMNS
from revsnn.cli import Command, main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("info", "bench", "train", "drift"):
        assert word in out
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for word in ("nodes", "network", "budget"):
        assert word in out


@pytest.mark.parametrize("path", [c.path for c in cli.COMMANDS])
def test_command_help_has_no_raw_rest_markup(path, capsys):
    """Help text is plain: no ``code`` or :mod:`x` markup from the module docstrings."""
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "`" not in out and ":mod:" not in out, out


def test_torch_triton_warning_stays_out_of_command_output():
    """Without Triton, torch logs "Triton not available" whenever SpikingJelly registers its
    operators; a command's output must not carry it (Triton is hidden in the subprocess)."""
    code = ("import sys; sys.modules['triton'] = None\n"
            "from revsnn.cli import main\n"
            "raise SystemExit(main(['bench', 'nodes', '--T', '2', '--batch', '2', '--neurons', "
            "'8', '--repeats', '1', '--warmup', '0', '--modes', 'spikingjelly', 'fused']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    assert "SpikingJelly LIFNode" in proc.stdout
    assert "Triton not available" not in proc.stdout + proc.stderr


def test_missing_command_and_unknown_command_exit_2(capsys):
    assert main([]) == 2
    assert main(["bench"]) == 2
    assert main(["fly"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'fly'" in err


def test_leaf_help_comes_from_the_command_module(capsys):
    assert main(["bench", "nodes", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: revsnn bench nodes" in out
    for option in ("--T", "--batch", "--neurons", "--dtype", "--device", "--modes", "--repeats",
                   "--warmup", "--out", "--quiet"):
        assert option in out


def test_info_prints_versions(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"revsnn: {revsnn.__version__}" in out
    assert f"torch: {torch.__version__}" in out
    assert "spikingjelly: " in out
    assert "device: " + ("cuda" if torch.cuda.is_available() else "cpu") in out


def test_a_missing_module_disables_only_its_command(monkeypatch, capsys):
    # None in sys.modules makes `import revsnn.bench.network` fail, whether or not it exists.
    monkeypatch.setitem(sys.modules, "revsnn.bench.network", None)
    monkeypatch.delitem(sys.modules, "revsnn.cli.network", raising=False)
    assert main(["bench", "network"]) == 1
    assert main(["bench", "network", "--help"]) == 1
    err = capsys.readouterr().err
    assert "revsnn bench network: error: command unavailable: module revsnn.cli.network" in err
    assert "revsnn.bench.network" in err
    # The other commands still work in the same process.
    assert main(["bench", "nodes", "--T", "2", "--batch", "2", "--neurons", "8", "--repeats", "1",
                 "--modes", "bptt", "--quiet"]) == 0
    assert main(["info"]) == 0


@pytest.fixture
def fake_commands(tmp_path, monkeypatch):
    """Three command modules on sys.path: one that works, one that raises, one without run()."""
    pkg = tmp_path / "fakecmds"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(textwrap.dedent('''
        """A fake command."""
        from revsnn.cli import UsageError

        def add_arguments(parser):
            parser.add_argument("--n", type=int, default=3)

        def run(args):
            if args.n < 0:
                raise UsageError(f"--n must be >= 0, got {args.n}")
            print(f"good ran with n={args.n} as {args.command!r}")
            return args.n
    '''))
    (pkg / "broken.py").write_text("raise RuntimeError('half-written module')\n")
    (pkg / "norun.py").write_text("def add_arguments(parser):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + [
        Command(("bench", "good"), "fakecmds.good", "works"),
        Command(("bench", "broken"), "fakecmds.broken", "raises on import"),
        Command(("norun",), "fakecmds.norun", "lacks run()"),
    ])
    yield
    for name in ("fakecmds", "fakecmds.good", "fakecmds.broken", "fakecmds.norun"):
        sys.modules.pop(name, None)


def test_command_contract_routes_args_and_exit_codes(fake_commands, capsys):
    assert main(["bench", "good", "--n", "0"]) == 0
    assert "good ran with n=0 as 'bench good'" in capsys.readouterr().out
    assert main(["bench", "good", "--n", "4"]) == 4  # run()'s return value is the exit code
    assert main(["bench", "good", "--n", "-1"]) == 2
    assert "revsnn bench good: error: --n must be >= 0, got -1" in capsys.readouterr().err
    assert main(["bench", "good", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_broken_modules_report_clearly(fake_commands, capsys):
    assert main(["bench", "broken"]) == 1
    err = capsys.readouterr().err
    assert "module fakecmds.broken could not be imported (RuntimeError: half-written module)" in err
    assert main(["norun"]) == 1
    assert "does not define add_arguments(parser) and run(args)" in capsys.readouterr().err
    assert main(["bench", "good"]) == 3  # unaffected


def test_drift_writes_the_table(tmp_path, capsys):
    out = tmp_path / "drift.csv"
    assert main(["drift", "--T", "4", "32", "--dtype", "float32", "bfloat16", "--batch", "2",
                 "--channels", "16", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "float32 (inputs N(0, 1.5²))" in text and "bfloat16" in text
    df = pd.read_csv(out)
    assert list(df.columns) == DRIFT_COLUMNS
    assert len(df) == 2 * 2 * 2  # node × T × dtype
    rev = df[df["node"] == "ReversibleLIF"]
    assert rev["exact"].all()
    assert (rev["input_error"] == 0).all() and (rev["state_error"] == 0).all()
    assert (rev["flipped_spikes"] == 0).all()
    naive = df[df["node"] == "naive coupling"]
    # The naive coupling doubles sub-threshold membranes: |V| grows by orders of magnitude in T.
    grow = naive.set_index(["dtype", "T"])["max_membrane"]
    assert grow["float32", 32] > 1e6 * grow["float32", 4]


def test_drift_rejects_odd_channels(capsys):
    assert main(["drift", "--channels", "7"]) == 2
    assert "--channels must be even" in capsys.readouterr().err


def _python_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_python_dash_m_entry_point():
    res = subprocess.run([sys.executable, "-m", "revsnn", "--version"], capture_output=True,
                         text=True, env=_python_env(), cwd=ROOT, timeout=60)
    assert res.returncode == 0
    assert res.stdout.strip() == f"revsnn {revsnn.__version__}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_script_is_valid_bash():
    res = subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.skipif(shutil.which("bash") is None or torch.cuda.is_available(),
                    reason="needs bash and a machine without CUDA")
def test_gpu_check_script_fails_clearly_without_gpu(tmp_path):
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True,
                         text=True, env={**_python_env(), "PYTHON": sys.executable,
                                         "OUT": str(tmp_path)}, timeout=120)
    assert res.returncode == 3
    assert "no CUDA GPU" in res.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written
