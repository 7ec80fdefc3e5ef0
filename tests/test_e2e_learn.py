"""The Learn page in a real browser (Debian's chromium, Playwright) on a real Streamlit server: the
five steps are there, a step's sentence carries the stored result's numbers, moving lambda puts
it in the address, and that link opened in a fresh browser context shows the same lambda. Saves
the Learn screenshots (docs/screenshots/learn*.png). Skipped only without /usr/bin/chromium."""

from __future__ import annotations

import re

import pytest

from app import examples, lessons
from tests.browser_support import (
    LEARN_CHARTS,
    launch,
    open_ready,
    server,
    slider,
    wait_title,
)
from tests.test_e2e_browser import CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium")
STEPS = [
    "1 · One proxy",
    "2 · Why",
    "3 · Conservative objectives",
    "4 · Label noise",
    "5 · Not only",
]


def shoot(page, heading: str, name: str) -> None:
    """A screenshot of the viewport with `heading` at its top (Streamlit scrolls its main
    block, not the window, so a full-page screenshot would show the first screen only)."""
    head = page.get_by_role("heading", name=re.compile("^" + re.escape(heading)))
    head.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_learn_steps_sentences_lambda_link_and_screenshots(tmp_path):
    from playwright.sync_api import sync_playwright

    noisy = examples.load("toy-bon")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with server(tmp_path) as srv, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page, _ = open_ready(browser, srv.url + "/", LEARN_CHARTS, timeout_s=120)
            for step in STEPS:
                assert page.get_by_role("heading", name=re.compile("^" + re.escape(step))).count()
            # Step 1's sentence has the stored numbers of member #0 at n = N.
            one = noisy.curve("single", member=0)
            assert page.get_by_text(lessons.one_proxy_sentence(one, 4096)).count() == 1
            last = one["points"][-1]
            body = page.inner_text("body")
            assert f"{last['proxy']:+.2f} on the proxy and {last['gold']:+.2f} on gold" in body
            # Step 3 at the stored lambda.
            want = lessons.objective_sentence(
                lessons.singles_group(noisy),
                noisy.curve("mean"),
                noisy.curve("wco"),
                noisy.curve("uwo"),
                0.5,
            )
            assert want in body
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOTS / "learn.png"))

            # Move lambda by keyboard: 0.5 -> 1.0; the chart, the sentence and the address follow.
            thumb = slider(page, "UWO λ")
            thumb.focus()
            for _ in range(10):
                page.keyboard.press("ArrowRight")
            wait_title(page, "UWO at λ = 1:")
            page.wait_for_function("() => location.search.includes('lam=1')", timeout=30_000)
            uwo = noisy.uwo_at(1.0)
            want = lessons.objective_sentence(
                lessons.singles_group(noisy), noisy.curve("mean"), noisy.curve("wco"), uwo, 1.0
            )
            page.get_by_text(want).wait_for(timeout=30_000)
            link = page.url
            assert "lam=1" in link
            shoot(page, "3 · Conservative objectives", "learn-3-lambda.png")
            for heading, name in (
                ("1 · One proxy", "learn-1-one-proxy.png"),
                ("2 · Why", "learn-2-shared-errors.png"),
                ("4 · Label noise", "learn-4-noise.png"),
                ("5 · Not only", "learn-5-methods.png"),
            ):
                shoot(page, heading, name)

            # The link in a fresh context: the same lambda, chart and sentence.
            fresh, _ = open_ready(browser, link, LEARN_CHARTS, timeout_s=120)
            assert float(slider(fresh, "UWO λ").input_value()) == 1.0
            wait_title(fresh, "UWO at λ = 1:")
            assert want in fresh.inner_text("body")
        finally:
            browser.close()
    for name in ("learn.png", "learn-3-lambda.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
