"""User text (run names, ids from a link, paths, model names, messages that quote them) shown as
the text it is: never as Markdown, HTML, a Streamlit directive or LaTeX.

Streamlit renders the text of st.title, st.markdown, st.caption, st.info/warning/error and
labels as Markdown, so `?run=![x](http://host/p.png)` would make every visitor's browser fetch
that address; plotly renders a few HTML tags (<a href>, <b>) in legend names. Widget options
(selectbox, multiselect) and dataframe cells are plain text already.
"""

from __future__ import annotations

import html
import re

# What Markdown (GitHub's), Streamlit's directives (:red[...]) and LaTeX ($) could read in a line:
# links, images, HTML, emphasis, code, tables, strikethrough, headings; then the bare autolinks
# GitHub adds (http://..., www...., user@host) and a list marker at the start. Other punctuation
# stays as it is, so ordinary text ("toy-bon (preset)", "0.5") keeps its exact source.
_SPECIAL = re.compile(r"[\\`*_\[\]<>!#|~$]")
_AUTOLINK = re.compile(r"://|www\.|@", re.IGNORECASE)
_LIST_START = re.compile(r"^(\d+[.)]|[-+])")


def _escape_last(m: re.Match) -> str:
    return m[0][:-1] + "\\" + m[0][-1]


def md(text: object) -> str:
    """`text` for a Markdown element, shown literally (line breaks become spaces)."""
    out = " ".join(str(text).split())
    out = _SPECIAL.sub(lambda m: "\\" + m[0], out)
    out = _AUTOLINK.sub(_escape_last, out)  # ":/\/", "www\.", "\@"
    return _LIST_START.sub(_escape_last, out)


def plotly(text: object) -> str:
    """`text` for a plotly legend or title, shown literally."""
    return html.escape(str(text), quote=False)
