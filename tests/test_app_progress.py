"""Progress that tells time in the app (AppTest on a real SQLite file and a real cache): the New
experiment form's cost estimate (what is reused, what must be computed), elapsed and time left on
a running run's page and in the Runs table, durations of finished runs."""

from __future__ import annotations

import pytest

from tests.app_support import app_test, example, no_exceptions, open_page, use_temp_db
from tests.jobs_support import TINY, tiny_config

FIELDS = {"--pairs": "preferences.pairs", "--eval-pairs": "preferences.eval_pairs",
          "--members": "reward_models.members", "--num-prompts": "bon.num_prompts",
          "--samples": "bon.samples"}  # fmt: skip


@pytest.fixture
def db(tmp_path, monkeypatch):
    return use_temp_db(tmp_path, monkeypatch)


def estimate_text(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Estimated time"))


def test_the_form_estimates_the_cost_from_the_cache(db):
    from backend.experiment import run_experiment

    at = open_page("views/new_experiment.py")
    text = estimate_text(at)
    assert "5 of 5 proxies to train" in text and "initial policy" in text, text
    for option, value in zip(TINY[::2], TINY[1::2], strict=True):
        at.number_input(key=f"f_{FIELDS[option]}").set_value(int(value))
    at.run()
    no_exceptions(at)
    assert "2 of 2 proxies to train" in estimate_text(at)
    run_experiment(tiny_config())  # into this test's data folder's cache
    at.number_input(key="f_reward_models.members").set_value(3).run()
    text = estimate_text(at)
    assert "1 of 3 proxies to train (2 reused)" in text, text
    assert "Reused from the cache: initial policy, 250 preference pairs, 4 x 64 answers" in text
    at.text_input(key="f_seeds").set_value("0-2").run()
    assert "for 3 runs" in estimate_text(at)


def test_a_running_run_shows_elapsed_and_time_left(db):
    from db import api, jobs

    eid = api.submit(tiny_config(), name="live")
    at = open_page("views/runs.py")
    assert at.dataframe[0].value["time"][0].startswith("waiting")
    jobs.claim(eid, "test:1")
    jobs.progress(eid, "test:1", 0.5, "training proxy 1 of 2, epoch 3 of 8")
    at = app_test({"run": eid}).run()
    no_exceptions(at)
    caption = next(c.value for c in at.caption if "left" in c.value or "estimating" in c.value)
    assert "about" in caption and "left" in caption, caption  # half done: as long again
    at = open_page("views/runs.py")
    assert "left" in at.dataframe[0].value["time"][0]
    result, arrays = example()
    jobs.finish(eid, "test:1", result, arrays)
    at = open_page("views/runs.py")
    took = at.dataframe[0].value["time"][0]
    assert took.endswith(" s") and "left" not in took, took  # a finished run's duration
