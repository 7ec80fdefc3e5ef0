"""The view on screen as URL query parameters, so that a share link opens the same view.

One home for the names and their parsing (Result, Compare and Learn all use it). No Streamlit
here: pages read `st.query_params.to_dict()` into a View with `read_view`, seed their widgets'
defaults from it, and write `view_params(view)` back into `st.query_params` after drawing, so the
address bar (and the share box, which shows `share_link`) always holds the view on screen.

Parameters (all optional; a missing or unreadable one falls back to the page's default and is
reported in View.problems, never raised: a mistyped link still opens the run):
    lam         UWO's lambda, a float in [0, LAM_MAX]                      lam=0.35
    members     ensemble members by index, comma separated                 members=0,2,3
    objectives  curves shown, comma separated from OBJECTIVES              objectives=wco,uwo
    x           the x axis, one of X_AXES                                  x=sqrt_kl
    show        toggles that are on, comma separated from TOGGLES          show=proxy,fits
    metric      what the y axis shows, one of METRICS (Compare)            metric=proxy
Compare also names direct alignment's curves by their loss in `objectives` (LOSSES).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

LAM_MAX = 10.0
OBJECTIVES = ("single", "mean", "wco", "uwo")
LOSSES = ("dpo", "ipo", "slic")  # a DPO curve's objective is its loss (Compare shows them)
METRICS = ("gold", "proxy")
X_AXES = ("kl", "sqrt_kl", "kl_exact", "sqrt_kl_exact", "n", "step")
TOGGLES = ("proxy", "fits", "se", "singles", "band")
KEYS = ("lam", "members", "objectives", "x", "show", "metric")


@dataclass(frozen=True)
class View:
    """What a page shows. None means "the page's default" (not written into the link)."""

    lam: float | None = None
    members: tuple[int, ...] | None = None
    objectives: tuple[str, ...] | None = None
    x: str | None = None
    show: frozenset[str] | None = None
    metric: str | None = None
    problems: tuple[str, ...] = field(default=(), compare=False)

    def with_(self, **changes) -> View:
        return replace(self, **changes)


def _list(raw: str) -> list[str]:
    return [p.strip() for p in str(raw).split(",") if p.strip()]


def read_view(query: Mapping[str, str], members_total: int | None = None) -> View:
    """The View a link asks for. `members_total` (K, when known) bounds the member indices."""
    problems: list[str] = []
    lam = members = objectives = x = show = metric = None
    if "lam" in query:
        try:
            lam = float(query["lam"])
            if not 0.0 <= lam <= LAM_MAX:
                raise ValueError
        except ValueError:
            problems.append(f"lam={query['lam']!r} is not a number in [0, {LAM_MAX:g}]")
            lam = None
    if "members" in query:
        try:
            got = sorted({int(p) for p in _list(query["members"])})
            top = members_total if members_total is not None else 10**6
            if not got or any(m < 0 or m >= top for m in got):
                raise ValueError
            members = tuple(got)
        except ValueError:
            span = f"0-{members_total - 1}" if members_total else "0, 1, 2, ..."
            problems.append(
                f"members={query['members']!r} is not a comma-separated list of members {span}"
            )
    if "objectives" in query:
        got = _list(query["objectives"])
        bad = [o for o in got if o not in OBJECTIVES + LOSSES]
        if bad or not got:
            problems.append(
                f"objectives={query['objectives']!r}: allowed are " + ", ".join(OBJECTIVES + LOSSES)
            )
        else:
            objectives = tuple(dict.fromkeys(got))
    if "x" in query:
        if query["x"] in X_AXES:
            x = query["x"]
        else:
            problems.append(f"x={query['x']!r}: allowed are {', '.join(X_AXES)}")
    if "show" in query:
        got = _list(query["show"])
        bad = [t for t in got if t not in TOGGLES]
        if bad:
            problems.append(f"show={query['show']!r}: allowed are {', '.join(TOGGLES)}")
        else:
            show = frozenset(got)
    if "metric" in query:
        if query["metric"] in METRICS:
            metric = query["metric"]
        else:
            problems.append(f"metric={query['metric']!r}: allowed are {', '.join(METRICS)}")
    return View(lam, members, objectives, x, show, metric=metric, problems=tuple(problems))


def view_params(view: View) -> dict[str, str]:
    """The query parameters of a view (only what differs from the page's default)."""
    out: dict[str, str] = {}
    if view.lam is not None:
        out["lam"] = f"{view.lam:g}"
    if view.members is not None:
        out["members"] = ",".join(str(m) for m in sorted(view.members))
    if view.objectives is not None:
        out["objectives"] = ",".join(view.objectives)
    if view.x is not None:
        out["x"] = view.x
    if view.show is not None:
        out["show"] = ",".join(t for t in TOGGLES if t in view.show)
    if view.metric is not None:
        out["metric"] = view.metric
    return out


def merged_query(query: Mapping[str, str], view: View) -> dict[str, str]:
    """`query` with its view parameters replaced by `view`'s (other parameters, such as run or
    compare, kept as they are)."""
    out = {k: v for k, v in query.items() if k not in KEYS}
    out.update(view_params(view))
    return out


def share_link(base_url: str, path: str, query: Mapping[str, str]) -> str:
    """The address of a page with its query: base_url "http://host:8501", path "result"."""
    base = base_url.rstrip("/")
    link = f"{base}/{path.strip('/')}" if path else base
    return f"{link}?{urlencode(dict(query), safe=',')}" if query else link
