"""Page speed in a real browser: `python -m benchmarks.bench_browser [--runs 5]`.

A real Streamlit server (app/main.py) on an empty database holding one stored run (the shipped
toy-bon example), Debian's chromium through Playwright (tests/browser_support.py). Measures,
as medians (min, max) over --runs:
  - page ready: from navigation until the script has finished ("script") and every chart is
    drawn ("ready"), for Learn, a Result page and the Runs page (a baseline: Streamlit's own
    cost for a page with one small table), on a first visit (a fresh browser context: nothing
    cached) and a return visit (the same context: Streamlit's and plotly's scripts cached);
    the server is warmed by one visit of each first;
  - knob to redraw: from a key press on a chart's knob (app/plot.py) until the chart shows the
    new value: Learn's n (step 1), the second world of step 2 (a click on its button), Learn's
    lambda (step 3, from the shipped grid) and the Result page's lambda (from the curves the
    server computed ahead);
  - pill to redraw: a key press (Enter) on one of the Result chart's pills until the chart
    shows the change, redrawn in the browser from what the server sent with the chart: an
    objective (WCO) hidden or shown, a member (#1) left out or back.
--knobs-only skips the page timings.
Prints the figures and `uptime` (the machine is shared: read them with its load).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.browser_support import (
    LEARN_CHARTS,
    RESULT_CHARTS,
    VIEWPORT,
    launch,
    open_ready,
    open_tab,
    open_timed,
    server,
    wait_title,
    wait_trace,
)
from tests.test_e2e_browser import PLOTS, chart_pill, choice, knob

TARGET_READY_S = 2.0
TARGET_KNOB_S = 0.2


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} s ({min(xs):.3f}, {max(xs):.3f})"


def store_example(srv) -> str:
    """The shipped toy-bon example stored as a finished run of the server's database."""
    import os

    from tests.app_support import example, store_finished

    os.environ["GOODHART_DB_URL"] = srv.db_url
    os.environ["GOODHART_DATA_DIR"] = srv.data_dir
    result, arrays = example()
    return store_finished(result, arrays, name="toy-bon example")


def press_and_wait(page, thumb, key: str, wait) -> float:
    """Seconds from a key press on a focused knob (slider or radio button) until `wait()`
    returns."""
    thumb.focus()
    t0 = time.perf_counter()
    page.keyboard.press(key)
    wait()
    return time.perf_counter() - t0


WCO_SHOWN = f"() => ({PLOTS})[0].data.some(t => t.name === 'wco' && t.visible !== false)"
# The first chart's mean curve, as text: it changes when the members change.
MEAN_Y = (
    f"() => {{ const t = ({PLOTS})[0].data.find(t => t.name === 'mean'); "
    "return t ? JSON.stringify(Array.from(t.y)) : ''; }"
)


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--knobs-only", action="store_true", help="skip the page-ready timings")
    args = ap.parse_args(argv)
    print("load before:", uptime())
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp)) as srv, sync_playwright() as pw:
        eid = store_example(srv)
        learn, result = srv.url + "/", f"{srv.url}/result?run={eid}"  # the share box's address
        browser = launch(pw)
        try:
            for url, charts in ((learn, LEARN_CHARTS), (result, RESULT_CHARTS)):
                page, _ = open_ready(browser, url, charts, timeout_s=180)  # warm the server
                page.context.close()
            baseline = f"{srv.url}/runs"  # Streamlit's own cost: a page with one small table
            cached = browser.new_context(viewport=VIEWPORT)
            for _ in range(0 if args.knobs_only else args.runs):
                for name, url, charts in (
                    ("Learn", learn, LEARN_CHARTS),
                    ("Result", result, RESULT_CHARTS),
                    ("Runs (baseline)", baseline, 0),
                ):
                    for visit, context in (("first visit", None), ("return visit", cached)):
                        page, marks = open_timed(browser, url, charts, context=context)
                        for mark, seconds in marks.items():
                            if mark != "shell":
                                rows.setdefault(f"{name} {visit}: {mark}", []).append(seconds)
                        page.close() if context else page.context.close()

            # Knobs on Learn: n (step 1), then lambda (step 3), one slider step at a time.
            page, _ = open_ready(browser, learn, LEARN_CHARTS)
            n = knob(page, "n (answers drawn")
            shape_x = f"() => ({PLOTS})[0]._fullLayout.shapes[0].x0"
            for i in range(args.runs):
                key = "ArrowLeft" if i % 2 == 0 else "ArrowRight"
                before = page.evaluate(shape_x)
                moved = f"(b) => ({shape_x[6:]}) !== b"  # the n marker has moved
                rows.setdefault("Learn n step redrawn", []).append(
                    press_and_wait(
                        page,
                        n,
                        key,
                        lambda b=before, m=moved: page.wait_for_function(m, arg=b, polling="raf"),
                    )
                )
                page.wait_for_timeout(300)
            open_tab(page, "2 · Shared errors", "2 · Why", 2)
            worlds = ("toy-bon-pretrain", "toy-bon-clean")
            for i in range(args.runs):  # arrow keys move a radio group's choice
                now, then = worlds[i % 2], worlds[1 - i % 2]
                rows.setdefault("Learn world switch redrawn", []).append(
                    press_and_wait(
                        page,
                        choice(page, now).locator("input"),
                        "ArrowDown" if i % 2 == 0 else "ArrowUp",
                        lambda t=then: wait_title(page, f"{t}:"),
                    )
                )
                page.wait_for_timeout(300)
            open_tab(page, "3 · Objectives and λ", "3 · Conservative objectives")
            lam = knob(page, "UWO λ")
            for i in range(args.runs):
                want = f"UWO at λ = {0.5 + 0.05 * (i + 1):g}:"
                rows.setdefault("Learn λ step redrawn", []).append(
                    press_and_wait(page, lam, "ArrowRight", lambda w=want: wait_title(page, w))
                )
                page.wait_for_timeout(300)
            page.context.close()

            # The Result page's lambda: new values (computed, or ahead in the background).
            page, _ = open_ready(browser, result, RESULT_CHARTS)
            lam = knob(page, "UWO λ")
            for i in range(args.runs):
                want = f"uwo (lambda={0.5 + 0.05 * (i + 1):g})"
                rows.setdefault("Result λ step redrawn", []).append(
                    press_and_wait(page, lam, "ArrowRight", lambda w=want: wait_trace(page, w))
                )
                page.wait_for_timeout(300)
            # The chart's pills (app/plot.py Pills), pressed with the keyboard: an objective shown
            # or hidden, a member left out or back. Each press toggles, so the runs alternate
            # between two states; a probe reads what the press changes (whether the WCO curve
            # is shown, the mean curve's values).
            for name, label, probe in (
                ("Result objective pill redrawn", "wco", WCO_SHOWN),
                ("Result member pill redrawn", "#1", MEAN_Y),
            ):
                for _ in range(args.runs):
                    before = page.evaluate(probe)
                    rows.setdefault(name, []).append(
                        press_and_wait(
                            page,
                            chart_pill(page, label),
                            "Enter",
                            lambda b=before, p=probe: page.wait_for_function(
                                f"(b) => ({p})() !== b", arg=b, polling="raf"
                            ),
                        )
                    )
                    page.wait_for_timeout(300)
            page.context.close()
        finally:
            browser.close()
    print(f"\n{'what':40} median (min, max) over {args.runs} runs   target")
    for name, xs in rows.items():
        target = TARGET_KNOB_S if "redrawn" in name else TARGET_READY_S
        goal = f"<= {target:g} s" if "ready" in name or "redrawn" in name else ""
        print(f"{name:40} {fmt(xs):28} {goal}")
    print("\nload after:", uptime())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
