"""Page 4: does the reversible node reconstruct exactly? Drift and flipped spikes vs T and dtype."""

import pandas as pd
import streamlit as st

from dashboard import charts, export_ui, insight, state
from revsnn.bench.drift import drift_rows

KIND = "drift"

st.title("Reconstruction drift")
st.caption(
    "ReversibleLIF is run forward over T steps and inverted back from its output and final "
    "membranes (revsnn.check_invertible); the error of the reconstructed initial state and the "
    "spikes whose recomputed threshold decision disagrees with the forward are counted. For "
    "contrast, the naive coupling V̂ = αV + H(1 − S) with α = 1, inverted by division: its "
    "membrane grows without bound and its reconstruction drifts (flipped spikes are not counted "
    "for it).")

with st.sidebar:
    st.header("Measure now")
    t_text = st.text_input("T values", "4, 8, 16, 32, 64, 128, 256", key="drift_T")
    dtypes = st.multiselect("dtypes", list(state.DTYPES), default=list(state.DTYPES),
                            key="drift_dtypes")
    c1, c2 = st.columns(2)
    batch = c1.number_input("Batch", min_value=0, max_value=4096, value=16, key="drift_batch")
    channels = c2.number_input("Channels", min_value=1, max_value=1 << 16, value=256, step=2,
                               key="drift_channels", help="even: split into two groups")
    sigma = c1.number_input("Input σ", min_value=0.01, max_value=100.0, value=1.5,
                            key="drift_sigma")
    seed = c2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, key="drift_seed")
    go_measure = st.button("Measure now", type="primary", key="drift_measure", width="stretch")

if go_measure:
    try:
        if not dtypes:
            raise ValueError("dtypes: choose at least one dtype")
        Ts = state.parse_ints(t_text, "T", maximum=100_000)
        if int(batch) < 1:
            raise ValueError(f"batch must be >= 1, got {int(batch)}")
        state.check_node_input(["fused"], int(channels), dtypes[0], "cpu")
    except (ValueError, RuntimeError) as exc:
        st.error(f"Cannot measure: {exc}")
    else:
        state.measure_and_show(
            KIND, lambda on_row: drift_rows(Ts, dtypes, sigma=float(sigma), batch=int(batch),
                                            channels=int(channels), seed=int(seed)),
            total=2 * len(Ts) * len(dtypes), where="cpu", frame=pd.DataFrame, what="rows",
            describe=lambda r: "", columns=[])

df = state.shown_table(KIND, "No drift table yet: press *Measure now* in the sidebar, or run "
                            "`python -m revsnn drift --out data/results/defaults/drift.csv`.")

state.takeaway(insight.drift_takeaway(df))

rev = df[df["node"] == "ReversibleLIF"]
if len(rev):
    exact = int(rev["exact"].astype(str).str.lower().eq("true").sum())
    st.metric("ReversibleLIF configurations reconstructed bit-exactly", f"{exact} / {len(rev)}")

left, right = st.columns(2)
with left:
    export_ui.chart(charts.drift_error_figure(df), "drift reconstruction error", "drift_err", df)
with right:
    export_ui.chart(charts.drift_membrane_figure(df), "drift membrane magnitude", "drift_mem",
                    df)
export_ui.chart(charts.drift_flips_figure(df), "drift flipped spikes", "drift_flips", df)

state.table(df, "drift_table")
