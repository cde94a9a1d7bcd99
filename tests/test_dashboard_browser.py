"""End to end in a real browser: `streamlit run dashboard/app.py`, driven by Playwright with
Debian's Chromium. Saves a screenshot of every page to artifacts/screenshots/ (ignored by git;
`make screenshots` copies them into docs/ on purpose, so running the tests never changes the tree).

Needs the `chromium` package (`make chromium`) and the `playwright` Python package; it never runs
`playwright install`. Skipped, with the reason, when either is missing.
"""

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PAGES = {  # link text in the sidebar -> screenshot name (docs/dashboard-<name>.png)
    "Nodes": "nodes", "Architectures": "architectures", "Max batch under a budget": "budget",
    "Reconstruction drift": "drift", "Results & export": "results"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _requirements() -> str:
    """Why the browser test cannot run here ('' when it can)."""
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (make chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The dashboard served on a free port, saved runs in a temporary folder."""
    port = _free_port()
    env = dict(os.environ, REVSNN_RUNS_DIR=str(tmp_path / "runs"))
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)  # its own process group: kaleido's browser is stopped with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text())
            time.sleep(0.2)
        yield url, tmp_path / "runs"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
        except ProcessLookupError:
            pass
        proc.wait()
        log.close()


def _wait_until_idle(page, timeout_s: float = 120) -> None:
    """Wait until the script has finished running (Streamlit shows its status widget, with a
    Stop button, while it runs)."""
    from playwright.sync_api import expect

    page.wait_for_timeout(500)
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(
        0, timeout=timeout_s * 1000)


def _download(page, button) -> bytes:
    with page.expect_download(timeout=90_000) as info:
        button.click()
    return Path(info.value.path()).read_bytes()


@pytest.mark.skipif(bool(_requirements()), reason=_requirements() or "ok")
def test_measure_download_and_screenshot(server):
    from playwright.sync_api import expect, sync_playwright

    url, runs = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)

            # opens with the shipped tables: real charts at once. Every page is photographed
            # with its shipped tables (the README's pictures), then the Nodes page again.
            page.wait_for_selector(".js-plotly-plot .main-svg")
            expect(page.get_by_text("Showing: shipped defaults")).to_be_visible()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.set_viewport_size({"width": 1500, "height": 1500})
            for link, name in PAGES.items():
                page.get_by_role("link", name=link, exact=True).click()
                _wait_until_idle(page)
                page.wait_for_selector(".js-plotly-plot .main-svg")
                page.wait_for_timeout(1500)  # let the charts finish their transitions
                if name != "results":
                    expect(page.get_by_text("Takeaway.", exact=False).first).to_be_visible()
                # a picture for the docs shows no machine path (the runs folder is temporary)
                assert str(runs.parent) not in page.locator("body").inner_text()
                page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.png"))
            assert sorted(p.name for p in SCREENSHOTS.glob("dashboard-*.png")) == sorted(
                f"dashboard-{n}.png" for n in PAGES.values())
            page.set_viewport_size({"width": 1500, "height": 1000})
            page.get_by_role("link", name="Nodes", exact=True).click()
            page.wait_for_selector(".js-plotly-plot .main-svg")

            # pick settings and measure live (tiny CPU sizes)
            sidebar = page.locator('[data-testid="stSidebar"]')
            for label, value in (("T values", "2 3"), ("Batch sizes", "2"), ("Neurons", "8"),
                                 ("Repeats", "1"), ("Warm-up runs", "0")):
                box = sidebar.get_by_label(label, exact=True)
                box.fill(value)
                box.press("Enter")
                page.wait_for_timeout(300)
            sidebar.get_by_role("button", name="Measure now").click()
            expect(page.get_by_text(re.compile(r"Measured \d+ of \d+ configurations"))) \
                .to_be_visible(timeout=120_000)
            expect(page.get_by_text("Showing: measured now")).to_be_visible()
            page.wait_for_selector(".js-plotly-plot .main-svg")
            assert len(list(runs.glob("nodes-*.csv"))) == 1

            # the first chart's data as CSV: exactly what was just measured
            main = page.locator('[data-testid="stMain"]')
            rows = list(csv.DictReader(io.StringIO(
                _download(page, main.get_by_role("button", name="CSV").first).decode())))
            assert {int(r["T"]) for r in rows} == {2, 3}
            assert {r["status"] for r in rows} == {"ok"} and {r["batch"] for r in rows} == {"2"}
            # the CSV carries what it was measured with, the chart says so in its subtitle
            assert {r["neurons"] for r in rows} == {"8"} and rows[0]["torch_version"]
            expect(main.get_by_text(re.compile(r"batch 2 · 8 neurons · float32")).first) \
                .to_be_visible()
            # and the chart itself as PNG, drawn by kaleido in the server
            png = _download(page, main.get_by_role("button", name="PNG").first)
            assert png.startswith(b"\x89PNG\r\n\x1a\n")

            # results page: one zip with every chart and table of this session
            # results page: one zip with every chart and table of this session, prepared with a
            # progress bar, then downloaded
            page.get_by_role("link", name="Results & export").click()
            page.get_by_role("button", name=re.compile("Prepare everything")).click()
            zip_button = page.get_by_role("button", name=re.compile("Download everything"))
            expect(zip_button).to_be_visible(timeout=300_000)
            with zipfile.ZipFile(io.BytesIO(_download(page, zip_button))) as zf:
                names = set(zf.namelist())
                nodes = list(csv.DictReader(io.StringIO(zf.read("tables/nodes.csv").decode())))
                manifest = zf.read("MANIFEST.txt").decode()
            assert {int(r["T"]) for r in nodes} == {2, 3} and {r["neurons"] for r in nodes} == {"8"}
            assert "figures/nodes-saved-bytes-vs-t.html" in names
            assert "figures/nodes-peak-memory-vs-t.png" in names
            assert "tables/reconstruction-drift.csv" in names
            assert "8 neurons" not in manifest and "neurons 8" in manifest
        finally:
            browser.close()
