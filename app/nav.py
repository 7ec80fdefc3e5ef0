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


HOME = "learn"  # where the root address goes (main.py's hidden root page)


def root_link_target(query: dict) -> str | None:
    """The page a root address with a share link's query names (?run=ID the result,
    ?compare=... the comparison), or None (then Learn)."""
    if "run" in query:
        return "result"
    if "compare" in query:
        return "compare"
    return None
