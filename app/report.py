"""The reproduction report's figures and its standalone HTML page (no Streamlit: the CLI writes
report.html with it, the Reproduction page draws the same figures). Input: the analysis and claims
of backend/reproduce/."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from app.charts import OBJECTIVE_COLOURS, curves_figure, fig_html, html_page
from backend.reproduce.claims import THRESHOLDS
from backend.reproduce.plan import SIZES
from backend.reproduce.report import run_link, setup_text

VERDICT_COLOURS = {"holds": "#2ca02c", "partly": "#ff7f0e", "fails": "#d62728"}
FIGURES = {  # claim "figure" -> section title
    "bon": "Best-of-n",
    "ppo": "PPO",
    "sizes": "Ensemble size",
    "lambdas": "UWO lambda",
    "dpo": "Direct alignment (DPO)",
}
BETA_COLOURS = ["#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b"]  # small to large


def figures(analysis: dict) -> list[tuple[str, str, go.Figure, str]]:
    """(section, caption, figure, runs) of every plot, in report order; runs: the part of the
    suite's run keys that marks the runs behind the plot (see runs_for)."""
    out = []
    for noise, block in analysis["bon"].items():
        caption = (
            f"Best-of-n, {float(noise):.0%} label noise: seed-mean gold (solid), proxy (dashed) "
            f"and the fitted form (dotted); single_avg is members 0-{analysis['ensemble'] - 1} "
            "averaged, the objectives use those members."
        )
        fig = curves_figure(list(block["curves"].values()), "kl", show_fits=True)
        out.append(("bon", caption, fig, f"bon/noise{noise}/"))
    for beta, block in analysis["ppo"].items():
        caption = (
            f"PPO, KL penalty beta = {beta}: seed-mean gold (solid), the objective's proxy value "
            "(dashed), the fitted RL form (dotted)."
        )
        fig = curves_figure(list(block["curves"].values()), "kl", show_fits=True)
        out.append(("ppo", caption, fig, f"/beta{beta}/"))
    if analysis.get("dpo"):
        betas = sorted(analysis["dpo"], key=float)
        caption = (
            "DPO on the experiment's noisy pairs, one curve per beta (smallest red): seed-mean "
            "gold of the policy's samples against KL(π ‖ π_init) measured on them, and the "
            "fitted RL form (dotted). No reward model, so no proxy line."
        )
        curves = [analysis["dpo"][b]["curves"]["dpo"] for b in betas]
        fig = curves_figure(curves, "kl", show_fits=True, colours=BETA_COLOURS)
        out.append(("dpo", caption, fig, "dpo/"))
    main = f"bon/noise{next(iter(analysis['bon']))}/"
    sizes = "Best-of-n final gold (n = N) by ensemble size, seed mean ± sd."
    out.append(("sizes", sizes, sizes_figure(analysis), main))
    lambdas = "Best-of-n UWO final gold by lambda, seed mean ± sd."
    out.append(("lambdas", lambdas, lambdas_figure(analysis), main))
    return out


def _band(values: list[list[float]]) -> tuple[np.ndarray, np.ndarray | None]:
    v = np.asarray(values, dtype=float)  # (S, X)
    return v.mean(0), (v.std(0, ddof=1) if len(v) > 1 else None)


def sizes_figure(analysis: dict) -> go.Figure:
    """Final gold against the number of members (seed mean ± sd over seeds)."""
    fig = go.Figure()
    ks = analysis["sizes"]["k"]
    for obj in ("mean", "wco", "uwo"):
        mean, sd = _band(analysis["sizes"][obj])
        fig.add_trace(
            go.Scatter(
                x=ks,
                y=mean,
                mode="lines+markers",
                name=obj,
                line={"color": OBJECTIVE_COLOURS[obj]},
                error_y={"type": "data", "array": sd, "visible": sd is not None},
            )
        )
    fig.update_layout(
        height=360,
        xaxis_title="ensemble members k",
        yaxis_title="final gold (best-of-N)",
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
    )
    return fig


def lambdas_figure(analysis: dict) -> go.Figure:
    """UWO's final gold against lambda, with the single RM's for reference."""
    lam = analysis["lambdas"]
    mean, sd = _band(lam["final"])
    fig = go.Figure(
        go.Scatter(
            x=lam["lambda"],
            y=mean,
            mode="lines+markers",
            name="uwo",
            line={"color": OBJECTIVE_COLOURS["uwo"]},
            error_y={"type": "data", "array": sd, "visible": sd is not None},
        )
    )
    fig.add_hline(
        y=float(np.mean(lam["single_final"])),
        line_dash="dot",
        annotation_text="single RM",
    )
    fig.update_layout(
        height=360,
        xaxis_title="UWO λ (λ = 0: the mean)",
        yaxis_title="final gold (best-of-N)",
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
    )
    return fig


def runs_for(match: str, runs: dict[str, str]) -> dict[str, str]:
    """The runs behind a figure: those whose key contains `match` ("bon/noise0.25/",
    "/beta0.01/")."""
    return {k: v for k, v in runs.items() if match in k}


def report_html(manifest: dict, claims: list[dict], analysis: dict, app_url: str) -> str:
    """A standalone page (plotly.js inline once, works offline): the claims with their
    verdicts, the criteria, then every figure with links to the runs behind it."""
    seeds = manifest["seeds"]
    body = [
        "<h1>Goodhart Lab: reproduction report</h1>",
        f"<p>Made {html.escape(manifest['created_at'])} · size <b>{manifest['size']}</b> "
        f"({html.escape(SIZES[manifest['size']].doc)}) · seeds {', '.join(map(str, seeds))}.</p>",
        f"<p>{html.escape(setup_text(analysis))}</p>",
        "<table><tr><th>#</th><th>claim</th><th>paper</th><th>measured</th><th>verdict</th></tr>",
    ]
    for c in claims:
        colour = VERDICT_COLOURS.get(c["verdict"], "#333")
        body.append(
            f"<tr><td>{c['id']}</td><td>{html.escape(c['claim'])}</td>"
            f"<td>{html.escape(c['paper'])}</td><td>{html.escape(c['measured'])}</td>"
            f"<td style='color:{colour};font-weight:bold'>{c['verdict']}</td></tr>"
        )
    body.append("</table><h2>Criteria</h2><ul>")
    body += [f"<li><b>{c['id']}</b> {html.escape(c['criterion'])}</li>" for c in claims]
    body.append("</ul><p>Thresholds (backend/reproduce/claims.py):</p><ul>")
    body += [
        f"<li><code>{k}</code> = {v:g}: {html.escape(doc)}</li>"
        for k, (v, doc) in THRESHOLDS.items()
    ]
    body.append("</ul>")
    first = True
    for section, caption, fig, match in figures(analysis):
        body.append(f"<h2>{FIGURES[section]}</h2><p>{html.escape(caption)}</p>")
        body.append(fig_html(fig, include_plotlyjs=first))
        first = False
        links = runs_for(match, manifest["runs"])
        body.append(
            "<p>Runs: "
            + ", ".join(
                f"<a href='{html.escape(run_link(app_url, eid))}'>{html.escape(key)}</a>"
                for key, eid in links.items()
            )
            + "</p>"
        )
    return html_page("Goodhart Lab: reproduction report", body, width_px=1200)
