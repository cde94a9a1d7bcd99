"""Download buttons for a chart and its table, over :mod:`revsnn.export`.

PNG, SVG and PDF are drawn by kaleido only when the button is clicked (deferred downloads), so a
page with many charts renders without waiting for a browser. Without a Chromium-based browser the
static buttons are replaced by a warning and HTML and CSV stay available. Every chart carries its
context (batch, neurons, image size, device, torch version: :func:`dashboard.charts.add_context`)
in its subtitle and metadata, and every CSV in columns; PNGs are drawn at the scale chosen in the
sidebar (:data:`PNG_SCALES`). A chart without data is not drawn and offers no downloads.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from revsnn import export

PNG_SCALES = {"1× (screen)": 1, "2× (slides)": 2, "3× (print)": 3, "4× (poster)": 4}
"""PNG scale menu: label -> kaleido ``scale`` (pixels per CSS pixel)."""
PNG_SCALE_KEY = "png_scale"
DEFAULT_PNG_SCALE = "2× (slides)"


@st.cache_data(ttl=60, show_spinner=False)
def static_status() -> tuple:
    """``(available, reason)`` of PNG/SVG/PDF export, re-checked at most once a minute."""
    return export.static_export_status()


def png_scale() -> int:
    """The PNG scale chosen in the sidebar (default 2×)."""
    return PNG_SCALES.get(st.session_state.get(PNG_SCALE_KEY, DEFAULT_PNG_SCALE), 2)


def png_scale_select(container=None) -> None:
    """The sidebar menu of the PNG scale; shared by every page."""
    (container or st).selectbox("PNG export scale", list(PNG_SCALES),
                                index=list(PNG_SCALES).index(DEFAULT_PNG_SCALE),
                                key=PNG_SCALE_KEY,
                                help="pixels per screen pixel of downloaded PNGs (SVG and PDF "
                                     "are vector formats)")


def _image(fig, fmt: str) -> bytes:
    return export.figure_to_bytes(fig, fmt, scale=png_scale() if fmt == "png" else None)


def figure_downloads(fig, name: str, key: str, df=None, context_df=None) -> None:
    """A row of download buttons for ``fig`` (PNG, SVG, PDF, HTML) and ``df`` (CSV, with the
    context columns of ``context_df``, default ``df``)."""
    slug = export.slugify(name)
    ok, reason = static_status()
    cols = st.columns(5)
    if ok:
        for col, fmt in zip(cols, export.STATIC_FORMATS):
            col.download_button(
                fmt.upper(), data=lambda fmt=fmt: _image(fig, fmt),
                file_name=f"{slug}.{fmt}", mime=export.MIME_TYPES[fmt], key=f"{key}_{fmt}",
                on_click="ignore", icon=":material/download:")
    cols[3].download_button(
        "HTML", data=lambda: export.figure_to_bytes(fig, "html"), file_name=f"{slug}.html",
        mime=export.MIME_TYPES["html"], key=f"{key}_html", on_click="ignore",
        icon=":material/download:", help="interactive chart; opens offline in any browser")
    if df is not None:
        table = export.with_context(df, charts.context(df if context_df is None else context_df))
        cols[4].download_button(
            "CSV", data=export.table_to_csv(table), file_name=f"{slug}.csv",
            mime=export.MIME_TYPES["csv"], key=f"{key}_csv", on_click="ignore",
            icon=":material/download:")
    if not ok:
        st.warning(f"PNG, SVG and PDF export is unavailable: {reason}.", icon="⚠️")


def chart(fig, name: str, key: str, df=None, context_df=None) -> None:
    """Draw ``fig`` with its context and its download buttons underneath; a figure without data
    is replaced by one line saying why (no empty axes, no downloads)."""
    if charts.is_empty(fig):
        st.info(f"{fig.layout.title.text or name}: {charts.empty_reason(fig)}.")
        return
    charts.add_context(fig, df if context_df is None else context_df)
    st.plotly_chart(fig, key=f"{key}_chart", width="stretch")
    figure_downloads(fig, name, key, df, context_df)
