"""Runs: every experiment with its status and live progress; open, compare, cancel, delete."""

import pandas as pd
import streamlit as st

from app import access, store
from app.describe import config_summary
from app.nav import PAGES
from app.timing import TIME_HELP, time_text

POLL_S = 2.0

st.title("Runs")


def table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "link": store.share_link(r["id"]),
                "name": r["name"] or "",
                "status": r["status"],
                "progress": r["progress"] or 0.0,
                "stage": r["stage"] or "",
                "time": time_text(r),
                "created (UTC)": (r["created_at"] or "")[:19].replace("T", " "),
                "setup": config_summary(r["config"] or {}),
            }
            for r in rows
        ]
    )


def label(r: dict) -> str:
    return f"{r['id']} · {r['status']}" + (f" · {r['name']}" if r["name"] else "")


def delete(ids: list[str]) -> None:
    n = sum(store.delete(i) for i in ids)
    st.session_state.pop("confirm_delete", None)
    st.session_state["runs_selected"] = []
    st.toast(f"Deleted {n} experiment(s).")


def cancel(ids: list[str]) -> None:
    n = sum(store.cancel(i) for i in ids)
    st.toast(f"Cancel requested for {n} experiment(s): running ones stop at their next stage.")


rows = store.list_experiments()
polling = any(r["status"] in store.ACTIVE for r in rows)


@st.fragment(run_every=POLL_S if polling else None)
def runs_list() -> None:
    """The table and its actions; reruns on its own every POLL_S while anything is active."""
    rows = store.list_experiments()
    if polling and not any(r["status"] in store.ACTIVE for r in rows):
        st.rerun()  # everything finished: a full rerun turns the polling off
    if not rows:
        st.info("No experiments yet: start one on the New experiment page.")
        st.page_link(PAGES["new"].file, label="New experiment", icon=":material/science:")
        return
    st.dataframe(
        table(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "link": st.column_config.LinkColumn(
                "run", display_text=r"\?run=([a-z0-9]+)", help="open (share link)"
            ),
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
            "time": st.column_config.TextColumn("time", help=TIME_HELP),
        },
    )
    by_id = {r["id"]: r for r in rows}
    if any(i not in by_id for i in st.session_state.get("runs_selected", [])):
        st.session_state["runs_selected"] = [
            i for i in st.session_state["runs_selected"] if i in by_id
        ]
    picked = st.multiselect(
        "Select experiments",
        list(by_id),
        format_func=lambda i: label(by_id[i]),
        key="runs_selected",
    )
    active = [i for i in picked if by_id[i]["status"] in store.ACTIVE]
    may_change = access.can_change()
    with st.container(horizontal=True):
        if st.button("Open", disabled=len(picked) != 1, key="runs_open"):
            st.switch_page(PAGES["result"].file, query_params={"run": picked[0]})
        if st.button("Compare", disabled=len(picked) < 2, key="runs_compare"):
            st.switch_page(PAGES["compare"].file, query_params={"compare": ",".join(picked)})
        if may_change:
            st.button(
                "Cancel", disabled=not active, key="runs_cancel", on_click=cancel, args=(active,)
            )
            if st.button("Delete…", disabled=not picked, key="runs_delete"):
                st.session_state["confirm_delete"] = picked
    if not may_change:
        access.read_only_note("Cancelling and deleting")
    confirm = [i for i in st.session_state.get("confirm_delete", []) if i in by_id and may_change]
    if confirm:
        st.warning(
            f"Delete {len(confirm)} experiment(s) and their files for good? " + ", ".join(confirm)
        )
        with st.container(horizontal=True):
            st.button(
                "Yes, delete",
                type="primary",
                key="runs_delete_yes",
                on_click=delete,
                args=(confirm,),
            )
            if st.button("Keep them", key="runs_delete_no"):
                st.session_state.pop("confirm_delete", None)
                st.rerun(scope="fragment")
    if polling:
        st.caption(f"Updating every {POLL_S:g} s while experiments are queued or running.")


runs_list()
