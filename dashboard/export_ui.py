"""Download buttons for a chart and its table, over :mod:`revsnn.export`.

PNG, SVG and PDF are drawn by kaleido only when the button is clicked (deferred downloads), so a
page with many charts renders without waiting for a browser. Without a Chromium-based browser the
static buttons are replaced by a warning and HTML and CSV stay available.
"""

from __future__ import annotations

import streamlit as st

from revsnn import export


@st.cache_data(ttl=60, show_spinner=False)
def static_status() -> tuple:
    """``(available, reason)`` of PNG/SVG/PDF export, re-checked at most once a minute."""
    return export.static_export_status()


def figure_downloads(fig, name: str, key: str, df=None) -> None:
    """A row of download buttons for ``fig`` (PNG, SVG, PDF, HTML) and ``df`` (CSV)."""
    slug = export.slugify(name)
    ok, reason = static_status()
    cols = st.columns(5)
    if ok:
        for col, fmt in zip(cols, export.STATIC_FORMATS):
            col.download_button(
                fmt.upper(), data=lambda fmt=fmt: export.figure_to_bytes(fig, fmt),
                file_name=f"{slug}.{fmt}", mime=export.MIME_TYPES[fmt], key=f"{key}_{fmt}",
                on_click="ignore", icon=":material/download:")
    cols[3].download_button(
        "HTML", data=lambda: export.figure_to_bytes(fig, "html"), file_name=f"{slug}.html",
        mime=export.MIME_TYPES["html"], key=f"{key}_html", on_click="ignore",
        icon=":material/download:", help="interactive chart; opens offline in any browser")
    if df is not None:
        cols[4].download_button(
            "CSV", data=export.table_to_csv(df), file_name=f"{slug}.csv",
            mime=export.MIME_TYPES["csv"], key=f"{key}_csv", on_click="ignore",
            icon=":material/download:")
    if not ok:
        st.warning(f"PNG, SVG and PDF export is unavailable: {reason}.", icon="⚠️")


def chart(fig, name: str, key: str, df=None) -> None:
    """Draw ``fig`` and its download buttons underneath."""
    st.plotly_chart(fig, key=f"{key}_chart", width="stretch")
    figure_downloads(fig, name, key, df)
