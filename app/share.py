"""The share box: the link of the view on screen, with a Copy button (assets/link/, a Streamlit
component spoken to by hand, as app/plot.py's charts).

Why not st.code: its element loads Streamlit's syntax highlighter, the largest piece of a Result
page's work in the browser (benchmarks/bench_browser.py; docs/benchmarks.md has the figures).
"""

from __future__ import annotations

from pathlib import Path

import streamlit.components.v1 as components

FRONTEND = Path(__file__).resolve().parent.parent / "assets" / "link"
_component = components.declare_component("goodhart_link", path=str(FRONTEND))


def box(link: str, key: str) -> None:
    """Draw the share box holding `link` (in the current container)."""
    _component(link=link, key=key, default=None)
