"""The pages: file, title and URL path. main.py builds the navigation from this; pages switch with
`st.switch_page(PAGES["result"].file, query_params={"run": id})`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    file: str  # relative to app/main.py
    title: str
    url_path: str
    icon: str


PAGES = {
    "learn": PageSpec("views/learn.py", "Learn", "learn", ":material/school:"),
    "new": PageSpec("views/new_experiment.py", "New experiment", "new", ":material/science:"),
    "runs": PageSpec("views/runs.py", "Runs", "runs", ":material/list:"),
    "result": PageSpec("views/result.py", "Result", "result", ":material/monitoring:"),
    "compare": PageSpec("views/compare.py", "Compare", "compare", ":material/compare_arrows:"),
    "reproduction": PageSpec(
        "views/reproduction.py", "Reproduction", "reproduction", ":material/fact_check:"
    ),
}


HOME = "learn"  # the root address's page, always: see root_link_target


def root_link_target(url_path: str, query: dict) -> str | None:
    """The page a root address with a share link's query names (?run=ID the result,
    ?compare=... the comparison), or None.

    Why not make that page the default instead: Streamlit serves the default page at the root
    and nowhere else, so a page made default by the query could no longer be found at its own
    path, and /result?run=ID (or a reload of it) popped a "Page not found" dialog over the right
    page. So the root is always Learn, and main.py switches a root link to its page's own
    address."""
    if url_path:
        return None
    if "run" in query:
        return "result"
    if "compare" in query:
        return "compare"
    return None
