"""The revsnn Streamlit dashboard: ``streamlit run dashboard/app.py`` (or ``make dashboard``).

- ``app.py``: the entry point; routes to the pages in ``views/`` with ``st.navigation``.
- ``charts.py``: chart builders, plain functions returning ``plotly.graph_objects.Figure``.
- ``data.py``: the shipped default tables, saved runs, and table reshaping for the charts.
- ``insight.py``: what a table says in words: each page's takeaway, the timing-spread warning,
  the glossary, and the tables as shown (units in the column names).
- ``state.py``: per-session tables, the process-wide measurement lock, widget option lists, the
  measure-and-show helper and its failure messages.
- ``export_ui.py``: download buttons (PNG, SVG, PDF, HTML, CSV) over :mod:`revsnn.export`.
- ``make_defaults.py``: regenerates the shipped tables in ``data/results/defaults/``.

Measurements and exports are library calls (:mod:`revsnn.analysis.measure`, :mod:`revsnn.bench`,
:mod:`revsnn.export`); the dashboard only collects input, shows progress and draws results.
"""
