"""Compare runs overlaid (share link: /compare?compare=ID1,ID2,... and the view: x, objectives,
metric, show=band). Runs that differ only by seed are one curve with a band (app/groups.py)."""

import pandas as pd
import streamlit as st

from app import charts, plot, share, store
from app.describe import SINGLE_GROUP, config_differences, run_label, used_config
from app.escape import md
from app.groups import compare_series, objective_of, run_curves, seed_groups
from app.nav import PAGES
from app.tables import html_block, summary_words
from app.timing import time_text
from app.view_state import View, merged_query, read_view, share_link
from backend.summary import SINGLE_AVG

OBJECTIVE_NAMES = {"single": "single proxy (members' average)", "mean": "mean", "wco": "WCO",
                   "uwo": "UWO", "dpo": "DPO", "ipo": "IPO", "slic": "SLiC"}  # fmt: skip

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
        text = f"{e['id']}: {now['stage'] or ''} · {time_text(now)}"
        st.progress(float(now["progress"] or 0), text=md(text))


if waiting:
    wait_for_runs()
if not done:
    st.info("Pick finished runs above, or open a link like `?compare=ID1,ID2`.")
    st.stop()

# The view on screen lives in the URL (app/view_state.py): x, curves shown, metric, seed bands.
query = st.query_params.to_dict()
view = read_view(query)
for problem in view.problems:
    st.warning(f"The link's {md(problem)}; the default is shown.", icon=":material/link_off:")
groups = seed_groups(done)
has_groups = any(len(g) > 1 for g in groups)
diff = config_differences([e["config"] for e in done])
all_curves = [c for e in done for c in run_curves(e)]
present = list(dict.fromkeys(objective_of(c) for c in all_curves))
# Few lines by default: the ensemble objectives and any PPO or DPO run's one curve; a best-of-n
# run's single members (one averaged curve here) are hidden at first unless a PPO run is single.
rl_single = any(c["objective"] == "single" and c.get("method") != "bon" for c in all_curves)
default_objectives = [o for o in present if o != "single" or rl_single] or present
seed_state = {
    "compare_x": "√KL" if view.x == "sqrt_kl" else "KL",
    "compare_metric": view.metric or "gold",
    "compare_objectives": [o for o in (view.objectives or default_objectives) if o in present]
    or default_objectives,
    "compare_band": has_groups if view.show is None else "band" in view.show,
}
if st.session_state.get("compare_seeded") != query.get("compare"):  # a new link: its view
    st.session_state.update(seed_state, compare_seeded=query.get("compare"))
kept = [o for o in st.session_state.get("compare_objectives", []) if o in present]
st.session_state["compare_objectives"] = kept or default_objectives  # runs may have changed
c1, c2, c3, c4 = st.columns([1, 1, 3, 1.4])
x = c1.radio("x axis", ["KL", "√KL"], horizontal=True, key="compare_x")
metric = c2.radio("metric", ["gold", "proxy"], horizontal=True, key="compare_metric")
shown = c3.multiselect(
    "curves", present, key="compare_objectives", format_func=OBJECTIVE_NAMES.get,
    help="By objective (direct alignment: by loss); the same one in every run.",
)  # fmt: skip
band = c4.toggle(
    "seeds as one band",
    key="compare_band",
    disabled=not has_groups,
    help="Runs that differ only by their seed as one curve (the seeds' mean) with a shaded "
    "band from their lowest to their highest value; off: every run on its own.",
)
label_diff = [k for k in diff if k != "seed"] if band else diff
labels = {e["id"]: run_label(e, label_diff) for e in done}
if not band and len(set(labels.values())) < len(labels):  # same name twice: add the ids
    labels = {i: f"{lab} ({i})" for i, lab in labels.items()}
series = compare_series(done, labels, set(shown), band and has_groups)
fig = charts.compare_figure(series, "kl" if x == "KL" else "sqrt_kl", metric)
plot.show(fig, key="compare_chart")
st.caption(
    "Colour = run (a single run or seed group: the objective), dash = objective (mean solid, "
    "WCO dashed, UWO dotted, single dash-dot), "
    "marker = method (best-of-n circle, PPO square, DPO diamond)"
    + (", shaded = the seeds' range around their mean" if band and has_groups else "")
    + ". Every method's KL is in nats from the same initial policy (best-of-n: log n − (n − 1)/n;"
    " PPO and DPO: measured on their own samples), so best-of-n, PPO and DPO runs of one world "
    "share this axis."
)
on_screen = View(
    objectives=tuple(shown) if list(shown) != default_objectives and shown else None,
    x="sqrt_kl" if x == "√KL" else None,
    metric="proxy" if metric == "proxy" else None,
    show=None if band == has_groups else frozenset({"band"} if band else ()),
)
link_query = merged_query({"compare": ",".join(e["id"] for e in done)}, on_screen)
if st.query_params.to_dict() != merged_query(query, on_screen):
    st.query_params.from_dict(merged_query(query, on_screen))
share.box(share_link(store.app_root(), PAGES["compare"].url_path, link_query), key="share")
st.caption(
    "Share link of this view (runs, axis, curves, metric, bands): Copy puts it on the clipboard."
)

if diff:
    st.markdown("**What differs**")
    unique = len(set(labels.values())) == len(labels)
    flats = {
        labels[e["id"]] if unique else f"{labels[e['id']]} ({e['id']})": used_config(e["config"])
        for e in done
    }
    differs = pd.DataFrame({run: {k: str(f.get(k, "–")) for k in diff} for run, f in flats.items()})
    st.html(html_block(differs.rename_axis("setting"), wide=True))
st.markdown(
    "**Headline numbers** (per run and curve; gold and proxy in std units of each run's initial "
    "policy; *peak gain lost by the end*: the share of a curve's gain up to its peak that it "
    "loses again by its last point)"
)
tables = []
for e in done:
    kinds = {c["label"]: objective_of(c) for c in e["result"]["curves"]}
    summary = {
        curve: s
        for curve, s in (e["result"].get("summary") or {}).items()
        if (kind := "single" if curve == SINGLE_AVG else kinds.get(curve)) in shown
        and not (kind == "single" and curve != SINGLE_AVG)
    }
    words = summary_words(summary, SINGLE_GROUP).reset_index()
    words.insert(0, "seed", e["config"].get("seed"))
    words.insert(0, "run", labels[e["id"]])
    tables.append(words)
if any(not t.empty for t in tables):
    lost = ("peak gain lost by the end (%)",)
    st.html(html_block(pd.concat(tables, ignore_index=True), percent=lost))
