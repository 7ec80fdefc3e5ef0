"""Helpers for the app tests: a temporary database and real results stored in it."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
MAIN = str(REPO / "app" / "main.py")
EXAMPLE_JSON = REPO / "assets" / "examples" / "toy-bon.json"
EXAMPLE_NPZ = REPO / "assets" / "examples" / "toy-bon.npz"
TIMEOUT = 60  # AppTest's per-run timeout: the first run imports torch


def use_temp_db(tmp_path: Path, monkeypatch) -> str:
    """Point this process's database and data folder at tmp_path; returns the database URL."""
    url = f"sqlite:///{tmp_path / 'goodhart.sqlite3'}"
    monkeypatch.setenv("GOODHART_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GOODHART_DB_URL", url)
    monkeypatch.delenv("GOODHART_REDIS_URL", raising=False)
    return url


def example() -> tuple[dict, dict]:
    """The real best-of-n result shipped with the app (assets/examples/)."""
    result = json.loads(EXAMPLE_JSON.read_text())
    with np.load(EXAMPLE_NPZ, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return result, arrays


def store_finished(result: dict, arrays: dict, name: str | None = None) -> str:
    """Submit the result's config and finish it with the result, as a worker would."""
    from backend.config import ExperimentConfig
    from db import api, jobs

    eid = api.submit(ExperimentConfig.from_dict(result["config"]), name=name)
    assert jobs.claim(eid, "test:1") is not None
    assert jobs.finish(eid, "test:1", result, arrays)
    return eid


def app_test(query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at


def open_page(page: str):
    """The app switched to `page` (e.g. "views/runs.py"), run, without exceptions."""
    at = app_test().run()
    at.switch_page(page).run()
    no_exceptions(at)
    return at


def charts(at) -> list:
    """The page's charts (app/plot.py's component), in page order."""
    return [e for e in at.get("component_instance") if e.proto.component_name.endswith("plot")]


class _Tables(HTMLParser):
    """The <table>s of an HTML string: header and rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def html_tables(at) -> list[pd.DataFrame]:
    """The tables the page draws as HTML (app/tables.py html_table), as a person reads them:
    the first row names the columns; a cell that reads as a number is that number, others
    (such as "80%") their text."""

    def value(text: str):
        try:
            return float(text.replace(",", ""))
        except ValueError:
            return text

    out = []
    for element in at.get("html"):
        parser = _Tables()
        parser.feed(element.proto.body)
        for head, *rows in parser.tables:
            out.append(pd.DataFrame([[value(c) for c in r] for r in rows], columns=head))
    return out


def share_links(at) -> list[str]:
    """The links the page's share boxes hold (app/share.py)."""
    return [
        json.loads(e.proto.json_args)["link"]
        for e in at.get("component_instance")
        if e.proto.component_name.endswith("goodhart_link")
    ]


def chart_args(at, index: int = 0) -> dict:
    """What the index-th chart was sent: figure, knob, side and below (app/plot.py)."""
    return json.loads(charts(at)[index].proto.json_args)


def chart_by_key(at, key: str) -> dict:
    """chart_args of the chart with this widget key."""
    for e in charts(at):
        if e.proto.id.endswith("-" + key):
            return json.loads(e.proto.json_args)
    raise AssertionError(f"no chart with key {key!r}")


def figure(at, index: int = 0) -> dict:
    """The plotly figure (JSON) of the index-th chart on the page, at the knob position the
    server drew it."""
    return chart_args(at, index)["figure"]


def _reported(args: dict, index: int | None = None, **pills) -> dict:
    """The component's value as assets/plot/plot.js sends it: the knob position and the pills
    on, those not given as the server drew them."""
    knob = args.get("knob")
    on = {p["name"]: list(p["chosen"]) for p in args.get("pills") or []}
    on.update({name: list(values) for name, values in pills.items()})
    return {"index": index if index is not None else (knob or {}).get("index"), "pills": on}


def move_knob(at, key: str, value: str):
    """Move the knob of chart `key` to the position shown as `value`, as the browser reports
    it (the component's value: the position's index and the pills), and rerun."""
    args = chart_by_key(at, key)
    at.session_state[key] = _reported(args, args["knob"]["values"].index(value))
    return at.run()


def set_pills(at, key: str, name: str, values: list):
    """Click chart `key`'s pills `name` until `values` are on, as the browser reports it, and
    rerun."""
    at.session_state[key] = _reported(chart_by_key(at, key), **{name: values})
    return at.run()


def pills_on(at, key: str, name: str) -> list:
    """The values of chart `key`'s pills `name` that are on, as the server drew them."""
    return next(p["chosen"] for p in chart_by_key(at, key)["pills"] if p["name"] == name)


def shown_names(fig: dict) -> set[str]:
    """The names of the traces a figure shows (a pill that is off hides its curves' traces)."""
    return {t["name"] for t in fig["data"] if t.get("visible", True) is not False}


def knob_value(at, key: str) -> str:
    """The knob position chart `key` is drawn at, as shown."""
    knob = chart_by_key(at, key)["knob"]
    return knob["values"][knob["index"]]


def chart_text(at) -> str:
    """The words beside and under every chart (their HTML as text)."""
    import html
    import re

    parts = []
    for i in range(len(charts(at))):
        a = chart_args(at, i)
        parts += [a.get("side") or "", a.get("below") or ""]
    return html.unescape(re.sub(r"<[^>]+>", "", " ".join(parts)))


def framed(fig: dict, frame: dict, on: set | None = None) -> dict:
    """A figure with a knob or pill frame applied, as assets/plot/plot.js applies it (`on`: the
    groups the objectives pill shows, for a title in parts)."""
    from app.plot import title_text

    if isinstance(frame.get("data"), list):
        data = list(frame["data"])
    else:
        data = list(fig["data"])
        for j, t in frame.get("data", {}).items():
            data[int(j)] = t
    if on is not None:
        hidden = [t.get("meta") is not None and t["meta"] not in on for t in data]
        data = [{**t, "visible": False} if h else t for t, h in zip(data, hidden, strict=True)]
    layout = {**fig["layout"], **frame.get("layout", {})}
    if "title" in frame:
        layout["title"] = {**layout.get("title", {}), "text": title_text(frame["title"], on)}
    return {"data": data, "layout": layout}


def trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t.get("name") == name)


def values(data) -> list:
    """A trace's x or y as a list (plotly writes numpy arrays as base64 "bdata")."""
    if isinstance(data, dict) and "bdata" in data:
        import base64

        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
