"""Goodhart Lab: `streamlit run app/main.py`.

The root address switches to Learn (/learn), a root link with ?run=ID to that run's Result page
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
    name: st.Page(s.file, title=s.title, icon=s.icon, url_path=s.url_path)
    for name, s in PAGES.items()
}


def root() -> None:
    """The root address: Learn, or the page a share link's query names (?run=, ?compare=)."""
    query = st.query_params.to_dict()
    st.switch_page(pages[root_link_target(query) or HOME], query_params=query)


# Streamlit serves its default page at the root only, so a default page could not be found at
# its own path (/learn?lam=0.3 popped "Page not found"). The default is therefore a hidden page
# that switches to the right one, and every page lives at its own address.
home = st.Page(root, title="Goodhart Lab", url_path="home", default=True, visibility="hidden")
navigation = st.navigation([home, *pages.values()])
access.sidebar()  # the access mode of a shared server, and its sign-in (app/access.py)
navigation.run()
