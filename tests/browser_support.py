"""What the Learn page's browser test and benchmarks/bench_browser.py share: a Streamlit server
with an empty database (tests/test_e2e_browser.py's StreamlitServer), the browser, and what
"ready" and "redrawn" mean in a real page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.jobs_support import job_env, wait_for
from tests.test_e2e_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PLOTS,
    VIEWPORT,
    StreamlitServer,
)

LEARN_CHARTS = 1  # the open step's: step 1 (or step 3, opened by a link with its view)
RESULT_CHARTS = 1  # the curves (the Numbers tab it opens on draws none)

# Ready: the script has finished (Streamlit's own flag on the app's root) and at least n plotly
# charts are drawn (plotly has laid out each one and drawn its traces).
READY_JS = (
    "(n) => {"
    " const app = document.querySelector('[data-testid=stApp]');"
    " if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;"
    f" const plots = {PLOTS};"
    " if (plots.length < n) return false;"
    " return plots.every(p => p._fullLayout"
    " && p.querySelector('.scatterlayer .trace, .barlayer .trace'));"
    " }"
)


@contextmanager
def server(tmp: Path, env_extra: dict | None = None) -> Iterator[StreamlitServer]:
    """`streamlit run app/main.py` on its own database and data folder, healthy."""
    data = tmp / "data"
    db_url = f"sqlite:///{tmp / 'goodhart.sqlite3'}"
    env = {**job_env(data), "GOODHART_DB_URL": db_url, **(env_extra or {})}
    srv = StreamlitServer(env, tmp / "streamlit.log")
    srv.db_url, srv.data_dir = db_url, str(data)
    try:
        wait_for(srv.healthy, 120, "the Streamlit server's health check")
        yield srv
    finally:
        srv.stop()


def launch(pw):
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def open_ready(
    browser, url: str, charts: int, timeout_s: float = 60, context=None
) -> tuple[object, float]:
    """A new page on `url` (in a fresh browser context, or in `context`: a return visit whose
    assets are cached); (page, seconds until it was ready)."""
    page, marks = open_timed(browser, url, charts, timeout_s, context)
    return page, marks["ready"]


def open_timed(browser, url: str, charts: int, timeout_s: float = 60, context=None):
    """open_ready, with the seconds at which the page's shell was shown ("shell": Streamlit's
    app root is in the page), its script finished ("script") and it was ready ("ready")."""
    page = (context or browser.new_context(viewport=VIEWPORT)).new_page()
    ms = timeout_s * 1000
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')", timeout=ms)
    shell = time.perf_counter() - t0
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')"
        ".getAttribute('data-test-script-state') === 'notRunning'",
        timeout=ms,
        polling="raf",
    )
    script = time.perf_counter() - t0
    page.wait_for_function(READY_JS, arg=charts, timeout=ms, polling="raf")
    return page, {"shell": shell, "script": script, "ready": time.perf_counter() - t0}


def wait_title(page, text: str, timeout_s: float = 30) -> float:
    """Seconds until a chart whose title starts with `text` is drawn (polled every animation
    frame; tags in a title, such as <b>, are left out)."""
    t0 = time.perf_counter()
    page.wait_for_function(
        f"(t) => {PLOTS}.some(p => "
        "p._fullLayout && p._fullLayout.title && "
        "String(p._fullLayout.title.text).replace(/<[^>]+>/g, '').startsWith(t))",
        arg=text,
        timeout=timeout_s * 1000,
        polling="raf",
    )
    return time.perf_counter() - t0


def wait_trace(page, name: str, timeout_s: float = 30) -> float:
    """Seconds until some drawn chart has a trace called `name`."""
    t0 = time.perf_counter()
    page.wait_for_function(
        f"(n) => {PLOTS}.some(p => p._fullLayout && p.data && p.data.some(t => t.name === n))",
        arg=name,
        timeout=timeout_s * 1000,
        polling="raf",
    )
    return time.perf_counter() - t0


def open_tab(page, name: str, heading: str, charts: int = 1) -> None:
    """Click a tab (Learn's steps are tabs; only the open one is drawn) and wait until its
    heading is shown, the script has finished and its charts are drawn."""
    page.get_by_role("tab", name=name).click()
    page.get_by_role("heading", name=re.compile("^" + re.escape(heading))).wait_for()
    page.wait_for_function(READY_JS, arg=charts, timeout=60_000, polling="raf")
