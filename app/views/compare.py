"""Compare runs overlaid (share link: the app's root address + ?compare=ID1,ID2,...)."""

import pandas as pd
import streamlit as st

from app import charts, store
from app.describe import config_differences, run_label, used_config
from app.escape import md
from backend.summary import SINGLE_AVG

POLL_S = 2.0
MAX_RUNS = 20  # a link with more is cut here (each run is read from the database)

st.title("Compare runs")
ids, bad = store.parse_ids(st.query_params.get("compare"))
if len(ids) > MAX_RUNS:
    st.warning(f"The link names {len(ids)} runs; the first {MAX_RUNS} are shown.")
    ids = ids[:MAX_RUNS]
bad = bad[:5]  # a few are enough to say the link is broken
for piece in bad:
    st.warning(
        f"“{md(piece[:40])}” in the link is not a run id (ids are 12 characters of a–z and "
        "2–9); it was left out.",
        icon=":material/link_off:",
    )
exps = {i: store.get_experiment(i) for i in ids}
for i, exp in exps.items():
    if exp is None:
        st.warning(
            f"There is no run {i} here (deleted, or the link points to another server).",
            icon=":material/link_off:",
        )
found = [e for e in exps.values() if e is not None]
done = [e for e in found if e["status"] == "done" and e["result"] and e["result"].get("curves")]
waiting = [e for e in found if e["status"] in store.ACTIVE]
for e in found:
    if e not in done and e not in waiting:
        st.info(f"{e['id']} is {e['status']}: it has no curves to show.")


def set_ids() -> None:
    picked = st.session_state["compare_pick"]
    st.query_params["compare"] = ",".join(picked)


choices = {r["id"]: r for r in store.list_experiments() if r["status"] == "done"}
for e in done:
    choices.setdefault(e["id"], e)
st.multiselect(
    "Runs",
    list(choices),
    default=[e["id"] for e in done],
    format_func=lambda i: f"{i} · {choices[i]['name'] or ''}",
    key="compare_pick",
    on_change=set_ids,
    help="The link below follows your choice.",
)


@st.fragment(run_every=POLL_S if waiting else None)
def wait_for_runs() -> None:
    for e in waiting:
        now = store.get_experiment(e["id"])
        if now is None or now["status"] != e["status"]:
            st.rerun()
        st.progress(float(now["progress"] or 0), text=f"{e['id']}: {now['stage'] or ''}")


if waiting:
    wait_for_runs()
if not done:
    st.info("Pick finished runs above, or open a link like `?compare=ID1,ID2`.")
    st.stop()

st.code(store.compare_link([e["id"] for e in done]), language=None)
diff = config_differences([e["config"] for e in done])
labels = {e["id"]: run_label(e, diff) for e in done}
if len(set(labels.values())) < len(labels):  # same name twice: add the ids
    labels = {i: f"{lab} ({i})" for i, lab in labels.items()}

all_curves = [c for e in done for c in e["result"]["curves"]]
curve_labels = list(dict.fromkeys(c["label"] for c in all_curves))
# Best-of-n's single members are many and hidden at first; a PPO or DPO run is its one curve.
single_labels = {
    c["label"] for c in all_curves if c["objective"] == "single" and c["method"] == "bon"
}
ensemble = [lab for lab in curve_labels if lab not in single_labels]
c1, c2, c3 = st.columns([1, 1, 3])
x = c1.radio("x axis", ["KL", "√KL"], horizontal=True, key="compare_x")
metric = c2.radio("metric", ["gold", "proxy"], horizontal=True, key="compare_metric")
shown = c3.multiselect(
    "curves", curve_labels, default=ensemble or curve_labels, key="compare_curves"
)
series = [(labels[e["id"]], c) for e in done for c in e["result"]["curves"] if c["label"] in shown]
fig = charts.compare_figure(series, "kl" if x == "KL" else "sqrt_kl", metric)
st.plotly_chart(fig, key="compare_chart", config={"displaylogo": False})
st.caption(
    "Colour = run, dash = objective (mean solid, WCO dashed, UWO dotted), marker = method "
    "(best-of-n circle, PPO square, DPO diamond). Every method's KL is in nats from the same "
    "initial policy (best-of-n: log n − (n − 1)/n; PPO and DPO: measured on their own samples), "
    "so best-of-n, PPO and DPO runs of one world share this axis."
)

if diff:
    st.markdown("**What differs**")
    flats = {labels[e["id"]]: used_config(e["config"]) for e in done}
    st.dataframe(
        pd.DataFrame({run: {k: str(f.get(k, "–")) for k in diff} for run, f in flats.items()}),
        width="stretch",
    )
st.markdown("**Headline numbers** (per run and curve)")
rows = []
singles_shown = any(lab in single_labels for lab in shown)
for e in done:
    for curve, s in (e["result"].get("summary") or {}).items():
        if curve in shown or (curve == SINGLE_AVG and singles_shown):
            rows.append({"run": labels[e["id"]], "curve": curve, **s})
st.dataframe(pd.DataFrame(rows).round(3), width="stretch", hide_index=True)
