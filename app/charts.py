"""Plotly figures shared by the pages, and the standalone HTML report.

Colour = objective (the same on every page); gold is a solid line, proxy the same colour dashed;
fitted functional forms are dotted.
"""

from __future__ import annotations

import html
import json
import math

import numpy as np
import plotly.graph_objects as go

from app import escape
from app.tables import CONVENTIONS, fits_words, members_frame, members_words, summary_words, x_key
from backend.fits import FORMS, predict

# Streamlit registers plotly's default template, "streamlit", whose colours are placeholders
# (#000001, ...) that only its own chart element swaps for the theme's. The app's chart component
# (app/plot.py, plot.js) and the HTML reports (fig_html) draw with their own style, and every trace
# here names its colour: in its place, Streamlit's default chart colours for any trace that does
# not, and the template's one other setting.
TEMPLATE = {
    "data": {"scatter": [{"type": "scatter", "marker": {"line": {"width": 0}}}]},
    "layout": {"colorway": ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1",
                            "#ff8700", "#ffd16a", "#6d3fc0", "#d5dae5"]},
}  # fmt: skip

OBJECTIVE_COLOURS = {"mean": "#1f77b4", "wco": "#d62728", "uwo": "#2ca02c"}
LOSS_COLOURS = {"dpo": "#ff7f0e", "ipo": "#17becf", "slic": "#8c564b"}  # DPO curves by loss
MEMBER_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e"]
RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"]
OBJECTIVE_DASHES = {"mean": "solid", "wco": "dash", "uwo": "dot", "single": "dashdot"}
METHOD_MARKERS = {"bon": "circle", "ppo": "square", "dpo": "diamond"}  # Compare: marker = method
SINGLE_GROUP_COLOUR = "#555555"  # single members drawn as one average with a band
X_TITLES = {
    "n": "n: answers drawn per prompt, best of them kept (log scale)",
    "kl": "KL(π ‖ π_init) (nats; best-of-n: the bound log n − (n−1)/n)",
    "sqrt_kl": "√KL (nats^½; best-of-n: of the bound)",
    "kl_exact": "exact KL(best-of-n ‖ sampled answers) (nats)",
}
FIG_HEIGHT = 460


def objective_colour(curve: dict) -> str:
    if curve["objective"] == "single" and "group_size" in curve:
        return SINGLE_GROUP_COLOUR
    if curve["objective"] == "single":
        return MEMBER_COLOURS[int(curve.get("member") or 0) % len(MEMBER_COLOURS)]
    if curve.get("method") == "dpo":
        return LOSS_COLOURS.get(curve["objective"], "#333333")
    return OBJECTIVE_COLOURS.get(curve["objective"], "#333333")


def has_proxy(points: list[dict]) -> bool:
    """Whether a curve has proxy values to draw (DPO's have none unless its ensemble scored)."""
    return all(p.get("proxy") is not None for p in points)


def _xs(points: list[dict], x: str) -> list[float]:
    """The x values of a curve's points: "kl", "sqrt_kl", or "kl_exact" (best-of-n's exact KL;
    other methods have one KL, measured on their own samples, which stands in for it)."""
    if x == "sqrt_kl":
        return [math.sqrt(max(p["kl"], 0.0)) for p in points]
    if x == "n":
        return [p["n"] for p in points]
    if x == "kl_exact":
        return [p.get("kl_exact", p["kl"]) for p in points]
    return [p["kl"] for p in points]


def fit_line(fit: dict, d: np.ndarray) -> np.ndarray | None:
    """The fitted form at d = sqrt(KL) (backend.fits.predict), or None when there is nothing to
    draw (no coefficients, or a form this version does not know)."""
    if fit.get("alpha") is None or fit.get("beta") is None or fit.get("form") not in FORMS:
        return None
    return predict(fit["form"], fit["alpha"], fit["beta"], d)


def fit_text(fit: dict) -> str:
    """ "α = 0.81 ± 0.02, β = 0.30 ± 0.01, R² = 0.97" (the ± only where the fit has errors)."""

    def coef(name: str, sym: str) -> str:
        se = fit.get(f"{name}_se")
        return f"{sym} = {fit[name]:.3g}" + (f" ± {se:.2g}" if se is not None else "")

    r2 = fit.get("r2")
    text = f"{coef('alpha', 'α')}, {coef('beta', 'β')}"
    return text + (f", R² = {r2:.3f}" if r2 is not None else "")


def curves_figure(
    curves: list[dict],
    x: str = "kl",
    show_proxy: bool = True,
    show_fits: bool = False,
    show_se: bool = False,
    title: str | None = None,
    colours: list[str] | None = None,
    show_band: bool = True,
    mark_peak: bool = True,
) -> go.Figure:
    """Gold (solid) and proxy (dashed) against KL, sqrt KL or n, one colour per objective (or,
    with `colours`, the i-th curve in colours[i]: a sweep of one method). A group curve
    (backend.summary.group_curve: the single members as one) is drawn with its band (lowest to
    highest member); each curve's gold peak is marked with a star, except single members'."""
    traces: list[dict] = []
    for i, c in enumerate(curves):
        pts = c["points"]
        if not pts:
            continue
        first = len(traces)  # this curve's traces are tagged with its objective below
        xk = x_key(c)
        xs = _xs(pts, x)
        colour = colours[i % len(colours)] if colours else objective_colour(c)
        # Single members are thin lines beside the ensemble's; alone (or averaged) they are not.
        single = c["objective"] == "single" and "group_size" not in c and len(curves) > 1
        if show_band and all("gold_lo" in p for p in pts):
            lo, hi = [p["gold_lo"] for p in pts], [p["gold_hi"] for p in pts]
            traces.append(band_trace(xs, lo, hi, colour, c["label"], c["label"]))
        width = 1.5 if single else 3
        custom = [[p.get(xk), p["kl"]] for p in pts]
        hover = f"{xk}=%{{customdata[0]}}<br>KL=%{{customdata[1]:.3f}}<br>%{{y:.3f}}"
        err = None
        if show_se and all("gold_se" in p for p in pts):
            err = {"type": "data", "array": [p["gold_se"] for p in pts], "visible": True}
        traces.append(
            _scatter(
                x=xs,
                y=[p["gold"] for p in pts],
                mode="lines+markers",
                name=c["label"],
                legendgroup=c["label"],
                line={"color": colour, "width": width},
                marker={"size": 4 if single else 6},
                opacity=0.6 if single else 1.0,
                error_y=err,
                customdata=custom,
                hovertemplate=hover + "<extra>%{fullData.name}</extra>",
            )
        )
        if show_proxy and has_proxy(pts):
            traces.append(
                _scatter(
                    x=xs,
                    y=[p["proxy"] for p in pts],
                    mode="lines",
                    name=f"{c['label']} · proxy",
                    legendgroup=c["label"],
                    showlegend=False,
                    line={"color": colour, "width": width, "dash": "dash"},
                    opacity=0.6 if single else 1.0,
                    customdata=custom,
                    hovertemplate=hover + "<extra>%{fullData.name}</extra>",
                )
            )
        if mark_peak and not single:
            j = max(range(len(pts)), key=lambda k: pts[k]["gold"])
            traces.append(
                _scatter(
                    x=[xs[j]],
                    y=[pts[j]["gold"]],
                    mode="markers",
                    name=f"{c['label']} · peak",
                    legendgroup=c["label"],
                    showlegend=False,
                    marker={"symbol": "star", "size": 14, "color": colour, "line": {"width": 1}},
                    hovertemplate=f"peak of {escape.plotly(c['label'])}: gold %{{y:.2f}} at "
                    f"{xk} = {pts[j].get(xk)}<extra></extra>",
                )
            )
        fit = c.get("fit")
        if (
            show_fits and isinstance(fit, dict) and x not in ("kl_exact", "n")
        ):  # fitted on the bound
            kls = np.array([p["kl"] for p in pts])
            d = np.linspace(0.0, math.sqrt(max(kls.max(), 0.0)), 60)
            y = fit_line(fit, d)
            if y is not None:
                traces.append(
                    _scatter(
                        x=d if x == "sqrt_kl" else d**2,
                        y=y,
                        mode="lines",
                        name=f"{c['label']} · fit",
                        legendgroup=c["label"],
                        showlegend=False,
                        line={"color": colour, "width": 1.5, "dash": "dot"},
                        hovertemplate=f"{fit_text(fit)}<extra>%{{fullData.name}}</extra>",
                    )
                )
        for t in traces[first:]:  # an objectives pill (app/plot.py Pills) shows or hides them
            t["meta"] = c["objective"]
    legend = "solid: gold · dashed: proxy" if show_proxy else "gold"
    return _figure(traces, _layout(x, "standardized reward (initial policy: 0)", title, legend))


def n_marker(fig: go.Figure, n: int) -> go.Figure:
    """A dotted vertical line at n, labelled (the Learn page's n knob)."""
    fig.add_vline(x=n, line_dash="dot", line_color="#888", annotation_text=f"n = {n:,}")
    return fig


def _translucent(colour: str, alpha: float = 0.15) -> str:
    """ "#1f77b4" -> "rgba(31,119,180,0.15)": a band under its line's colour."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _scatter(**props) -> dict:
    """One scatter trace as plotly's dict (None values left out, as go.Scatter leaves them)."""
    return {"type": "scatter", **{k: v for k, v in props.items() if v is not None}}


def _figure(traces: list[dict], layout: dict) -> go.Figure:
    """The figure built in one go: plotly validates the traces and layout once, about 3x faster
    than add_trace and update_layout one by one (which re-parse each property path), and the
    pages build several figures per rerun (a knob's frames)."""
    return go.Figure(data=traces, layout=layout)


def band_trace(
    xs: list[float],
    lo: list[float],
    hi: list[float],
    colour: str,
    name: str,
    group: str,
) -> dict:
    """The shaded band of a group curve (backend.summary.band_points: an ensemble's single
    members, or runs that differ only by seed), from its lowest to its highest value, in its
    line's colour; one trace, outside the legend (it follows its line's legend group)."""
    return _scatter(
        x=xs + xs[::-1], y=list(hi) + list(lo)[::-1], fill="toself",
        fillcolor=_translucent(colour), line={"width": 0}, mode="lines", hoverinfo="skip",
        showlegend=False, legendgroup=group, name=f"{name} · band",
    )  # fmt: skip


def compare_figure(
    series: list[tuple[str, dict]], x: str = "kl", metric: str = "gold", title: str | None = None
) -> go.Figure:
    """Several runs overlaid: colour = run (one run: the objective), dash = objective; (run
    label, curve) pairs. A curve
    with band points (backend.summary.band_points: a seed group) gets its band, shaded."""
    traces: list[dict] = []
    run_colour: dict[str, str] = {}
    one_run = len({run for run, _ in series}) == 1  # then colour tells the objectives apart
    for run, c in series:
        colour = run_colour.setdefault(run, RUN_COLOURS[len(run_colour) % len(RUN_COLOURS)])
        if one_run:
            colour = objective_colour(c)
        pts = c["points"]
        if metric == "proxy" and not has_proxy(pts):
            continue  # a DPO run without an ensemble has no proxy to show
        method = c.get("method", "bon")
        name = escape.plotly(f"{run} · {c['label']}")
        if f"{metric}_lo" in pts[0]:  # a seed group: the band between its lowest and highest
            lo, hi = [p[f"{metric}_lo"] for p in pts], [p[f"{metric}_hi"] for p in pts]
            traces.append(band_trace(_xs(pts, x), lo, hi, colour, name, run))
        traces.append(
            _scatter(
                x=_xs(pts, x),
                y=[p[metric] for p in pts],
                mode="lines+markers",
                name=name,
                legendgroup=run,
                line={"color": colour, "dash": OBJECTIVE_DASHES.get(c["objective"], "solid")},
                marker={"size": 5, "symbol": METHOD_MARKERS.get(method, "circle")},
                customdata=[[method, p.get(x_key(c))] for p in pts],
                hovertemplate=f"%{{customdata[0]}} {x_key(c)}=%{{customdata[1]}}<br>"
                "x=%{x:.3f}, y=%{y:.3f}<extra>%{fullData.name}</extra>",
            )
        )
    return _figure(traces, _layout(x, f"{metric} (standardized)", title))


def errors_figure(curves: list[dict], x: str = "kl") -> go.Figure:
    """What the ensemble sees at the answer best-of-n keeps, per ensemble objective: the error
    all members share (solid) and their spread (dotted), against the same x as the curves."""
    traces: list[dict] = []
    for c in curves:
        pts = c["points"]
        if c["objective"] == "single" or not pts or "shared_error" not in pts[0]:
            continue
        colour = objective_colour(c)
        xs = _xs(pts, x)
        traces.append(
            _scatter(
                x=xs, y=[p["shared_error"] for p in pts], mode="lines+markers",
                name=f"{c['label']} · shared error", legendgroup=c["label"],
                line={"color": colour, "width": 2.5}, marker={"size": 5},
            )
        )  # fmt: skip
        traces.append(
            _scatter(
                x=xs, y=[p["member_sd"] for p in pts], mode="lines",
                name=f"{c['label']} · spread", legendgroup=c["label"],
                line={"color": colour, "width": 1.5, "dash": "dot"},
            )
        )  # fmt: skip
    layout = _layout(x, "member error at the kept answer (gold std units)", None,
                     "solid: shared · dotted: spread", height=FIG_HEIGHT - 60)  # fmt: skip
    fig = _figure(traces, layout)
    fig.add_hline(y=0.0, line_color="#999", line_width=1)
    return fig


def losses_figure(result: dict) -> go.Figure:
    """Each member's training loss (dashed) and held-out loss (solid) by epoch, with log 2, the
    loss of a proxy that knows nothing."""
    fig = go.Figure()
    for m in result.get("reward_models") or []:
        colour = MEMBER_COLOURS[int(m.get("member", 0)) % len(MEMBER_COLOURS)]
        for key, dash, what in (
            ("heldout_loss", "solid", "held-out"),
            ("train_loss", "dash", "train"),
        ):
            losses = m.get(key)
            if isinstance(losses, list) and losses:
                fig.add_trace(
                    go.Scatter(
                        x=list(range(1, len(losses) + 1)), y=losses, mode="lines+markers",
                        name=f"#{m.get('member')} {what}", line={"color": colour, "dash": dash},
                    )
                )  # fmt: skip
    fig.add_hline(y=math.log(2), line_dash="dot", annotation_text="log 2 (knows nothing)")
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="epoch",
        yaxis_title="Bradley-Terry loss",
    )
    return fig


def epochs_figure(curve: dict) -> go.Figure:
    """A DPO curve against epochs of the preference data: gold of the policy's samples (left
    axis) and the implicit reward's accuracy on held-out clean pairs (right axis), with the end
    of the first epoch marked (where direct alignment often peaks already)."""
    pts = curve["points"]
    epochs = [p["epoch"] for p in pts]
    custom = [[p["step"], p["kl"]] for p in pts]
    hover = "epoch %{x:.2f} (step %{customdata[0]})<br>KL=%{customdata[1]:.3f}<br>%{y:.3f}"
    colour = objective_colour(curve)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=[p["gold"] for p in pts],
            mode="lines+markers",
            name="gold of the policy's samples",
            line={"color": colour, "width": 3},
            customdata=custom,
            hovertemplate=hover + "<extra>gold</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=[p["implicit_acc"] for p in pts],
            mode="lines+markers",
            name="implicit reward accuracy, held-out clean pairs (right)",
            line={"color": "#555555", "dash": "dash"},
            yaxis="y2",
            customdata=custom,
            hovertemplate=hover + "<extra>implicit accuracy</extra>",
        )
    )
    fig.add_vline(x=1.0, line_dash="dot", annotation_text="one epoch")
    fig.update_layout(
        height=360,
        xaxis_title="epochs of the preference data",
        yaxis_title="gold (standardized)",
        yaxis2={"title": "implicit accuracy", "overlaying": "y", "side": "right"},
        legend={"orientation": "h", "y": -0.25},
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
    )
    return fig


def accuracy_figure(result: dict) -> go.Figure:
    """Held-out accuracy of each member against clean gold labels (0.5 = chance)."""
    df = members_frame(result)
    fig = go.Figure()
    if not df.empty:
        fig.add_trace(
            go.Bar(
                x=[f"#{m}" for m in df["member"]],
                y=df["heldout_acc_gold"],
                marker_color=[MEMBER_COLOURS[int(m) % len(MEMBER_COLOURS)] for m in df["member"]],
                text=[f"{a:.3f}" for a in df["heldout_acc_gold"]],
                textposition="outside",
                name="held-out accuracy",
            )
        )
        lo = max(0.0, min(0.5, float(df["heldout_acc_gold"].min()) - 0.05))
        fig.update_yaxes(range=[lo, 1.0])
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="member",
        yaxis_title="held-out accuracy vs gold",
        showlegend=False,
    )
    return fig


def disagreement_figure(df, picked_gold: float | None = None) -> go.Figure:
    """Every answer to one prompt: members' mean (x) against gold (y), coloured by spread."""
    fig = go.Figure(
        go.Scatter(
            x=df["mean"],
            y=df["gold"],
            mode="markers",
            marker={
                "color": df["spread"],
                "colorscale": "Viridis",
                "size": 5,
                "opacity": 0.6,
                "colorbar": {"title": "spread"},
            },
            hovertemplate="mean %{x:.2f}<br>gold %{y:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="mean of the members (standardized)",
        yaxis_title="gold (standardized)",
    )
    return fig


def _layout(
    x: str, ytitle: str, title: str | None, legend: str | None = None, height: int = FIG_HEIGHT
) -> dict:
    """The layout of a chart against x (KL, sqrt KL, exact KL or n: log scale), as plotly's
    dict (nested, as plotly writes it)."""
    layout = {
        "height": height,
        "title": {"text": title, "font": {"size": 15}} if title else None,
        "xaxis": {"title": {"text": X_TITLES.get(x, x)}},
        "yaxis": {"title": {"text": ytitle}},
        "legend": {"groupclick": "togglegroup", **({"title": {"text": legend}} if legend else {})},
        "margin": {"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
        "hovermode": "closest",
    }
    if x == "n":
        layout["xaxis"] |= {"type": "log", "dtick": math.log10(2) * 2}
    return layout


def fig_html(fig, include_plotlyjs: bool) -> str:
    """A figure as an HTML fragment for the standalone reports, drawn with TEMPLATE (plotly's
    default template is Streamlit's placeholder one whenever streamlit has been imported)."""
    fig = go.Figure(fig)
    fig.layout.template = TEMPLATE  # replaces the default one (update_layout would merge into it)
    return fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs)


def report_html(title: str, result: dict, curves: list[dict], note: str = "") -> str:
    """A standalone HTML page (plotly.js inline, works offline): the curves against KL and
    sqrt KL, member accuracies, headline numbers, fits, the config and the conventions."""
    figs = [
        curves_figure(curves, "kl", title="Gold (solid) and proxy (dashed) against KL"),
        curves_figure(curves, "sqrt_kl", show_fits=True, title="Against √KL, with fits"),
        accuracy_figure(result),
    ]
    parts = [fig_html(f, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    from app.describe import SINGLE_GROUP

    tables = [("Headline numbers", summary_words(result.get("summary"), SINGLE_GROUP))]
    fits = fits_words(curves)
    if not fits.empty:
        tables.append(("Fitted functional forms", fits))
    tables.append(("Reward models", members_words(result)))
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(CONVENTIONS)}</p>"]
    if note:
        body.append(f"<p><em>{html.escape(note)}</em></p>")
    body += parts
    for name, df in tables:
        if not df.empty:
            body.append(f"<h2>{name}</h2>" + df.to_html(float_format=lambda v: f"{v:.4g}"))
    cfg = json.dumps(result.get("config", {}), indent=1)
    body.append(f"<h2>Config</h2><pre>{html.escape(cfg)}</pre>")
    versions = json.dumps(result.get("versions", {}), indent=1)
    body.append(f"<h2>Versions</h2><pre>{html.escape(versions)}</pre>")
    return html_page(title, body)


def html_page(title: str, body: list[str], width_px: int = 1100) -> str:
    """A standalone HTML page (the result report and the reproduction report): the title
    escaped, the body's parts as given (already HTML), one small style sheet."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>body{{font-family:sans-serif;max-width:{width_px}px;margin:auto}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 6px;"
        "vertical-align:top}</style></head><body>" + "\n".join(body) + "</body></html>"
    )
