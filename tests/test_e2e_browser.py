"""A real browser (Debian's chromium, driven by Playwright) against a real Streamlit server and a
real worker: submit a small experiment through the form, wait for it, check the chart, move the
lambda slider, open the share link in a fresh browser context; then a DPO run through the form
beside best-of-n and PPO runs of the same pairs on one Compare plot. Saves the README's and
docs/dpo.md's screenshots to docs/screenshots/. Skipped only when /usr/bin/chromium is missing
(CI installs it)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app.form import config_fields
from tests.jobs_support import REPO, WorkerProcess, job_env, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1100}
# Small enough for a shared CPU (about half a minute), big enough for readable curves.
FORM = {
    # Enough training (3 members x 63 steps x 40 epochs, about 3.5 s each, all three at once on
    # 2 cores: about 5 s) that the run is still going when the page is photographed running,
    # 1.5 s after it first shows.
    "preferences.pairs": "4000",
    "preferences.eval_pairs": "200",
    "reward_models.members": "3",
    "reward_models.epochs": "40",
    "bon.num_prompts": "8",
    "bon.samples": "512",
}
RUN_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run app/main.py` on a free port, logging to a file."""

    def __init__(self, env: dict, log: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._out = log.open("w")  # closed in stop()
        self.log = log
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "streamlit", "run", "app/main.py"),
                *("--server.headless", "true", "--server.fileWatcherType", "none"),
                *("--server.port", str(self.port), "--browser.gatherUsageStats", "false"),
                *extra_args,
            ],
            cwd=REPO,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"streamlit exited:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                return r.read().strip() == b"ok"
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


@pytest.fixture
def stack(tmp_path):
    """A worker and a Streamlit server sharing one database and data folder."""
    data = tmp_path / "data"
    db_url = f"sqlite:///{tmp_path / 'goodhart.sqlite3'}"
    env = job_env(data)
    worker = WorkerProcess(db_url, env, tmp_path / "worker.log")
    server = StreamlitServer({**env, "GOODHART_DB_URL": db_url}, tmp_path / "streamlit.log")
    server.db_url, server.data_dir = db_url, str(data)  # for tests that also submit directly
    try:
        worker.wait_ready()
        wait_for(server.healthy, 120, "the Streamlit server's health check")
        yield server, worker
    finally:
        server.stop()
        worker.stop()


# The page's plotly charts: each is drawn in its own iframe (app/plot.py's component, served
# from this origin, so the page can read it).
PLOTS = (
    "[document, ...Array.from(document.querySelectorAll('iframe')).map(f => f.contentDocument)]"
    ".filter(Boolean).flatMap(d => Array.from(d.querySelectorAll('.js-plotly-plot')))"
)
PLOT = f"({PLOTS})[0]"
TRACE_NAMES = f"() => {PLOT}.data.map(t => t.name)"
# The link in the page's share box (app/share.py: a frame of its own).
SHARE_LINK = (
    "() => Array.from(document.querySelectorAll('iframe')).map(f => f.contentDocument)"
    ".filter(Boolean).map(d => d.querySelector('#link')?.textContent).find(Boolean) || ''"
)


def knob(page, label: str):
    """The range input of the chart knob labelled `label` (keyboard-movable), in whichever
    chart's frame has it."""
    for frame in page.frames:
        found = frame.locator(f"input[aria-label^={json.dumps(label, ensure_ascii=False)}]")
        if found.count():
            return found.first
    raise AssertionError(f"no chart knob labelled {label!r}")


def choice(page, text: str):
    """The radio button of a chart's radio knob whose label starts with `text`."""
    for frame in page.frames:
        found = frame.locator("#choice label").filter(has_text=text)
        if found.count():
            return found.first
    raise AssertionError(f"no chart knob button {text!r}")


def chart_pill(page, label: str):
    """The pill (a toggle button above a chart, app/plot.py Pills) whose text is `label`."""
    exact = re.compile("^" + re.escape(label) + "$")
    for frame in page.frames:
        found = frame.locator("#pills button").filter(has_text=exact)
        if found.count():
            return found.first
    raise AssertionError(f"no chart pill {label!r}")


def knob_shown(page, label: str) -> str:
    """The value the knob labelled `label` shows beside its label."""
    return knob(page, label).locator("xpath=..").locator("#value").inner_text()


def page_text(page) -> str:
    """The text of the page and of its charts' frames (their sentences and tables)."""
    parts = []
    for frame in page.frames:
        try:
            parts.append(frame.inner_text("body", timeout=5_000))
        except Exception:  # a frame that went away while reading
            continue
    return "\n".join(parts)


def wait_text(page, text: str, timeout_s: float = 30) -> None:
    """Until `text` is on the page or in one of its charts' frames."""
    deadline = time.monotonic() + timeout_s
    while text not in page_text(page):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not on the page after {timeout_s} s")
        page.wait_for_timeout(100)


def copied_link(page) -> str:
    """Click the share box's Copy button; the link it put on the clipboard (the browser context
    is given the clipboard permissions a person's browser grants a click)."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    for frame in page.frames:
        button = frame.locator("#copy")
        if button.count():
            button.click()
            frame.get_by_text("Copied").wait_for()
            return page.evaluate("() => navigator.clipboard.readText()")
    raise AssertionError("no share box on the page")


def script_idle(page, timeout_s: float = 60) -> None:
    """Until the page's script has finished (Streamlit's own flag on the app's root)."""
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')"
        ".getAttribute('data-test-script-state') === 'notRunning'",
        timeout=timeout_s * 1000,
    )


def fill_field(page, label: str, value: str, tries: int = 3) -> None:
    """Type `value` into the form's field `label` and commit it with Enter, as a person would,
    once the rerun of the previous field is done; until the field shows it after its own rerun.
    Typed while a rerun was still redrawing the form, a value was seen replaced by the field's
    old one (once in a full run on a busy machine): then it is typed again. (Committing with Tab
    instead once moved the keyboard's focus on to the world's select box, whose choice then
    changed to "hf".)"""
    field = f"document.querySelector('input[aria-label={json.dumps(label)}]')"
    for _ in range(tries):
        script_idle(page)
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(100)  # the rerun starts
        script_idle(page)
        if page.evaluate(f"() => {field}.value") == value:
            return
    raise AssertionError(f"the field {label!r} does not keep {value!r}")


def submit(page) -> None:
    """Click the form's Submit once the form's script has finished (the button is disabled while
    the form shows a config error: then fail with that error's text)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000
    )
    button = page.get_by_role("button", name="Submit", exact=True)
    deadline = time.monotonic() + 30  # a rerun of the last field may still be on its way
    while button.is_disabled():
        if time.monotonic() > deadline:
            alerts = page.locator("[data-testid=stAlert]").all_inner_texts()
            fields = page.evaluate(
                "() => Array.from(document.querySelectorAll('input[aria-label]'))"
                ".map(i => i.getAttribute('aria-label') + ' = ' + i.value)"
            )
            raise AssertionError(f"Submit is disabled; the form says: {alerts}; fields: {fields}")
        page.wait_for_timeout(200)
    button.click()


def wait_chart(page, min_traces: int, timeout_s: float = 60) -> list[str]:
    page.wait_for_function(
        f"() => {PLOT} && {PLOT}.data && {PLOT}.data.length >= {min_traces}",
        timeout=timeout_s * 1000,
    )
    return page.evaluate(TRACE_NAMES)


def wait_until(check, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def trace_y(page, name: str) -> list[float]:
    find = f"{PLOT}.data.find(t => t.name === {json.dumps(name)})"
    return page.evaluate(f"() => Array.from({find}.y)")


def test_submit_watch_explore_and_share_in_a_real_browser(stack):
    from playwright.sync_api import sync_playwright

    server, worker = stack
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)

            # Learn: real curves at once, without any run.
            page.goto(server.url)
            names = wait_chart(page, 1)  # step 1 (tests/test_e2e_learn.py has the rest)
            assert "single #0" in names

            # New experiment: fill the form, submit.
            page.get_by_role("link", name="New experiment").click()
            page.get_by_role("heading", name="New experiment").wait_for()
            script_idle(page)  # the form's first run has drawn every field
            fill_field(page, "Name (optional)", "browser test")
            fill(page, FORM)
            submit(page)
            page.wait_for_url(re.compile(r"/result\?run=[a-z0-9]{12}$"), timeout=30_000)
            eid = page.url.rsplit("run=", 1)[1]

            # Result: it updates itself until done, with elapsed time and time left, then draws
            # the curves.
            page.get_by_role("heading", name="browser test").wait_for()
            running = page.get_by_text("estimated from the progress so far")
            running.wait_for(timeout=RUN_TIMEOUT_S * 1000)
            # Photographed while the proxies train, once the time left is known.
            left = page.get_by_text(re.compile(r", about .+ left")).first
            training = page.get_by_text(re.compile(r"running: training proxy")).first
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while running.is_visible() and time.monotonic() < deadline:
                if left.is_visible() and training.is_visible():
                    break
                page.wait_for_timeout(100)
            page.wait_for_timeout(800)  # the bar slides to its value (the photo showed it short)
            assert running.is_visible(), "the run ended before its running page was photographed"
            assert left.is_visible(), "the running page never said how long is left"
            page.screenshot(path=str(SCREENSHOTS / "result-running.png"))
            names = wait_chart(page, 10, timeout_s=RUN_TIMEOUT_S)
            # Single members as one average with a band (3 members: no "single #3").
            assert {"single members (average)", "mean", "mean · proxy", "wco"} <= set(names)
            assert "uwo (lambda=0.5)" in names and "single #0" not in names

            # Move the lambda slider: UWO is recomputed from the stored score matrix.
            before = trace_y(page, "uwo (lambda=0.5)")
            mean_before = trace_y(page, "mean")
            knob(page, "UWO λ").focus()  # the chart's knob (app/plot.py)
            for _ in range(4):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(
                f"() => {PLOT}.data.some(t => t.name === 'uwo (lambda=0.7)')", timeout=30_000
            )
            after = trace_y(page, "uwo (lambda=0.7)")
            assert after != before
            assert trace_y(page, "mean") == mean_before

            # The share link holds the view (lambda 0.7); a fresh browser context shows it.
            page.wait_for_function(f"() => ({SHARE_LINK})().includes('lam=0.7')")
            link = copied_link(page)  # as a person takes it: the share box's Copy button
            assert link == f"{server.url}/result?run={eid}&lam=0.7"
            fresh = browser.new_context(viewport=VIEWPORT).new_page()
            fresh.goto(link)
            fresh.get_by_role("heading", name="browser test").wait_for()
            fresh_names = wait_chart(fresh, 10)
            assert "uwo (lambda=0.7)" in fresh_names and "uwo (lambda=0.5)" not in fresh_names
            assert trace_y(fresh, "uwo (lambda=0.7)") == after
            assert trace_y(fresh, "mean") == mean_before
            fresh.wait_for_timeout(1000)
            fresh.screenshot(path=str(SCREENSHOTS / "result.png"))

            # The chart's pills redraw in the browser: member #1 left out changes the mean at
            # once, WCO hidden is hidden; the share link then holds them, and opens them.
            chart_pill(page, "#1").click()
            wait_until(lambda: trace_y(page, "mean") != mean_before, "the mean without #1")
            mean_without = trace_y(page, "mean")
            chart_pill(page, "wco").click()
            wco_hidden = f"() => {PLOT}.data.find(t => t.name === 'wco').visible === false"
            page.wait_for_function(wco_hidden)
            page.wait_for_function(f"() => ({SHARE_LINK})().includes('objectives=')")
            link = copied_link(page)
            assert link == (
                f"{server.url}/result?run={eid}&lam=0.7&members=0,2&objectives=single,mean,uwo"
            )
            fresh = browser.new_context(viewport=VIEWPORT).new_page()
            fresh.goto(link)
            fresh.get_by_role("heading", name="browser test").wait_for()
            wait_chart(fresh, 10)
            assert trace_y(fresh, "mean") == mean_without
            assert fresh.evaluate(wco_hidden)
            fresh.wait_for_timeout(500)
            fresh.screenshot(path=str(SCREENSHOTS / "result-pills.png"))

            # Runs: the finished run with its duration.
            page.goto(f"{server.url}/runs")
            page.locator("[data-testid=stDataFrame]").first.wait_for()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SCREENSHOTS / "runs-times.png"))
        finally:
            browser.close()
    assert eid in worker.events("done"), worker.text()
    assert os.path.getsize(SCREENSHOTS / "learn.png") > 10_000
    assert time.time() - os.path.getmtime(SCREENSHOTS / "result.png") < 600


# The three ways to optimize against the same preference pairs, small: best-of-n and PPO go to the
# queue directly, DPO through the form (its preset, then the same data sizes as best-of-n's).
SHARED = {"preferences.pairs": 600, "preferences.eval_pairs": 200, "reward_models.members": 3}
DPO_FORM = {"preferences.pairs": "600", "preferences.eval_pairs": "200", "dpo.batch_size": "32"}


def fill(page, values: dict[str, str]) -> None:
    """Type values into the form's fields (found by their labels, as the form writes them)."""
    labels = {f.dotted: f.label for f in config_fields()}
    for dotted, value in values.items():
        fill_field(page, labels[dotted], value)
    script_idle(page)


def test_dpo_beside_best_of_n_and_ppo_in_a_real_browser(stack, monkeypatch):
    from playwright.sync_api import sync_playwright

    from backend.config import ExperimentConfig
    from db import api

    server, worker = stack
    monkeypatch.setenv("GOODHART_DB_URL", server.db_url)
    monkeypatch.setenv("GOODHART_DATA_DIR", server.data_dir)
    bon = api.submit(
        ExperimentConfig().replace(**SHARED, **{"bon.num_prompts": 8, "bon.samples": 512}),
        name="best-of-n",
    )
    ppo_changes = {"ppo.steps": 30, "ppo.batch_size": 32, "ppo.eval_samples": 32}
    ppo = api.submit(
        ExperimentConfig(method="ppo").replace(
            **SHARED, **ppo_changes, **{"ppo.norm_samples": 512}
        ),
        name="PPO",
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server.url)
            wait_chart(page, 1)  # the Learn page is up: its links now answer a click
            page.get_by_role("link", name="New experiment").click()
            page.get_by_role("heading", name="New experiment").wait_for(timeout=90_000)
            script_idle(page)
            page.get_by_role("button", name="toy-dpo", exact=True).click()
            page.get_by_role("heading", name="Direct alignment (DPO, IPO, SLiC)").wait_for()
            script_idle(page)
            fill_field(page, "Name (optional)", "DPO")
            fill(page, DPO_FORM)
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOTS / "new-dpo.png"), full_page=True)
            submit(page)
            page.wait_for_url(re.compile(r"/result\?run=[a-z0-9]{12}$"), timeout=30_000)
            dpo = page.url.rsplit("run=", 1)[1]
            page.get_by_role("heading", name="DPO").wait_for()
            names = wait_chart(page, 2, timeout_s=RUN_TIMEOUT_S)
            assert any(n.startswith("DPO, beta=") for n in names)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SCREENSHOTS / "result-dpo.png"), full_page=True)

            wait_for(
                lambda: all(api.get_experiment(i)["status"] == "done" for i in (bon, ppo)),
                RUN_TIMEOUT_S,
                "the best-of-n and PPO runs",
                worker,
            )
            page.goto(f"{server.url}/?compare={bon},{ppo},{dpo}")
            names = wait_chart(page, 5)
            assert {n.split(" · ")[0] for n in names} == {"best-of-n", "PPO", "DPO"}
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SCREENSHOTS / "compare-methods.png"), full_page=True)
        finally:
            browser.close()
    assert dpo in worker.events("done"), worker.text()


@pytest.fixture
def server_only(tmp_path, monkeypatch):
    """A Streamlit server (no worker) on a database this test process also writes to."""
    from tests.app_support import use_temp_db

    db_url = use_temp_db(tmp_path, monkeypatch)
    env = {**job_env(tmp_path / "data"), "GOODHART_DB_URL": db_url}
    server = StreamlitServer(env, tmp_path / "streamlit.log")
    try:
        wait_for(server.healthy, 120, "the Streamlit server's health check")
        yield server
    finally:
        server.stop()


def no_page_not_found(page, url: str, heading: str | None) -> None:
    """Open url, wait for the page's heading (any title when None) and its script to finish:
    no "Page not found" dialog."""
    page.goto(url)
    title = page.get_by_role("heading", name=heading) if heading else page.locator("h1")
    title.first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000
    )
    page.wait_for_timeout(500)
    assert page.get_by_text("Page not found").count() == 0, url
    assert page.locator("[role=dialog]").count() == 0, url


def test_no_page_not_found_dialog_for_addresses_with_a_query(server_only):
    from playwright.sync_api import sync_playwright

    from tests.app_support import example, store_finished

    result, arrays = example()
    a = store_finished(result, arrays, name="run a")
    b = store_finished(result, arrays, name="run b")
    u = server_only.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            for path, heading in [
                (f"/result?run={a}", "run a"),
                (f"/compare?compare={a},{b}", "Compare runs"),
                (f"/?run={a}", "run a"),
                (f"/?compare={a},{b}", "Compare runs"),
                ("/runs", "Runs"),
                ("/result", "Result"),
                ("/", None),
                ("/learn?lam=0.3", None),
                ("/learn", None),
            ]:
                no_page_not_found(page, u + path, heading)
            # A root share link lands on the page's own address, which reloads without a dialog.
            page.goto(f"{u}/?run={a}")
            page.wait_for_url(re.compile(rf"/result\?run={a}$"), timeout=30_000)
            page.reload()
            no_page_not_found(page, page.url, "run a")
            # A fresh install's Reproduction page shows the shipped claims, labelled as shipped.
            no_page_not_found(page, f"{u}/reproduction", "Reproduction")
            page.get_by_text("Shipped report: full suite, 3 seeds").wait_for()
            assert page.get_by_text("Measured when this version was written").count() == 1
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SCREENSHOTS / "reproduction-shipped.png"), full_page=True)
        finally:
            browser.close()


def test_seed_band_view_link_estimate_and_times_in_a_real_browser(server_only):
    """Compare draws three seeds of one config as one band; a changed metric goes into the
    address and the share box, and the link opens the same view in a fresh context. The form
    shows its cost estimate."""
    import copy

    from playwright.sync_api import sync_playwright

    from tests.app_support import example, store_finished

    result, arrays = example()
    ids = []
    for seed in range(3):
        r = copy.deepcopy(result)
        r["config"]["seed"] = seed
        for c in r["curves"]:
            for p in c["points"]:
                p["gold"] += 0.15 * (seed - 1)  # the seeds differ, so the band has a width
        ids.append(store_finished(r, arrays, name="toy-bon"))
    u = server_only.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{u}/compare?compare={','.join(ids)}")
            names = wait_chart(page, 3)
            assert (
                "toy-bon · 3 seeds · mean" in names and "toy-bon · 3 seeds · mean · band" in names
            )
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SCREENSHOTS / "compare-seeds.png"), full_page=True)
            page.get_by_text("proxy", exact=True).first.click()
            page.wait_for_url(re.compile(r"metric=proxy"), timeout=30_000)
            page.wait_for_function(
                f"() => {PLOT}.layout.yaxis.title.text.startsWith('proxy')", timeout=30_000
            )
            page.wait_for_function(f"() => ({SHARE_LINK})().includes('metric=proxy')")
            link = page.evaluate(SHARE_LINK)
            assert link.startswith(f"{u}/compare?compare=") and "metric=proxy" in link
            fresh = browser.new_context(viewport=VIEWPORT).new_page()
            fresh.goto(link)
            assert "toy-bon · 3 seeds · mean" in wait_chart(fresh, 3)
            fresh.wait_for_function(
                f"() => {PLOT}.layout.yaxis.title.text.startsWith('proxy')", timeout=30_000
            )
            assert fresh.get_by_text("Page not found").count() == 0

            page.goto(f"{u}/new")
            estimate = page.get_by_text("Estimated time: about")
            estimate.wait_for(timeout=60_000)
            assert page.get_by_text("5 of 5 proxies to train").count() >= 1
            page.get_by_role("button", name="Submit", exact=True).scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOTS / "new-estimate.png"), full_page=True)

        finally:
            browser.close()
