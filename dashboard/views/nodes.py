"""Page 1: one spiking node, every memory strategy side by side (revsnn.analysis.measure)."""

import streamlit as st

from dashboard import charts, data, export_ui, insight, state
from revsnn.analysis import measure
from revsnn.kernels import BACKENDS

KIND = "nodes"

st.title("Spiking nodes: memory and backward time")
st.caption(
    "One node on input [T, batch, neurons]. **saved** = bytes autograd keeps for backward beyond "
    "the node's input and output (saved-tensor hooks; they do not see what checkpointing keeps, "
    "so compare **activations** for that mode); **activations** / **peak** = allocator-level "
    "tracking (MemTracker); times are medians with their interquartile range as error bars, "
    "modes timed round-robin in one run. Terms: see the glossary in the sidebar.")

modes_by_label = state.mode_options()

with st.sidebar:
    st.header("Measure now")
    labels = st.multiselect("Modes", list(modes_by_label),
                            default=state.default_labels(modes_by_label, "nodes"),
                            key="nodes_modes")
    t_text = st.text_input("T values", "4, 8, 16, 32", key="nodes_T",
                           help="time steps, separated by commas or spaces")
    b_text = st.text_input("Batch sizes", "16, 64", key="nodes_batch")
    c1, c2 = st.columns(2)
    neurons = c1.number_input("Neurons", min_value=1, max_value=1 << 22, value=1024, step=2,
                              key="nodes_neurons",
                              help="even: ReversibleLIF splits them into two groups")
    dtype = c2.selectbox("dtype", state.DTYPES, key="nodes_dtype")
    repeats = c1.number_input("Repeats", min_value=1, max_value=100, value=9, key="nodes_repeats",
                              help=f"timed runs per mode, round-robin; fewer than "
                                   f"{insight.MIN_REPEATS} barely estimate the spread")
    warmup = c2.number_input("Warm-up runs", min_value=0, max_value=20, value=2,
                             key="nodes_warmup")
    device_label, device = state.device_select("nodes_device")
    backend = st.selectbox("Backend", BACKENDS, key="nodes_backend",
                           help="what runs the reversible and binary nodes' loops over T: auto = "
                                "the Triton kernels on CUDA when installed, else PyTorch; the "
                                "table's backend column says what ran")
    go_measure = st.button("Measure now", type="primary", key="nodes_measure", width="stretch")

rows: list = []
if go_measure:
    try:
        if not labels:
            raise ValueError("Modes: choose at least one mode")
        modes = [modes_by_label[lab] for lab in labels]
        Ts = state.parse_ints(t_text, "T")
        batches = state.parse_ints(b_text, "batch")
        state.check_node_input(modes, int(neurons), dtype, device)
    except (ValueError, RuntimeError) as exc:
        st.error(f"Cannot measure: {exc}")
    else:
        state.measure_and_show(
            KIND, lambda on_row: measure.measure_nodes(
                modes, Ts=Ts, batches=batches, neurons=int(neurons), repeats=int(repeats),
                warmup=int(warmup), dtype=dtype, device=device, on_row=on_row,
                backends=(backend,)),
            total=len(modes) * len(Ts) * len(batches), where=device_label,
            describe=lambda r: f"{r['label']} T={r['T']} batch={r['batch']} ({r['status']})",
            columns=["label", "backend", "T", "batch", "saved_bytes", "bwd_ms", "status"])

df = state.shown_table(KIND, "No node table yet: use *Measure now* in the sidebar, or run "
                            "`python -m revsnn bench nodes --out data/results/defaults/nodes.csv`.")

c1, c2, c3, c4 = st.columns(4)
x = c1.radio("x axis", ["T", "batch"], horizontal=True, key="nodes_x")
mem_options, mem_default = state.memory_metrics(
    df, ["peak_bytes", "cuda_peak_bytes", "act_bytes", "saved_bytes"])
mem = c2.selectbox("Memory metric", mem_options, index=mem_default,
                   format_func=lambda m: charts.METRICS[m][0], key="nodes_mem",
                   help="peak: what the step really needs; saved: only what autograd's hooks "
                        "see (checkpointing keeps its inputs outside them, so it shows 0 B)")
tim = c3.selectbox("Time metric", ["bwd_ms", "step_ms", "fwd_ms"],
                   format_func=lambda m: charts.METRICS[m][0], key="nodes_time")
log_y = c4.checkbox("log axes", value=False, key="nodes_logy",
                    help="both axes logarithmic (a line proportional to T stays straight)")

state.takeaway(insight.nodes_takeaway(df, mem, tim))

left, right = st.columns(2)
with left:
    export_ui.chart(charts.node_metric_figure(df, mem, x=x, log_y=log_y),
                    f"nodes {mem} vs {x}", "nodes_mem_fig", df)
with right:
    export_ui.chart(charts.node_metric_figure(df, tim, x=x, log_y=log_y),
                    f"nodes {tim} vs {x}", "nodes_time_fig", df)
    state.spread_note(df, tim)

ratios = data.node_ratios(df)
if ratios.empty:
    st.info("Ratios need the standard node (SpikingJelly LIFNode or LIF (BPTT)) in the table.")
else:
    st.subheader(f"Against the standard node ({ratios['baseline'].iloc[0]})")
    left, right = st.columns(2)
    with left:
        export_ui.chart(charts.node_ratio_figure(ratios, "saved_ratio", x=x),
                        f"nodes saved ratio vs {x}", "nodes_ratio_saved", ratios, context_df=df)
    with right:
        export_ui.chart(charts.node_ratio_figure(ratios, "bwd_ratio", x=x),
                        f"nodes backward ratio vs {x}", "nodes_ratio_bwd", ratios, context_df=df)

state.table(df, "nodes_table")
