"""Page 5: every chart and table of this session for download, one zip of all, and saved runs."""

import streamlit as st

from dashboard import charts, data, export_ui, state
from revsnn import export

st.title("Results & export")

# ------------------------------------------------------------------ saved runs
st.subheader("Saved runs")
runs = data.list_runs()
for name, why in data.skipped_runs():
    st.warning(f"Skipped saved run {name}: it {why}.", icon="⚠️")
if not runs:
    st.info(f"No saved runs yet. Every *Measure now* saves its table as a timestamped CSV in "
            f"{data.runs_label()}.")
else:
    c1, c2, c3 = st.columns([3, 1, 1])
    chosen = c1.selectbox("Saved run", runs, format_func=data.describe_run, key="results_run")
    c2.write("")
    c3.write("")
    if c2.button("Load", key="results_load", width="stretch"):
        try:
            kind, df = data.load_run(chosen)
        except (ValueError, OSError) as exc:
            st.error(f"Cannot load {chosen}: {exc}")
        else:
            state.set_table(kind, df, f"saved run {chosen}")
            st.success(f"Loaded {chosen} ({len(df)} rows) into the {data.KINDS[kind]} page.")
    if c3.button("Shipped defaults", key="results_reset", width="stretch",
                 help="show the shipped tables again on every page"):
        state.reset_tables()
        st.success("Every page shows the shipped defaults again.")

# ------------------------------------------------------------------ export all
tables = state.all_tables()
figures = {}
for kind, (df, _) in tables.items():
    figures.update(charts.standard_figures(kind, df))

ok, reason = export_ui.static_status()
st.subheader("Export all")
if not ok:
    st.warning(f"PNG, SVG and PDF export is unavailable: {reason}. The zip holds HTML and CSV.",
               icon="⚠️")
formats = export.FIGURE_FORMATS if ok else ("html",)
what = (f"{len(figures)} charts as {', '.join(f.upper() for f in formats)}; {len(tables)} tables "
        f"as CSV")
# the zip is built on request, with progress (every chart in every format takes a while), and
# offered for download only while it matches this session's tables and PNG scale
signature = (tuple((k, t[1]) for k, t in tables.items()), formats, export_ui.png_scale())
if st.button(f"Prepare everything (.zip: {what})", key="results_prepare", type="primary",
             icon=":material/folder_zip:"):
    bar = st.progress(0.0, text="preparing the zip …")
    payload = export.export_all(
        figures, {data.KINDS[k]: t[0] for k, t in tables.items()}, formats=formats,
        scale=export_ui.png_scale(),
        contexts={data.KINDS[k]: charts.context(t[0]) for k, t in tables.items()},
        on_progress=lambda done, total, arc: bar.progress(done / total,
                                                          text=f"{done} / {total}: {arc}"))
    bar.empty()
    st.session_state["results_zip_payload"] = (signature, payload)
ready = st.session_state.get("results_zip_payload")
if ready is not None and ready[0] == signature:
    st.download_button(
        f"Download everything (.zip, {len(ready[1]) / 2**20:.1f} MiB: {what})", data=ready[1],
        file_name="revsnn-results.zip", mime=export.MIME_TYPES["zip"], key="results_zip",
        on_click="ignore", icon=":material/download:")
else:
    st.caption("Every chart in every format and every table, with a MANIFEST.txt that says what "
               "each was measured with; preparing takes a few seconds per chart.")

# ------------------------------------------------------------------ every chart
for kind, (df, source) in tables.items():
    st.subheader(data.KINDS[kind])
    st.caption(f"Source: {source}")
    for i, (name, fig) in enumerate(charts.standard_figures(kind, df).items()):
        with st.expander(name, expanded=i == 0):
            export_ui.chart(fig, name, f"results_{kind}_{i}", df)
