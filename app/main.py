"""Goodhart Lab: `streamlit run app/main.py`.

The root address opens Learn; a root link with ?run=ID switches to that run's Result page
(/result?run=ID), with ?compare=ID1,ID2 to the Compare page (the share links; app/nav.py).
Pages live in app/views/. Who may submit, cancel and delete is app/access.py's
(GOODHART_ACCESS; docs/serving.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/main.py` puts app/ on sys.path, not the repository root that holds the
# backend, db and app packages.
REPO = str(Path(__file__).resolve().parent.parent)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from app import access  # noqa: E402
from app.nav import HOME, PAGES, root_link_target  # noqa: E402

st.set_page_config(page_title="Goodhart Lab", page_icon=":material/monitoring:", layout="wide")

pages = {
    name: st.Page(s.file, title=s.title, icon=s.icon, url_path=s.url_path, default=name == HOME)
    for name, s in PAGES.items()
}
navigation = st.navigation(list(pages.values()))
query = st.query_params.to_dict()
target = root_link_target(navigation.url_path, query)
if target:
    st.switch_page(pages[target], query_params=query)
access.sidebar()  # the access mode of a shared server, and its sign-in (app/access.py)
navigation.run()
