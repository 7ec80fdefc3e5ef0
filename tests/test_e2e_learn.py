"""The Learn page in a real browser (Debian's chromium, Playwright) on a real Streamlit server: the
five steps are there, a step's sentence carries the stored result's numbers, moving lambda puts
it in the address, and that link opened in a fresh browser context shows the same lambda. Saves
the Learn screenshots (docs/screenshots/learn*.png). Skipped only without /usr/bin/chromium."""

from __future__ import annotations

import pytest

from app import examples, lessons
from tests.browser_support import LEARN_CHARTS, launch, open_ready, open_tab, server, wait_title
from tests.test_e2e_browser import (
    CHROMIUM,
    SCREENSHOTS,
    chart_pill,
    choice,
    knob,
    knob_shown,
    page_text,
    wait_text,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium")
STEPS = [
    ("1 · One proxy", "1 · One proxy", "learn-1-one-proxy.png", 1),
    ("2 · Shared errors", "2 · Why", "learn-2-shared-errors.png", 2),
    ("3 · Objectives and λ", "3 · Conservative objectives", "learn-3-objectives.png", 1),
    ("4 · Label noise", "4 · Label noise", "learn-4-noise.png", 2),
    ("5 · PPO and DPO", "5 · Not only", "learn-5-methods.png", 1),
]


def test_learn_steps_sentences_lambda_link_and_screenshots(tmp_path):
    from playwright.sync_api import sync_playwright

    noisy = examples.load("toy-bon")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with server(tmp_path) as srv, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page, _ = open_ready(browser, srv.url + "/", LEARN_CHARTS, timeout_s=120)
            tabs = [t.strip() for t in page.get_by_role("tab").all_inner_texts()]
            assert tabs == [tab for tab, *_ in STEPS] + ["Free play"]
            # Step 1's sentence has the stored numbers of member #0 at n = N.
            one = noisy.curve("single", member=0)
            last = one["points"][-1]
            body = page_text(page)
            assert lessons.one_proxy_sentence(one, 4096) in body
            assert f"{last['proxy']:+.2f} on the proxy and {last['gold']:+.2f} on gold" in body
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOTS / "learn.png"))
            for tab, heading, shot, charts in STEPS:
                open_tab(page, tab, heading, charts)
                page.wait_for_timeout(500)
                page.screenshot(path=str(SCREENSHOTS / shot))

            # Step 2's second world switched in the chart's own buttons: redrawn from the frame
            # the server sent, the sentences with it.
            open_tab(page, "2 · Shared errors", "2 · Why", 2)
            choice(page, "toy-bon-clean").click()
            wait_title(page, "toy-bon-clean:")
            clean = lessons.errors_facts(examples.load("toy-bon-clean"))
            wait_text(page, lessons.errors_world_sentence(clean))

            # Step 3 at the stored lambda, then lambda moved by keyboard: 0.5 -> 1.0; the
            # chart, the sentence and the address follow.
            open_tab(page, "3 · Objectives and λ", "3 · Conservative objectives")
            want = lessons.objective_sentence(
                lessons.singles_group(noisy),
                noisy.curve("mean"),
                noisy.curve("wco"),
                noisy.curve("uwo"),
                0.5,
            )
            assert want in page_text(page)
            thumb = knob(page, "UWO λ")
            thumb.focus()
            for _ in range(10):
                page.keyboard.press("ArrowRight")
            wait_title(page, "UWO at λ = 1:")
            page.wait_for_function("() => location.search.includes('lam=1')", timeout=30_000)
            uwo = noisy.uwo_at(1.0)
            want = lessons.objective_sentence(
                lessons.singles_group(noisy), noisy.curve("mean"), noisy.curve("wco"), uwo, 1.0
            )
            wait_text(page, want)
            link = page.url
            assert "lam=1" in link
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOTS / "learn-3-lambda.png"))

            # The link in a fresh context opens step 3 with the same lambda, chart and sentence.
            fresh, _ = open_ready(browser, link, LEARN_CHARTS, timeout_s=120)
            assert knob_shown(fresh, "UWO λ") == "1"
            wait_title(fresh, "UWO at λ = 1:")
            assert want in page_text(fresh)

            # Member #4 left out in the chart's pills: the sentence is the subset's at once (a
            # frame sent ahead), and the address follows.
            chart_pill(fresh, "#4").click()
            fresh.wait_for_function(
                "() => decodeURIComponent(location.search).includes('members=0,1,2,3')",
                timeout=30_000,
            )
            assert want not in page_text(fresh) and "At λ = 1 UWO" in page_text(fresh)
            fresh.wait_for_timeout(500)
            fresh.screenshot(path=str(SCREENSHOTS / "learn-3-members.png"))
        finally:
            browser.close()
    for name in ("learn.png", "learn-3-lambda.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
