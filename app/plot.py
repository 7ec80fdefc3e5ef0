"""Every chart of the app, drawn in the browser by plotly.js's basic bundle (assets/plot/: a
Streamlit component spoken to by hand, no build step) instead of st.plotly_chart.

Why: Streamlit's chart element loads the full 4.7 MB plotly.js, which kept a page with one chart
1-2 s past its script (benchmarks/bench_browser.py); the basic bundle (scatter and bar, all the
figures here use) is 1.2 MB. And a knob: a chart whose every position the server computes once
(`Knob.frames`) redraws in the browser on a key press, without a server round trip; the server
hears the new position afterwards (show() returns it) to update the address, the share link and
whatever else the page shows.

Figures stay plotly figures (app/charts.py); tests read them back with `figure_of`.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import plotly.io as pio
import streamlit.components.v1 as components
from plotly.utils import PlotlyJSONEncoder as _Encoder

from app.charts import TEMPLATE

FRONTEND = Path(__file__).resolve().parent.parent / "assets" / "plot"
CONFIG = {"displaylogo": False}  # the width follows the frame (assets/plot/plot.js)
_component = components.declare_component("goodhart_plot", path=str(FRONTEND))


@dataclass
class Knob:
    """A knob drawn with the chart: a slider, or with kind "radio" one button per value.
    `values` its positions (as shown), `index` the one the server drew the figure at,
    `frames[i]` what changes at position i (frame()) or None where the server must compute it
    (the chart dims until it has)."""

    label: str
    values: list[str]
    index: int
    frames: list[dict | None] = field(default_factory=list)
    kind: str = "slider"

    def as_arg(self) -> dict:
        frames = self.frames or [None] * len(self.values)
        if len(frames) != len(self.values) or not 0 <= self.index < len(self.values):
            raise ValueError(f"knob {self.label!r}: {len(frames)} frames, {len(self.values)} "
                             f"values, index {self.index}")  # fmt: skip
        if self.kind not in ("slider", "radio"):
            raise ValueError(f"knob {self.label!r}: kind {self.kind!r} is not slider or radio")
        return {"label": self.label, "values": self.values, "index": self.index,
                "frames": frames, "kind": self.kind}  # fmt: skip


def figure_json(fig) -> dict:
    """A plotly figure as the JSON plotly.js reads (numpy arrays as base64 "bdata")."""
    out = json.loads(pio.to_json(fig, validate=False))
    out.setdefault("layout", {})["template"] = TEMPLATE
    return out


def frame(
    fig=None,
    at: int = 0,
    layout: tuple[str, ...] = (),
    side: str | None = None,
    below: str | None = None,
) -> dict:
    """What one knob position changes in the chart's figure: `fig`'s traces in place of the
    chart's traces at, at+1, ...; `fig`'s layout keys `layout` (whole top-level keys: "title",
    "shapes", ...); the HTML beside and under the chart. Independent of the position the
    server drew, so a page can cache its frames."""
    out: dict = {}
    if fig is not None:
        traces = json.loads(json.dumps([t.to_plotly_json() for t in fig.data], cls=_Encoder))
        out["data"] = {str(at + j): t for j, t in enumerate(traces)}
        got = {k: fig.layout[k] for k in layout}
        out["layout"] = json.loads(
            json.dumps({k: v.to_plotly_json() if hasattr(v, "to_plotly_json") else v
                        for k, v in got.items()}, cls=_Encoder)
        )  # fmt: skip
    if side is not None:
        out["side"] = side
    if below is not None:
        out["below"] = below
    return out


def show(
    fig,
    key: str,
    knob: Knob | None = None,
    side: str | None = None,
    below: str | None = None,
) -> int | None:
    """Draw `fig` (and its knob, and HTML beside and under it); returns the knob position the
    browser last settled on, or None before it has moved."""
    return _component(
        figure=figure_json(fig),
        config=CONFIG,
        knob=knob.as_arg() if knob else None,
        side=side,
        below=below,
        key=key,
        default=None,
    )


# ---- words as HTML (the component shows HTML; the pages write markdown) -----------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_CODE = re.compile(r"`([^`]+)`")


def md(text: str) -> str:
    """The markdown the pages' sentences use (**bold**, *italic*, `code`, paragraphs) as HTML,
    everything else escaped."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip()):
        s = html.escape(para, quote=False)
        s = _CODE.sub(r"<code>\1</code>", s)
        s = _BOLD.sub(r"<b>\1</b>", s)
        s = _ITALIC.sub(r"<i>\1</i>", s)
        out.append(f"<p>{s}</p>")
    return "".join(out)


def table(df, caption: str | None = None) -> str:
    """A small DataFrame as an HTML table (escaped), with an optional caption under it."""
    body = df.to_html(index=False, escape=True, border=0, float_format=lambda v: f"{v:.2f}")
    return body + (f"<p><small>{html.escape(caption)}</small></p>" if caption else "")


def figure_of(element) -> dict:
    """Tests: the figure a drawn chart holds (streamlit.testing's element of this component),
    at the knob position the server drew it."""
    return json.loads(element.proto.json_args)["figure"]
