"""Page 3: the largest batch and the largest T each memory mode trains within a memory budget
(revsnn.bench.budget: the peak of one training step, parameters and gradients included)."""

import pandas as pd
import streamlit as st

from dashboard import charts, data, export_ui, insight, state
from revsnn.bench.report import human_bytes

KIND = "budget"
BUDGETS = [2 ** k for k in range(20, 41)]  # 1 MiB … 1 TiB

st.title("Max batch under a budget")
st.caption(
    "For each mode, the largest batch (at fixed T) and the largest T (at fixed batch) whose "
    "training step (forward, cross-entropy, backward; no optimizer state) peaks within the budget. "
    "Peak = torch.cuda.max_memory_allocated on CUDA, live tensor bytes on CPU; parameters and "
    "gradients count. The search measures batch 1 and 2, extrapolates the line, and confirms the "
    "boundary (fits at the maximum, not at maximum + 1).")

try:
    from revsnn.bench import budget
    from revsnn.models import MODELS
except ImportError as exc:
    budget, MODELS, missing = None, {}, str(exc)
else:
    missing = ""



def over_budget(df: pd.DataFrame) -> pd.DataFrame:
    """Searches with no result: failed, or over the budget even at batch 1 / T = 1."""
    bad = data.failed_rows(df)
    if "max_value" in df.columns:
        # a search that does not fit at 1 is an "oom" row with its peak at 1 (bench budget)
        zero = df["max_value"] == 0
        bad = pd.concat([bad[~bad.index.isin(df.index[zero])], df[zero]])
    return bad


def what_is_needed(bad: pd.DataFrame) -> str:
    """Per search without a result, what it needs: the peak measured at batch 1 (or T = 1) and
    the smallest budget on the slider that holds it; failures with their error."""
    parts, largest = [], 0.0
    for _, r in bad.iterrows():
        if r.get("status") != "ok" and r.get("max_value") != 0:
            parts.append(f"{r['label']} ({r['search']} search): {r['status']}: "
                         f"{r.get('error', '')}")
            continue
        unit = "batch 1" if r["search"] == "batch" else "T = 1"
        fixed = f"T = {r['T']:g}" if r["search"] == "batch" else f"batch {r['batch']:g}"
        need = r.get("peak_above_max")
        if pd.notna(need) and need > 0:
            largest = max(largest, float(need))
            parts.append(f"{r['label']} needs {human_bytes(need)} even at {unit} ({fixed})")
        else:
            parts.append(f"{r['label']} does not fit even at {unit} ({fixed})")
    text = "; ".join(parts)
    fits = [b for b in BUDGETS if b >= largest]
    if largest and fits:
        text += f". Raise the budget to at least {human_bytes(fits[0])}"
    return text


with st.sidebar:
    st.header("Measure now")
    arch_names = list(MODELS)
    arch = st.selectbox("Architecture", arch_names or ["(none)"],
                        index=arch_names.index("vgg11") if "vgg11" in arch_names else 0,
                        key="budget_arch", disabled=budget is None)
    arch = (state.user_model_input("budget") if budget is not None else None) or arch
    modes_by_label = state.mode_options("budget", arch) if budget is not None else {}
    labels = st.multiselect("Modes", list(modes_by_label),
                            default=state.default_labels(modes_by_label, "budget", arch),
                            key="budget_modes", disabled=budget is None,
                            help="the presets that build the architecture")
    budget_bytes = st.select_slider("Memory budget", BUDGETS, value=2 ** 28,
                                    format_func=human_bytes, key="budget_bytes")
    searches = st.multiselect("Find the largest", ["batch", "T"], default=["batch", "T"],
                              key="budget_searches")
    c1, c2 = st.columns(2)
    T = c1.number_input("T (batch search)", min_value=0, max_value=4096, value=4,
                        key="budget_T")
    batch = c2.number_input("Batch (T search)", min_value=0, max_value=65536, value=4,
                            key="budget_batch")
    image_size = c1.number_input("Image size", min_value=1, max_value=512, value=32,
                                 key="budget_image_size")
    dtype = c2.selectbox("dtype", state.DTYPES, key="budget_dtype")
    device_label, device = state.device_select("budget_device")
    go_measure = st.button("Measure now", type="primary", key="budget_measure",
                           disabled=budget is None, width="stretch")

if missing:
    st.info(f"Searching the largest batch / T needs revsnn.bench.budget ({missing}). The shipped "
            "table, if any, is shown below; from a shell: `python -m revsnn bench budget --help`.")

if go_measure:
    try:
        if not labels:
            raise ValueError("Modes: choose at least one mode")
        if not searches:
            raise ValueError("Find the largest: choose batch, T or both")
        if "batch" in searches and int(T) < 1:
            raise ValueError(f"T must be >= 1 for the batch search, got {int(T)}")
        if "T" in searches and int(batch) < 1:
            raise ValueError(f"batch must be >= 1 for the T search, got {int(batch)}")
    except ValueError as exc:
        st.error(f"Cannot measure: {exc}")
    else:
        modes = [modes_by_label[lab] for lab in labels]
        state.measure_and_show(
            KIND, lambda on_row: budget.budget_search(
                arch, modes, int(budget_bytes), T=int(T) or 1, batch=int(batch) or 1,
                searches=tuple(searches), image_size=int(image_size), dtype=dtype,
                device=device, on_row=on_row),
            total=len(modes) * len(searches), where=device_label, frame=pd.DataFrame,
            what=f"searches within {human_bytes(int(budget_bytes))}",
            unusable=over_budget, explain=what_is_needed,
            describe=lambda r: f"largest {r['search']} of {r['label']} = {r['max_value']}",
            columns=["search", "label", "max_value", "status"])

df = state.shown_table(KIND, "No budget table yet" + (
    "" if missing else ": choose a budget and press *Measure now* in the sidebar") + ".")

# the searches of the shown table without a result: one message saying what they need
bad = over_budget(df)
if len(bad) and not go_measure:          # a measurement just made has said so already
    st.warning(f"{len(bad)} of {len(df)} searches have no result: {what_is_needed(bad)}.")

state.takeaway(insight.budget_takeaway(df))
figs = charts.standard_figures(KIND, df)
for i, (name, fig) in enumerate(figs.items()):
    export_ui.chart(fig, name, f"budget_fig_{i}", df)

state.table(df, "budget_table")
