"""revsnn dashboard: ``streamlit run dashboard/app.py`` (or ``make dashboard``).

The entry point only sets up the page and routes to the pages in ``views/``; each page opens with
the shipped tables in ``data/results/defaults/`` and can measure live with the library.
"""

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path; the pages import `dashboard.*`.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

st.set_page_config(page_title="revsnn dashboard", page_icon="⚡", layout="wide")

PAGES = [
    st.Page("views/nodes.py", title="Nodes", icon=":material/memory:", default=True),
    st.Page("views/architectures.py", title="Architectures", icon=":material/account_tree:"),
    st.Page("views/budget.py", title="Max batch under a budget", icon=":material/savings:"),
    st.Page("views/drift.py", title="Reconstruction drift", icon=":material/replay:"),
    st.Page("views/results.py", title="Results & export", icon=":material/download:"),
]

from dashboard import export_ui, insight  # noqa: E402 - after the sys.path line above

with st.sidebar:
    st.markdown("**revsnn**: reversible spiking nodes that keep no per-step activations for "
                "backward. Every page opens with shipped measurements; *Measure now* reruns "
                "them here.")
    with st.expander("Glossary", icon=":material/menu_book:"):
        st.markdown("\n".join(f"- **{term}**: {text}" for term, text in insight.GLOSSARY.items()))
    export_ui.png_scale_select()

st.navigation(PAGES).run()
