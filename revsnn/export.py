"""Export figures and tables: PNG, SVG and PDF (kaleido), interactive HTML, CSV, and one zip of all.

The dashboard and the notebooks share these functions so that an exported chart looks the same
wherever it was made.

Static images (PNG, SVG, PDF) are drawn by kaleido, which drives a Chromium-based browser already on
the machine (Debian: ``apt-get install -y chromium``; never a downloaded one). Without such a
browser :func:`figure_to_bytes` raises :class:`StaticExportUnavailable` with a message that says so,
and :func:`export_all` still writes the HTML and CSV files and a note explaining what is missing.
HTML needs no browser: it embeds plotly.js, so the file opens offline.

>>> import pandas as pd, plotly.graph_objects as go
>>> fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
>>> figure_to_bytes(fig, "html")[:15]
b'<!doctype html>'
>>> table_to_csv(pd.DataFrame({"T": [4], "mode": ["fused"]})).decode()
'T,mode\\n4,fused\\n'
"""

from __future__ import annotations

import atexit
import datetime as _dt
import io
import re
import shutil
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Mapping, Optional, Sequence

__all__ = [
    "STATIC_FORMATS", "FIGURE_FORMATS", "MIME_TYPES", "StaticExportUnavailable",
    "static_export_status", "figure_to_bytes", "table_to_csv", "with_context", "write_figure",
    "export_all", "slugify",
]

STATIC_FORMATS = ("png", "svg", "pdf")
"""Formats drawn by kaleido; they need a Chromium-based browser."""
FIGURE_FORMATS = STATIC_FORMATS + ("html",)
"""Every format a figure can be exported to."""
MIME_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf",
              "html": "text/html", "csv": "text/csv", "zip": "application/zip"}

_INSTALL_HINT = ("install Debian's Chromium (`apt-get install -y chromium`, or `make chromium`); "
                 "HTML and CSV export work without it")
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

# kaleido's sync server is process-wide and not safe to drive from several threads at once
# (Streamlit runs every session in its own thread), so every static export holds this lock.
_lock = threading.Lock()
_server_open = False


class StaticExportUnavailable(RuntimeError):
    """PNG/SVG/PDF export is not possible here (no kaleido, or no Chromium-based browser)."""


def _browser_path() -> Optional[str]:
    """The browser kaleido would use: its own lookup (which honours ``BROWSER_PATH``), else PATH."""
    try:
        from choreographer.browsers.chromium import Chromium
        path = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - an unexpected choreographer layout: fall back to PATH
        path = None
    if path:
        return str(path)
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def static_export_status() -> tuple[bool, str]:
    """``(available, reason)`` for PNG/SVG/PDF export; cheap (looks for kaleido and a browser)."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False, f"kaleido is not installed (pip install kaleido); {_INSTALL_HINT}"
    path = _browser_path()
    if path is None:
        return False, f"no Chromium-based browser found for kaleido; {_INSTALL_HINT}"
    return True, f"kaleido with {path}"


def _ensure_server():
    """Start kaleido's sync server once: the first image then costs ~1.5 s, later ones ~0.2 s."""
    global _server_open
    if not _server_open:
        import kaleido
        kaleido.start_sync_server(silence_warnings=True)
        atexit.register(_stop_server)
        _server_open = True


def _stop_server():
    global _server_open
    if _server_open:
        import kaleido
        try:
            kaleido.stop_sync_server(silence_warnings=True)
        finally:
            _server_open = False


def figure_to_bytes(fig, fmt: str, *, width: Optional[int] = None, height: Optional[int] = None,
                    scale: Optional[float] = None, include_plotlyjs=True) -> bytes:
    """Export a plotly figure as ``fmt`` (``"png"``, ``"svg"``, ``"pdf"`` or ``"html"``).

    HTML is self-contained by default (``include_plotlyjs=True`` embeds plotly.js, ~4.5 MB; pass
    ``"cdn"`` for a small file that loads plotly.js from the web). Static formats raise
    :class:`StaticExportUnavailable` when no browser is available or the browser fails.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt == "html":
        return fig.to_html(full_html=True, include_plotlyjs=include_plotlyjs).encode("utf-8")
    if fmt not in STATIC_FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; choose from {', '.join(FIGURE_FORMATS)}")
    ok, reason = static_export_status()
    if not ok:
        raise StaticExportUnavailable(f"cannot export {fmt.upper()}: {reason}")
    import plotly.io as pio
    with _lock:
        try:
            _ensure_server()
            with warnings.catch_warnings():
                # plotly passes options the running server ignores; the figure's size still applies
                warnings.filterwarnings("ignore", message="The kopts argument is ignored")
                return pio.to_image(fig, format=fmt, width=width, height=height, scale=scale)
        except Exception as exc:  # noqa: BLE001 - every kaleido/browser failure gets one type
            raise StaticExportUnavailable(
                f"cannot export {fmt.upper()}: kaleido failed ({type(exc).__name__}: {exc}); "
                f"{_INSTALL_HINT}") from exc


def table_to_csv(df) -> bytes:
    """A DataFrame as UTF-8 CSV without the index (NaN as an empty cell)."""
    return df.to_csv(index=False).encode("utf-8")


def with_context(df, context: Optional[Mapping[str, object]] = None):
    """``df`` with one constant column per ``context`` entry it lacks (e.g. ``neurons``,
    ``torch_version``), so that an exported table says what it was measured with.

    >>> import pandas as pd
    >>> with_context(pd.DataFrame({"T": [4]}), {"neurons": 1024, "T": 8}).to_dict("records")
    [{'T': 4, 'neurons': 1024}]
    """
    if not context:
        return df
    extra = {k: v for k, v in context.items() if k not in df.columns}
    return df.assign(**extra) if extra else df


def write_figure(fig, path, **kwargs) -> Path:
    """Write ``fig`` to ``path``; the format is the suffix (.png, .svg, .pdf, .html)."""
    path = Path(path)
    data = figure_to_bytes(fig, path.suffix, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def slugify(name: str) -> str:
    """A file-name-safe version of ``name``: ``"Saved bytes vs T"`` -> ``"saved-bytes-vs-t"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")
    return slug or "figure"


def export_all(figures: Mapping[str, object], tables: Mapping[str, object] = None, *,
               formats: Sequence[str] = FIGURE_FORMATS, scale: Optional[float] = None,
               contexts: Optional[Mapping[str, Mapping[str, object]]] = None,
               on_progress=None) -> bytes:
    """One zip with every figure in every format and every table as CSV.

    ``figures`` and ``tables`` map display names to plotly figures and DataFrames. Layout of the
    zip: ``figures/<name>.<fmt>``, ``tables/<name>.csv`` and ``MANIFEST.txt`` (what is inside, the
    context of each table, and why any static format is missing). The HTML files share one
    ``figures/plotly.min.js`` (they open offline once unzipped). Static formats that cannot be
    drawn are skipped, not fatal. ``scale`` is the PNG scale; ``contexts`` maps a table's name to
    what it was measured with (added as columns, :func:`with_context`, and to the manifest);
    ``on_progress(done, total, what)`` is called after each file.
    """
    tables = tables or {}
    formats = [f.lower().lstrip(".") for f in formats]
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown:
        raise ValueError(f"unknown figure formats {unknown}; choose from {list(FIGURE_FORMATS)}")
    contexts = contexts or {}
    lines = [f"revsnn export, {_dt.datetime.now().isoformat(timespec='seconds')}", ""]
    skipped: dict = {}
    total, done = len(figures) * len(formats) + len(tables), 0

    def step(what):
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total, what)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, fig in figures.items():
            for fmt in formats:
                arc = f"figures/{slugify(name)}.{fmt}"
                if fmt in skipped:
                    step(arc)
                    continue
                try:
                    data = figure_to_bytes(fig, fmt, include_plotlyjs="directory",
                                           scale=scale if fmt == "png" else None)
                except StaticExportUnavailable as exc:
                    skipped[fmt] = str(exc)
                    step(arc)
                    continue
                zf.writestr(arc, data)
                lines.append(f"{arc}\t{name}")
                step(arc)
        if "html" in formats and figures:
            from plotly.offline import get_plotlyjs
            zf.writestr("figures/plotly.min.js", get_plotlyjs())
        for name, df in tables.items():
            arc = f"tables/{slugify(name)}.csv"
            ctx = contexts.get(name) or {}
            zf.writestr(arc, table_to_csv(with_context(df, ctx)))
            about = "; ".join(f"{k} {v}" for k, v in ctx.items())
            lines.append(f"{arc}\t{name} ({len(df)} rows{'; ' + about if about else ''})")
            step(arc)
        if skipped:
            lines += ["", "Not exported:"] + [f"- {fmt}: {why}" for fmt, why in skipped.items()]
        zf.writestr("MANIFEST.txt", "\n".join(lines) + "\n")
    return buf.getvalue()
