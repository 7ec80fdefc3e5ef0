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
# links, images, HTML, emphasis, code, tables, strikethrough, headings, and a list marker at the
# start; backslash escapes defuse those. Other punctuation stays as it is, so ordinary text
# ("toy-bon (preset)", "0.5") keeps its exact source.
_SPECIAL = re.compile(r"[\\`*_\[\]<>!#|~$]")
_LIST_START = re.compile(r"^(\d+[.)]|[-+])")
# GitHub's bare autolinks (http://..., www...., user@host) are found in the text after escapes
# are read, so no escape stops them: an invisible word joiner inside the pattern does.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def md(text: object) -> str:
    """`text` for a Markdown element, shown literally (line breaks become spaces)."""
    out = " ".join(str(text).split())
    out = _SPECIAL.sub(lambda m: "\\" + m[0], out)
    out = _LIST_START.sub(lambda m: m[0][:-1] + "\\" + m[0][-1], out)
    return _AUTOLINK.sub(WORD_JOINER, out)


def plotly(text: object) -> str:
    """`text` for a plotly legend or title, shown literally."""
    return html.escape(str(text), quote=False)
