"""The tutorial notebooks: each one runs headless in small-run mode, and its equations exist.

Every ``notebooks/NN_*.py`` (jupytext percent format) is executed with nbclient in a kernel that runs
*this* interpreter (a kernelspec written to a temporary folder, so a ``python3`` kernelspec of
another environment cannot be picked up instead), with ``REVSNN_SMALL=1`` and exported figures
written to a temporary folder. A failing cell, including a failing assertion, raises
``CellExecutionError`` and fails the test. The notebooks end in assertions of their own; these tests
add checks on their structure: every equation label a notebook cites exists in the library's
sources, every derivation step is followed by a checking cell, widget state is saved.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from unittest import mock

import jupytext
import nbclient
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
KERNEL_NAME = "revsnn-tests"
CELL_TIMEOUT_S = 300          # per cell: generous for a loaded CI machine; small-run cells take seconds
SMALL_SWITCH = 'SMALL = os.environ.get("REVSNN_SMALL") == "1"'
LABEL = re.compile(r"\(E\d+\.[0-9A-Z]+\)")   # (E2.5), (E3.N1); not the wildcard (E2.*)


def _ids(paths):
    return [p.stem for p in paths]


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory):
    """A kernelspec folder whose only kernel runs ``sys.executable`` (the venv running the tests)."""
    kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
    spec = kernels / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "revsnn tests", "language": "python"}))
    return kernels


@pytest.fixture(scope="session")
def execute(kernel_dir, tmp_path_factory):
    """``execute(path) -> executed notebook``; each notebook runs at most once per session."""
    done: dict = {}
    export_dir = tmp_path_factory.mktemp("notebook-exports")

    def run(path: Path):
        if path not in done:
            nb = jupytext.read(path)
            km = KernelManager(kernel_name=KERNEL_NAME,
                               kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
            client = nbclient.NotebookClient(
                nb, km=km, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL_NAME,
                resources={"metadata": {"path": str(path.parent)}})
            # One intra-op thread: the notebooks' tensors are small, and on a busy 2-core machine
            # two OpenMP threads per kernel were measured 20-40x slower than one.
            env = {"REVSNN_SMALL": "1", "REVSNN_EXPORT_DIR": str(export_dir),
                   "OMP_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
            with mock.patch.dict(os.environ, env):
                client.execute()
            done[path] = nb
        return done[path]

    run.export_dir = export_dir
    return run


def test_notebooks_found():
    names = [p.stem for p in NOTEBOOKS]
    assert len(names) >= 5 and names[0].startswith("01_"), names


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(execute, path):
    """Every cell runs without error in small-run mode (the notebooks' own assertions included)."""
    nb = execute(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # the kernel really was this interpreter, in small-run mode
    first = "".join(o.get("text", "") for o in nb.cells[1].get("outputs", []))
    assert "small run: True" in first, first


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_exports_figures(execute, path):
    """The export cell wrote a zip with at least one HTML figure, under REVSNN_EXPORT_DIR."""
    import zipfile

    execute(path)
    archive = execute.export_dir / f"{path.stem}.zip"
    assert archive.is_file(), sorted(p.name for p in execute.export_dir.iterdir())
    names = zipfile.ZipFile(archive).namelist()
    assert any(n.startswith("figures/") and n.endswith(".html") for n in names), names


@pytest.mark.slow
def test_widget_state_is_saved(execute):
    """nbclient stores widget state in the notebook metadata: the LIF trajectory sliders are there."""
    nb = execute(NOTEBOOK_DIR / "01_lif_and_bptt_memory.py")
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    sliders = {m["state"]["description"]: m["state"]["value"] for m in state.values()
               if m["model_name"] == "FloatSliderModel"}
    assert sliders.get("τ") == 2.0 and sliders.get("V_th") == 1.0, sliders
    dropdowns = [m["state"] for m in state.values() if m["model_name"] == "DropdownModel"]
    assert any(d.get("description") == "reset" for d in dropdowns)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_lif_and_bptt_memory", "02_deriving_the_reversible_node"])
def test_widget_figures_are_saved_in_the_executed_notebook(execute, name):
    """A widget draws into its own output, which an executed notebook does not keep: every cell
    that shows a figure widget also shows that figure as a plain output."""
    nb = execute(NOTEBOOK_DIR / f"{name}.py")
    cells = [c for c in nb.cells if c.cell_type == "code" and "widgets.interactive(" in c.source
             and ".show()" in c.source]
    assert cells
    for cell in cells:
        kinds = {k for o in cell.get("outputs", []) for k in o.get("data", {})}
        assert "application/vnd.plotly.v1+json" in kinds, (cell.source[:80], kinds)


WIDGET_PIN = re.compile(r"^\s*assert\b.*\w+_ui\.kwargs(?:\[[^]]+\])?\s*==\s*[\[{(\"'\d]", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_assertion_pins_a_widget_to_its_initial_value(path):
    """Rerunning a cell after moving a widget must not fail: assertions check the widget's
    current values, never that it still holds the value it started with."""
    assert not WIDGET_PIN.findall(path.read_text("utf-8"))
    assert WIDGET_PIN.search('assert drift_ui.kwargs == {"T": 64}')          # the check bites
    assert WIDGET_PIN.search('assert traj_ui.kwargs["tau"] == 2.0')


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_structure(path):
    """Small-run switch, imports revsnn, has widgets, ends in assertions, no machine paths."""
    text = path.read_text(encoding="utf-8")
    nb = jupytext.read(path)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert SMALL_SWITCH in text
    assert re.search(r"^(import revsnn|from revsnn)", text, re.M)
    assert "widgets.interactive(" in text or ".observe(" in text
    assert re.search(r"^\s*assert ", code[-1], re.M), "the last code cell must assert"
    # absolute machine paths (built from parts so that this file does not contain them itself)
    for marker in ["/" + root + "/" for root in ("work", "home", "root", "tmp")] + ["C:\\"]:
        assert marker not in text, f"machine path {marker!r} in {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_derivation_step_is_checked(path):
    """A markdown cell that cites an equation label is followed, before the next markdown cell, by a
    code cell that asserts something (derive → verify). The title cell, an overview, is exempt."""
    cells = jupytext.read(path).cells
    unchecked = []
    for i, cell in enumerate(cells):
        if i == 0 or cell.cell_type != "markdown" or not LABEL.search(cell.source):
            continue
        following = []
        for nxt in cells[i + 1:]:
            if nxt.cell_type == "markdown":
                break
            following.append(nxt.source)
        if not any(re.search(r"^\s*assert\b|assert_close\(", src, re.M) for src in following):
            unchecked.append(cell.source.splitlines()[0])
    assert not unchecked, unchecked


def _library_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "revsnn").rglob("*.py"))


def test_equation_labels_exist_in_library():
    """Every (E…) label used in a notebook is written in revsnn/'s sources (code comments, NOTEs)."""
    library = _library_text()
    used = {label: p.name for p in NOTEBOOKS for label in LABEL.findall(p.read_text("utf-8"))}
    assert len(used) >= 20, sorted(used)          # the extractor finds the labels at all
    missing = {label: nb for label, nb in used.items() if label not in library}
    assert not missing, missing
    assert "(E9.99)" not in library               # …and a label that does not exist is not found
