"""Reproduction: does this reproduce the paper? The newest reproduction report (claims, verdicts,
plots, links to the runs), and a button that queues a new one for the workers."""

import json
import os

import pandas as pd
import streamlit as st

from app import access, plot, store
from app.report import FIGURES, VERDICT_COLOURS, figures, report_html, runs_for
from app.timing import TIME_HELP, time_text
from backend.reproduce.claims import THRESHOLDS
from backend.reproduce.plan import SIZES, plan
from backend.reproduce.report import report_markdown, setup_text

POLL_S = 2.0
# The sizes the button offers; the tests add "tiny" (backend/reproduce/plan.py SIZES).
SIZE_CHOICES = [
    s for s in os.environ.get("GOODHART_REPRO_SIZES", "quick,full").split(",") if s in SIZES
]

st.title("Reproduction")
st.caption(
    "Each headline claim of Coste et al. (ICLR 2024) and Gao et al. (ICML 2023), what this world "
    "measures (mean ± sd over seeds) and a verdict computed from the numbers. The same report "
    "comes from `python -m backend reproduce --seeds S --out DIR [--quick]`."
)

manifest = store.latest_reproduction()


def start_form(manifest: dict | None) -> None:
    """The sizes, the seeds and the Start button (not on a read-only server)."""
    # Open when there is no report at all to read; else the report comes first.
    first = manifest is None and store.shipped_reproduction() is None
    with st.expander("Start a new reproduction", expanded=first):
        size = st.radio(
            "size",
            SIZE_CHOICES,
            horizontal=True,
            key="repro_size",
            captions=[SIZES[s].doc for s in SIZE_CHOICES],
        )
        seeds = st.number_input("seeds", 1, 10, 1, key="repro_seeds")
        st.caption(
            f"{len(plan(int(seeds), size))} experiments go to the job queue; finished ones "
            "with the same config are reused, and the workers reuse cached proxies. Needs a "
            "running worker (`python -m backend worker`)."
        )
        if st.button("Start", type="primary", key="repro_start"):
            store.start_reproduction(int(seeds), size)
            st.rerun()


if not access.can_change():
    access.read_only_note("Starting a reproduction")
else:
    start_form(manifest)


def claims_table(claims: list[dict], key: str) -> None:
    """The claims with their verdicts, coloured; the verdict next to the claim, so the answer a
    reader came for is visible without scrolling."""
    table = pd.DataFrame(claims)[["id", "claim", "verdict", "measured", "paper"]]
    st.dataframe(
        table.style.apply(
            lambda col: [f"color: {VERDICT_COLOURS.get(v, '')}; font-weight: bold" for v in col],
            subset=["verdict"],
        ),
        hide_index=True,
        width="stretch",
        key=key,
        column_config={
            "id": st.column_config.TextColumn("id", width="small"),
            "claim": st.column_config.TextColumn("claim", width="medium"),
            "verdict": st.column_config.TextColumn("verdict", width="small"),
            "measured": st.column_config.TextColumn("measured", width="large"),
        },
    )


def shipped(heading: str) -> None:
    """The report that ships with the code (docs/reproduction/), clearly labelled as such."""
    rep = store.shipped_reproduction()
    if rep is None:
        where = "start one above, or " if access.can_change() else ""
        st.info(f"No reproduction yet: {where}run `python -m backend reproduce`.")
        return
    seeds = len(rep["seeds"])
    st.subheader(f"{heading}: {rep['size']} suite, {seeds} seeds, run on {rep['date']}")
    st.caption(
        f"Measured when this version was written, not on this machine: `{rep['command']}`, "
        f"{rep['experiments']} experiments in {rep['took']} (size {rep['size']}: "
        f"{SIZES[rep['size']].doc}). {rep['note']} Start a reproduction to measure them here; "
        "its report then replaces this one."
    )
    claims_table(rep["claims"], "repro_shipped")
    with st.expander("Criteria"):
        st.markdown(
            "\n".join(f"- **{c['id']}** {c['claim']}: {c['criterion']}." for c in rep["claims"])
        )


if manifest is None:
    shipped("Shipped report")
    st.stop()

st.subheader(f"Latest: {manifest['created_at'][:19].replace('T', ' ')} UTC")
st.caption(
    f"size {manifest['size']} ({SIZES[manifest['size']].doc}) · seeds "
    f"{', '.join(map(str, manifest['seeds']))} · started from the {manifest.get('source', '?')}"
)
runs = manifest["runs"]
state = store.reproduction_status(runs)
active = any(r["status"] in store.ACTIVE for r in state.values())


def runs_table(state: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "experiment": key,
                "run": store.share_link(r["id"]),
                "status": r["status"],
                "progress": float(r["progress"] or 0.0),
                "stage": r["stage"] or "",
                "time": time_text(r) if r["status"] != "missing" else "",
            }
            for key, r in state.items()
        ]
    )


@st.fragment(run_every=POLL_S if active else None)
def progress() -> None:
    """The suite's runs while they go; a full rerun once none is queued or running."""
    now = store.reproduction_status(runs)
    if active and not any(r["status"] in store.ACTIVE for r in now.values()):
        st.rerun()
    done = sum(r["status"] == "done" for r in now.values())
    st.progress(done / len(now), text=f"{done} of {len(now)} experiments done")
    st.dataframe(
        runs_table(now),
        hide_index=True,
        width="stretch",
        column_config={
            "run": st.column_config.LinkColumn("run", display_text=r"\?run=([a-z0-9]+)"),
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
            "time": st.column_config.TextColumn("time", help=TIME_HELP),
        },
    )


def cancel_suite() -> None:
    n = store.cancel_reproduction(manifest)
    st.toast(f"Cancelled {n} experiment(s); finished ones are kept.")


bad = {k: r for k, r in state.items() if r["status"] in ("failed", "cancelled", "missing")}
if active or bad:
    done = sum(r["status"] == "done" for r in state.values())
    kept = (
        f"{done} of {len(state)} experiments finished and are kept (a new reproduction reuses them)"
    )
    if manifest.get("cancelled_at"):
        stamp = manifest["cancelled_at"][:19].replace("T", " ")
        running = "; running ones stop at their next stage" if active else ""
        st.warning(f"This reproduction was cancelled at {stamp} UTC{running}. {kept}.")
    elif bad:
        st.error(
            "The report needs every experiment: "
            + ", ".join(f"{k} is {r['status']}" for k, r in bad.items())
            + ". Start a new reproduction to run them again (finished ones are reused)."
        )
    else:
        st.info("The experiments are running; the report appears when all are done.")
    if active and not manifest.get("cancelled_at") and access.can_change():
        st.button(
            "Cancel this reproduction",
            key="repro_cancel",
            on_click=cancel_suite,
            help="Queued experiments are cancelled at once, running ones at their next stage; "
            "finished ones are kept.",
        )
    progress()
    shipped("Meanwhile, the shipped report")
    st.stop()

with st.spinner("Computing the report from the stored runs…"):
    report = store.reproduction_report(manifest)
claims, analysis = report["claims"], report["analysis"]

st.caption(setup_text(analysis))
claims_table(claims, "repro_claims")
with st.expander("Criteria and thresholds"):
    st.markdown("\n".join(f"- **{c['id']}** {c['claim']}: {c['criterion']}." for c in claims))
    st.markdown("\n".join(f"- `{k}` = {v:g}: {doc}" for k, (v, doc) in THRESHOLDS.items()))

for i, (section, caption, fig, match) in enumerate(figures(analysis)):
    st.markdown(f"**{FIGURES[section]}**: {caption}")
    plot.show(fig, key=f"repro_fig_{i}")
    links = runs_for(match, runs)
    line = "Runs: " + " · ".join(f"[{k}]({store.share_link(e)})" for k, e in links.items())
    if len(links) > 1:
        line += f" · [compare them]({store.compare_link(list(links.values()))})"
    st.markdown(line)

with st.container(horizontal=True):
    root = store.app_root()
    st.download_button(
        "report.html",
        lambda: report_html(manifest, claims, analysis, root),
        "report.html",
        "text/html",
        key="repro_html",
        on_click="ignore",
        help="Standalone (plotly inline): opens offline.",
    )
    st.download_button(
        "report.md",
        lambda: report_markdown(manifest, claims, analysis, runs, root),
        "report.md",
        "text/markdown",
        key="repro_md",
        on_click="ignore",
    )
    st.download_button(
        "claims.json",
        json.dumps(claims, indent=1),
        "claims.json",
        "application/json",
        key="repro_claims_json",
        on_click="ignore",
    )
