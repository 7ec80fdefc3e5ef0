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


@dataclass
class Pills:
    """Toggle buttons drawn above the chart, redrawn in the browser without a server round trip;
    the server hears the choice afterwards (state()). `values` what each pill stands for (JSON:
    text or numbers), `labels` how they read (default: the values), `chosen` those on as the
    server drew the figure. Two kinds:
      "show": the chart's traces whose `meta` is one of `values` are shown while their pill is
        on (app/charts.py tags each curve's traces with its objective); the title, given as
        parts (show(title=...)), states only the shown ones;
      "frames": each choice is its own figure, frames[subset_key(choice)] (frame(whole=True)) at
        the knob position the server drew; a choice without a frame dims the chart until the
        server has drawn it. At least one pill stays on."""

    name: str
    label: str
    values: list
    chosen: list
    labels: list[str] | None = None
    kind: str = "show"
    frames: dict[str, dict] = field(default_factory=dict)
    help: str = ""

    def as_arg(self) -> dict:
        if self.kind not in ("show", "frames"):
            raise ValueError(f"pills {self.name!r}: kind {self.kind!r} is not show or frames")
        labels = self.labels or [str(v) for v in self.values]
        if len(labels) != len(self.values) or any(c not in self.values for c in self.chosen):
            raise ValueError(f"pills {self.name!r}: {len(labels)} labels, {len(self.values)} "
                             f"values, chosen {self.chosen}")  # fmt: skip
        return {"name": self.name, "label": self.label, "values": self.values, "labels": labels,
                "chosen": [v for v in self.values if v in self.chosen], "kind": self.kind,
                "frames": self.frames, "help": self.help}  # fmt: skip


def subset_key(values) -> str:
    """A "frames" pill choice's key in Pills.frames: "0,2,3" (as assets/plot/plot.js writes it)."""
    return ",".join(str(v) for v in sorted(values))


def one_click(values: list, chosen) -> list[tuple]:
    """The choices of a "frames" pill one click away from `chosen`: each value left out or added
    back, in `values`' order, never empty (the browser keeps one pill on)."""
    out = [tuple(v for v in values if (v in chosen) != (v == w)) for w in values]
    return [c for c in out if c]


def title_arg(head: str, parts: list[tuple[str, str]]) -> dict:
    """A title in parts (describe.takeaway_parts): the first line, then the words of each shown
    curve's group (its objective), joined as takeaway() joins them."""
    return {"head": head, "parts": [list(p) for p in parts]}


def title_text(title: dict, on: set | None = None) -> str:
    """The title the browser draws from title_arg's parts with the groups `on` shown."""
    words = [text for group, text in title["parts"] if on is None or group in on]
    return f"{title['head']}<br>" + " · ".join(words) if words else ""


def figure_json(fig, pills: list[Pills] = (), title: dict | None = None) -> dict:
    """A plotly figure as the JSON plotly.js reads (numpy arrays as base64 "bdata"), drawn as
    the browser draws it: traces of a "show" pill that is off hidden, the title from its parts."""
    out = json.loads(pio.to_json(fig, validate=False))
    layout = out.setdefault("layout", {})
    layout["template"] = TEMPLATE
    on = shown_groups(pills)
    if on is not None:
        values = {v for p in pills if p.kind == "show" for v in p.values}
        for t in out.get("data", []):
            if t.get("meta") in values and t["meta"] not in on:
                t["visible"] = False
    if title is not None:
        layout["title"] = {**layout.get("title", {}), "text": title_text(title, on)}
    return out


def shown_groups(pills: list[Pills]) -> set | None:
    """The trace groups that "show" pills leave on (None: no such pill)."""
    show = [p for p in pills if p.kind == "show"]
    return {v for p in show for v in p.chosen} if show else None


def state(key: str, knob_size: int | None = None) -> tuple[int | None, dict[str, list]]:
    """What chart `key`'s browser last settled on: (its knob position, or None when it has not
    moved it or it is off the knob's `knob_size` positions; {pills name: values on}). Read
    before the chart is drawn, from the component's value in the session."""
    import streamlit as st

    value = st.session_state.get(key)
    if not isinstance(value, dict):
        return None, {}
    i = value.get("index")
    ok = isinstance(i, int) and (knob_size is None or 0 <= i < knob_size)
    pills = value.get("pills")
    return (i if ok else None), (pills if isinstance(pills, dict) else {})


def frame(
    fig=None,
    at: int = 0,
    layout: tuple[str, ...] = (),
    side: str | None = None,
    below: str | None = None,
    title: dict | None = None,
    whole: bool = False,
) -> dict:
    """What one knob position (or a "frames" pill choice) changes in the chart's figure:
    `fig`'s traces in place of the chart's traces at, at+1, ... (whole: all its traces, in
    place of every trace); `fig`'s layout keys `layout` (whole top-level keys: "title",
    "shapes", ...); the title in parts (title_arg); the HTML beside and under the chart.
    Independent of the position the server drew, so a page can cache its frames."""
    out: dict = {}
    if fig is not None:
        traces = json.loads(json.dumps([t.to_plotly_json() for t in fig.data], cls=_Encoder))
        out["data"] = {str(at + j): t for j, t in enumerate(traces)}
        if whole:  # every trace: a "frames" pill's figure replaces the chart's traces
            out["data"] = traces
        got = {k: fig.layout[k] for k in layout}
        out["layout"] = json.loads(
            json.dumps({k: v.to_plotly_json() if hasattr(v, "to_plotly_json") else v
                        for k, v in got.items()}, cls=_Encoder)
        )  # fmt: skip
    if title is not None:
        out["title"] = title
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
    pills: list[Pills] = (),
    title: dict | None = None,
) -> None:
    """Draw `fig` (and its knob, its pills above it, and HTML beside and under it); `title` in
    parts (title_arg) when "show" pills hide curves. What the browser settles on comes back
    through state(key) on the next run."""
    _component(
        figure=figure_json(fig, pills, title),
        config=CONFIG,
        knob=knob.as_arg() if knob else None,
        pills=[p.as_arg() for p in pills],
        title=title,
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
