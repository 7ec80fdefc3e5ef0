"""Goodhart Lab: `streamlit run app/main.py`.

The root address opens Learn; with ?run=ID it opens that run's Result page, with
?compare=ID1,ID2 the Compare page (the share links). Pages live in app/views/. Who may submit,
cancel and delete is app/access.py's (GOODHART_ACCESS; docs/serving.md).
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
from app.nav import PAGES, default_page  # noqa: E402

st.set_page_config(page_title="Goodhart Lab", page_icon=":material/monitoring:", layout="wide")

home = default_page(st.query_params.to_dict())
pages = [
    st.Page(s.file, title=s.title, icon=s.icon, url_path=s.url_path, default=name == home)
    for name, s in PAGES.items()
]
navigation = st.navigation(pages)
access.sidebar()  # the access mode of a shared server, and its sign-in (app/access.py)
navigation.run()
