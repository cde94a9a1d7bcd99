"""Page 2: one full training step of a spiking VGG/ResNet per memory mode (revsnn.bench.network).

Configurations (architecture × T × batch) are measured one after another; each finished one is
added to the table at once. *Cancel* sets a session flag that the loop checks between
configurations (pressing it also reruns the page, which stops the loop at its next progress
update); the rows measured so far are kept and saved either way.
"""

import streamlit as st

from dashboard import charts, data, export_ui, insight, state
from revsnn.analysis import measure

KIND = "network"
PROGRESS = "network_in_progress"  # {"done": k, "total": n, "device": label} while a run is open
ROWS = "network_rows"

st.title("Architectures: one training step per memory mode")
st.caption(
    "Forward, cross-entropy loss and backward of a whole spiking network on images "
    "[batch, 3, size, size] fed over T steps; every mode is timed side by side within each "
    "configuration. **peak** = allocator-level peak over the step (parameters and gradients "
    "included); on CUDA also torch.cuda.max_memory_allocated. Reversible modes fuse each "
    "BatchNorm into the node that follows it. Times are medians of modes timed round-robin, with "
    "their interquartile range as error bars.")

try:
    from revsnn.bench.network import network_sweep
    from revsnn.models import MODELS
except ImportError as exc:  # the network benchmark is optional while it is being written
    network_sweep, MODELS, missing = None, {}, str(exc)
else:
    missing = ""


def _request_cancel():
    st.session_state["network_cancel"] = True


def _finish(how: str, level=st.warning) -> bool:
    """Close an open run and say how it ended (``how``: "Measured", "Cancelled", ...) in one
    message. Rows with a result are saved and shown from now on; when none has one, nothing is
    saved and the page keeps its last good table. Returns whether a run was closed."""
    info = st.session_state.pop(PROGRESS, None)
    rows = st.session_state.pop(ROWS, [])
    if info is None:
        return False
    done = f"{info['done']} of {info['total']} configurations"
    kept = state.get_table(KIND)[1]
    if not rows:
        level(f"{how} before any configuration finished; nothing to keep. Still showing: {kept}.")
        return True
    df = measure.to_frame(rows)
    bad = data.failed_rows(df)
    if len(bad) == len(df):
        st.error(f"{how} {done if how == 'Measured' else 'after ' + done}, but none of the "
                 f"{len(df)} rows gave a result: {state.failure_summary(bad)}. Nothing was "
                 f"saved; still showing: {kept}.")
        return True
    path = data.save_run(KIND, df)
    state.set_table(KIND, df, f"measured on {info['device']} ({done}), saved as {path.name}")
    text = (f"{how} {done if how == 'Measured' else 'after ' + done}; {len(rows)} rows saved as "
            f"{path.name}")
    if len(bad):
        st.warning(f"{text}; {len(bad)} of them gave no result: {state.failure_summary(bad)} "
                   "(listed in the table).")
    else:
        level(text + ".")
    return True


with st.sidebar:
    st.header("Measure now")
    arch_names = list(MODELS)
    archs = st.multiselect("Architectures", arch_names, default=arch_names[:1],
                           key="network_archs", disabled=network_sweep is None)
    user_model = state.user_model_input("network") if network_sweep else None
    archs = archs + [user_model] if user_model else archs
    modes_by_label = state.mode_options("network", archs) if network_sweep else {}
    labels = st.multiselect("Modes", list(modes_by_label),
                            default=state.default_labels(modes_by_label, "network", archs),
                            key="network_modes", disabled=network_sweep is None,
                            help="the presets that build at least one chosen architecture; each "
                                 "architecture is measured with those of them that build it")
    try:   # checked against the strategy registry as the choice is made, before measuring
        choice_note = state.check_choices([modes_by_label[lab] for lab in labels], archs)
        choice_error = ""
    except ValueError as exc:
        choice_note, choice_error = "", str(exc)
    if choice_error:
        st.error(choice_error)
    elif choice_note:
        st.warning(choice_note)
    c1, c2 = st.columns(2)
    image_size = c1.number_input("Image size", min_value=1, max_value=512, value=32,
                                 key="network_image_size", help="height = width in pixels")
    num_classes = c2.number_input("Classes", min_value=1, max_value=1000, value=10,
                                  key="network_classes")
    t_text = c1.text_input("T values", "4", key="network_T")
    b_text = c2.text_input("Batch sizes", "8", key="network_batch")
    dtype = c1.selectbox("dtype", state.DTYPES, key="network_dtype")
    repeats = c2.number_input("Repeats", min_value=1, max_value=50, value=5,
                              key="network_repeats",
                              help=f"timed steps per mode, round-robin; fewer than "
                                   f"{insight.MIN_REPEATS} barely estimate the spread")
    warmup = c1.number_input("Warm-up runs", min_value=0, max_value=10, value=1,
                             key="network_warmup")
    device_label, device = state.device_select("network_device")
    c1, c2 = st.columns(2)
    go_measure = c1.button("Measure now", type="primary", key="network_measure",
                           disabled=network_sweep is None, width="stretch")
    c2.button("Cancel", key="network_cancel_button", on_click=_request_cancel, width="stretch",
              help="stop after the configuration being measured")

if missing:
    st.info(f"Live measurement of whole networks needs revsnn.bench.network ({missing}). "
            "The shipped table, if any, is shown below; to measure from a shell: "
            "`python -m revsnn bench network --help`.")

# A run that a rerun interrupted (Cancel, or any widget change) is closed here.
just_finished = False
if PROGRESS in st.session_state:
    cancelled = st.session_state.pop("network_cancel", False)
    just_finished = _finish("Cancelled" if cancelled else "Stopped (the page was rerun)")

if go_measure:
    try:
        if not archs:
            raise ValueError("Architectures: choose at least one architecture")
        if not labels:
            raise ValueError("Modes: choose at least one mode")
        modes = [modes_by_label[lab] for lab in labels]
        state.check_choices(modes, archs)
        Ts = state.parse_ints(t_text, "T")
        batches = state.parse_ints(b_text, "batch")
    except ValueError as exc:
        st.error(f"Cannot measure: {exc}")
    else:
        total = len(archs) * len(Ts) * len(batches)
        st.session_state["network_cancel"] = False
        st.session_state[ROWS] = []
        st.session_state[PROGRESS] = {"done": 0, "total": total, "device": device_label}
        with state.exclusive_measurement():
            bar = st.progress(0.0, text=f"{total} configurations to measure …")
            live = st.empty()

            def on_rows(new, done, total):
                st.session_state[ROWS] = st.session_state[ROWS] + new
                st.session_state[PROGRESS]["done"] = done
                r = new[0] if new else {}
                bar.progress(done / total, text=f"{done} / {total} done: {r.get('arch')} "
                                                f"T={r.get('T')} batch={r.get('batch')}")
                live.dataframe(measure.to_frame(st.session_state[ROWS]), hide_index=True)

            network_sweep(archs, modes, Ts, batches, image_size=int(image_size),
                          num_classes=int(num_classes), dtype=dtype,
                          device=device, repeats=int(repeats),
                          warmup=int(warmup), on_rows=on_rows,
                          stop=lambda: st.session_state.get("network_cancel", False))
            bar.progress(1.0, text="done")
            live.empty()
        if st.session_state.get("network_cancel"):
            just_finished = _finish("Cancelled")
        else:
            just_finished = _finish("Measured", level=st.success)
        st.session_state["network_cancel"] = False

df = state.shown_table(KIND, "No network table yet" + (
    "" if missing else ": choose architectures and press *Measure now* in the sidebar") + ".")

bad = data.failed_rows(df)
if len(bad) and not just_finished:        # a run that just ended has said so already
    st.warning(f"{len(bad)} of {len(df)} rows of this table did not measure: "
               f"{state.failure_summary(bad)} (listed in the table).")

c1, c2 = st.columns(2)
# metrics the table has values for (a table measured before a column existed lacks it; CUDA peak
# only where a GPU measured it, and then the default)
metrics, _ = state.memory_metrics(df, [
    "act_peak_bytes", "cuda_peak_bytes", "act_peak_ratio", "predicted_act_peak_bytes",
    "peak_bytes", "act_bytes", "saved_bytes", "predicted_saved_bytes", "step_ms", "bwd_ms",
    "fwd_ms", "peak_ratio", "act_ratio", "step_ratio", "step_vs_bptt"])
metrics = [m for m in metrics if m in df.columns and df[m].notna().any()] or ["step_ms"]
default = metrics.index("cuda_peak_bytes") if "cuda_peak_bytes" in metrics else 0
metric = c1.selectbox("Metric", metrics, index=default,
                      format_func=lambda m: charts.METRICS[m][0], key="network_metric")
log_y = c2.checkbox("log y", value=False, key="network_logy")
state.takeaway(insight.network_takeaway(df, metric))
export_ui.chart(charts.network_figure(df, metric, log_y=log_y), f"network {metric}",
                "network_fig", df)
if metric.endswith("_ms"):
    state.spread_note(df, metric)

state.table(df, "network_table")
