"""revsnn.export: HTML and CSV always; PNG, SVG, PDF when a Chromium-based browser is present;
a clear error and a zip without static images when it is not."""

import io
import zipfile

import pandas as pd
import plotly.graph_objects as go
import pytest

from revsnn import export


@pytest.fixture
def fig():
    return go.Figure(go.Scatter(x=[4, 8, 16], y=[1.5, 3.0, 6.0], name="LIF (BPTT)"),
                     layout=dict(title="saved bytes vs T"))


@pytest.fixture
def table():
    return pd.DataFrame({"mode": ["bptt", "fused"], "T": [8, 8], "saved_bytes": [3072, 256.0]})


@pytest.fixture
def no_browser(monkeypatch):
    monkeypatch.setattr(export, "_browser_path", lambda: None)


def test_html_is_self_contained_and_holds_the_data(fig):
    html = export.figure_to_bytes(fig, "html").decode()
    assert html.lower().startswith("<!doctype html>")
    assert "LIF (BPTT)" in html and "saved bytes vs T" in html
    assert "<script src=" not in html  # plotly.js embedded: opens offline
    small = export.figure_to_bytes(fig, "html", include_plotlyjs="cdn")
    assert len(small) < len(html) / 10


def test_csv_round_trips(table):
    back = pd.read_csv(io.BytesIO(export.table_to_csv(table)))
    pd.testing.assert_frame_equal(back, table)


def test_unknown_format_is_named(fig):
    with pytest.raises(ValueError, match="bmp"):
        export.figure_to_bytes(fig, "bmp")
    with pytest.raises(ValueError, match="gif"):
        export.export_all({"f": fig}, formats=("gif",))


def test_slugify():
    assert export.slugify("Nodes: saved bytes vs T") == "nodes-saved-bytes-vs-t"
    assert export.slugify("***") == "figure"


def test_without_browser_static_export_says_why(fig, no_browser):
    ok, reason = export.static_export_status()
    assert not ok and "chromium" in reason.lower()
    with pytest.raises(export.StaticExportUnavailable, match="(?i)cannot export PNG.*chromium"):
        export.figure_to_bytes(fig, "png")


def test_export_all_without_browser_keeps_html_and_csv(fig, table, no_browser):
    blob = export.export_all({"Saved bytes": fig}, {"Nodes": table})
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = set(zf.namelist())
        manifest = zf.read("MANIFEST.txt").decode()
        csv = zf.read("tables/nodes.csv").decode()
        html = zf.read("figures/saved-bytes.html").decode()
        plotly_js = zf.read("figures/plotly.min.js")
    assert names == {"figures/saved-bytes.html", "figures/plotly.min.js", "tables/nodes.csv",
                     "MANIFEST.txt"}
    assert '<script charset="utf-8" src="plotly.min.js"></script>' in html  # shared, offline
    assert len(plotly_js) > 1_000_000
    assert "Not exported" in manifest and "png" in manifest and "chromium" in manifest.lower()
    assert csv.splitlines()[0] == "mode,T,saved_bytes"


def test_write_figure_picks_format_from_suffix(fig, tmp_path):
    path = export.write_figure(fig, tmp_path / "sub" / "chart.html")
    assert path.read_bytes().startswith(b"<!doctype html>")


needs_browser = pytest.mark.skipif(
    not export.static_export_status()[0],
    reason=f"static export unavailable: {export.static_export_status()[1]}")


@needs_browser
@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<svg"),
                                        ("pdf", b"%PDF")])
def test_static_formats(fig, fmt, magic):
    data = export.figure_to_bytes(fig, fmt)
    assert data.startswith(magic)
    if fmt == "svg":
        assert b"saved bytes vs T" in data  # the title is drawn as text


@needs_browser
def test_export_all_with_browser_has_every_format(fig, table):
    blob = export.export_all({"A": fig, "B": fig}, {"Nodes": table})
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = set(zf.namelist())
        assert zf.read("figures/a.png").startswith(b"\x89PNG")
        assert "Not exported" not in zf.read("MANIFEST.txt").decode()
    assert {f"figures/{n}.{f}" for n in "ab" for f in ("png", "svg", "pdf", "html")} <= names
