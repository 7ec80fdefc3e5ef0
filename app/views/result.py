"""Result of one run (share link: the app's root address + ?run=ID). Updates itself while the run
is queued or running."""

import streamlit as st

from app import access, share, store
from app.describe import config_summary
from app.escape import md
from app.nav import PAGES
from app.result_panel import render_result
from app.timing import time_text
from app.view_state import View, merged_query, read_view, share_link

POLL_S = 1.5


def not_found(message: str) -> None:
    st.title("Result")
    st.warning(message, icon=":material/link_off:")
    st.page_link(PAGES["runs"].file, label="See every run", icon=":material/list:")
    st.stop()


def pick_run() -> None:
    """Opened without ?run=: choose one of the runs."""
    st.title("Result")
    rows = store.list_experiments()
    if not rows:
        st.info(
            "No experiments yet: start one on the New experiment page, or see the example "
            "on the Learn page."
        )
        st.stop()
    by_id = {r["id"]: r for r in rows}
    eid = st.selectbox(
        "Open a run",
        list(by_id),
        index=None,
        format_func=lambda i: f"{i} · {by_id[i]['status']} · {by_id[i]['name'] or ''}",
        key="result_pick",
    )
    if eid:
        st.query_params["run"] = eid
        st.rerun()
    st.stop()


def resubmit(exp: dict) -> None:
    from backend.config import ExperimentConfig

    eid = store.submit(ExperimentConfig.from_dict(exp["config"]), name=exp["name"])
    st.switch_page(PAGES["result"].file, query_params={"run": eid})


raw = st.query_params.get("run")
if raw is None:
    pick_run()
eid = raw.strip()
if not eid:
    not_found("This link has no run id: a share link ends in `?run=` and a 12-character id.")
if not store.is_valid_id(eid):
    not_found(
        f"“{md(eid[:40])}” is not a run id. Ids are 12 characters of a–z and 2–9 (e.g. "
        "`k3v9x2mqp7ab`); the link may have been cut short or mistyped."
    )
exp = store.get_experiment(eid)
if exp is None:
    not_found(
        f"There is no run {eid} here. It may have been deleted, or the link points to "
        "another server."
    )

title = exp["name"] or f"Run {eid}"
st.title(md(title))
status = exp["status"]
SHARE = "Share link of this view (run, λ, members, curves, axis): Copy puts it on the clipboard."


def share_box():
    """The box of the share link (filled by show_view once the view on screen is known)."""
    box = st.empty()
    st.caption(SHARE)
    return box


def show_view(view: View | None, box) -> None:
    """The address bar and the share box hold the view on screen (app/view_state.py)."""
    query = merged_query(st.query_params.to_dict(), view or View())
    if query != st.query_params.to_dict():
        st.query_params.from_dict(query)
    with box:
        share.box(share_link(store.app_root(), PAGES["result"].url_path, query), key="share")


finished = status not in (*store.ACTIVE, "failed", "cancelled") and exp["result"] is not None
if not finished:
    show_view(None, share_box())


@st.fragment(run_every=POLL_S if status in store.ACTIVE else None)
def progress() -> None:
    now = store.get_experiment(eid)
    if now is None or now["status"] != status:
        st.rerun()  # finished (or deleted): redraw the whole page once
    frac = float(now["progress"] or 0.0)
    st.progress(frac, text=md(f"{now['status']}: {now['stage'] or ''} ({frac:.0%})"))
    if now["status"] == "running":  # elapsed, and the time left at the pace so far
        st.caption(
            f"**{time_text(now)}** (estimated from the progress so far; the bar counts each "
            "stage by its expected time, and stages the cache already holds go by in moments)"
        )
    if now["status"] == "queued":
        waiting = store.waiting_for(eid)  # which workers it needs, and whether any is up
        if waiting:
            st.markdown(f"**Waiting.** {md(waiting)}")
    if now.get("cancel_requested"):
        st.caption("Cancel requested: it stops at the next stage boundary.")
    elif not access.can_change():
        access.read_only_note("Cancelling")
    elif st.button("Cancel this run", key="result_cancel"):
        store.cancel(eid)
        st.rerun(scope="fragment")


if status in store.ACTIVE:
    st.caption(md(config_summary(exp["config"])))
    st.info(
        "This page updates itself while the run is going; you can also close it and come back "
        "with the share link. A queued run waits for a worker that can run it (a run on device "
        "cuda for a GPU worker); the line under the bar says which, and whether one is up.",
        icon=":material/hourglass_top:",
    )
    progress()
elif status in ("failed", "cancelled"):
    st.caption(md(config_summary(exp["config"])))
    if status == "failed":
        first = (exp["error"] or "").strip().splitlines()
        st.error(
            md(f"This run failed (at: {exp['stage'] or 'unknown stage'}). ")
            + (md(first[-1]) if first else "")
        )
        if not access.shared():  # a visitor gets the last line, not the traceback and its paths
            with st.expander("Error details"):
                st.code(exp["error"] or "no error text", language=None)
    else:
        st.warning(md(f"This run was cancelled ({exp['stage'] or 'before it finished'})."))
    if not access.can_change():
        access.read_only_note("Submitting it again")
    elif st.button("Submit it again", key="result_resubmit"):
        resubmit(exp)
elif exp["result"] is None:
    st.warning("This run is marked done but its result is missing.")
else:
    arrays, missing = (
        store.score_matrix(eid, exp["result"]) if exp["result"].get("curves") else (None, None)
    )
    if missing:
        st.warning(
            f"The score matrix of this run {missing}. The curves below are the stored ones; the "
            "λ slider, the member picker and the answer explorer need the matrix.",
            icon=":material/broken_image:",
        )
    K = len(exp["result"].get("reward_models") or []) or None
    link = read_view(st.query_params.to_dict(), members_total=K)

    @st.fragment
    def panel() -> None:
        """The share box and the result: a knob reruns this part only."""
        box, shown = share_box(), None
        for problem in link.problems:
            st.caption(f"This link's view could not be read in full: {md(problem)}; shown as run.")
        try:
            shown = render_result(
                exp["result"], arrays, key=f"r_{eid}", title=f"Goodhart Lab · {title}", link=link
            )
        except Exception:  # a malformed stored result: say so instead of a traceback
            store.log.exception("cannot draw the result of %s", eid)
            st.error("This result could not be drawn: its stored data is malformed.")
        show_view(shown, box)

    panel()
    st.page_link(
        PAGES["compare"].file,
        label="Compare with other runs",
        icon=":material/compare_arrows:",
        query_params={"compare": eid},
    )
