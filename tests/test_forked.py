"""Members trained in forked processes (backend/forked.py, Runner.train_forked): the numbers of
the threaded path, honest cache hits, progress relayed, cancellation that ends the children, and
a child's failure reported with its traceback."""

from __future__ import annotations

import functools
import multiprocessing
import os
import time

import numpy as np
import pytest

from backend import runtime
from backend.cache import ArtifactCache
from backend.experiment import run_experiment
from backend.forked import ChildFailed, at_once, run_forked, span
from backend.runtime import Cancelled
from tests.jobs_support import tiny_config


def three_members():
    return tiny_config().replace(**{"reward_models.members": 3})


def test_forked_members_give_the_threaded_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("GOODHART_THREADS", "2")
    monkeypatch.setattr(runtime, "TICK_S", 0.0)  # every tick, so a tiny run shows them
    messages = []
    forked = run_experiment(
        three_members(), lambda f, m: messages.append(m), cache=ArtifactCache(tmp_path / "a")
    )
    monkeypatch.setenv("GOODHART_FORK", "0")
    threaded = run_experiment(three_members(), cache=ArtifactCache(tmp_path / "b"))
    assert np.array_equal(forked.arrays["proxy"], threaded.arrays["proxy"])
    assert forked.result["reward_models"] == threaded.result["reward_models"]
    assert forked.result["curves"] == threaded.result["curves"]
    # Progress came through this process: every member's batches and readiness.
    assert any(m.startswith("training proxy 3 of 3, epoch 8 of 8 (") for m in messages)
    assert "1 of 3 proxies ready" in messages and "3 of 3 proxies ready" in messages
    assert not any(h.startswith("proxy/") for h in forked.result["cache_hits"])
    # The best-of-n answers were sampled in a child beside the pairs (Runner.samples_beside):
    # the same answers (the curves above), built by this run, not reused.
    assert "sampling and labelling preference pairs (and best-of-n answers beside them)" in messages
    assert "collecting the answers sampled beside the proxies" in messages
    assert not any(h.startswith("samples/") for h in forked.result["cache_hits"])
    assert forked.result["timings"]["sampling_s"] > 0
    again = run_experiment(three_members(), cache=ArtifactCache(tmp_path / "a")).result
    assert sum(h.startswith("proxy/") for h in again["cache_hits"]) == 3  # reused, no fork
    assert sum(h.startswith("samples/") for h in again["cache_hits"]) == 1
    assert multiprocessing.active_children() == []


def test_a_failure_of_the_answers_sampled_beside_is_the_runs(tmp_path, monkeypatch):
    """The early sampler's error reaches the run with its traceback; no child is left."""
    from backend.experiment import Runner

    monkeypatch.setenv("GOODHART_THREADS", "2")

    def broken(self, sft_key):
        raise ValueError("no answers today")

    monkeypatch.setattr(Runner, "samples", broken)
    with pytest.raises(ChildFailed, match="ValueError: no answers today"):
        run_experiment(tiny_config(), cache=ArtifactCache(tmp_path))
    assert multiprocessing.active_children() == []


def test_cancelling_while_members_train_ends_the_children(tmp_path, monkeypatch):
    """Members that would train for about 10 s each: the cancel (asked once a second) ends them
    within seconds, and no half-trained member is stored."""
    monkeypatch.setenv("GOODHART_THREADS", "2")
    monkeypatch.setattr(runtime, "TICK_S", 0.0)
    seen, asked = [], []

    def should_stop() -> bool:
        if any("epoch 2 of 100" in m for m in seen):
            asked.append(time.monotonic())
            return True
        return False

    with pytest.raises(Cancelled, match="training the proxies"):
        run_experiment(
            three_members().replace(**{"reward_models.epochs": 100, "preferences.pairs": 4000}),
            lambda f, m: seen.append(m),
            should_stop=should_stop,
            cache=ArtifactCache(tmp_path),
        )
    assert time.monotonic() - asked[0] < 5
    assert multiprocessing.active_children() == []
    assert not list((tmp_path / "proxy").glob("*/.complete"))  # nothing half-trained kept


def _raises(send):
    send("about to fail")
    raise ValueError("member 2 could not train")


def test_a_failing_child_fails_with_its_traceback_and_the_others_end():
    got = []
    with pytest.raises(ChildFailed, match="ValueError: member 2 could not train"):
        run_forked(
            [lambda send: 1, _raises, lambda send: os.kill(os.getpid(), 9)],
            2, lambda i, m: got.append((i, m)), lambda: False, RuntimeError,
        )  # fmt: skip
    assert (1, "about to fail") in got
    assert multiprocessing.active_children() == []
    with pytest.raises(ChildFailed, match="exit code -9"):
        run_forked([lambda send: os.kill(os.getpid(), 9)], 2, print, lambda: False, RuntimeError)
    squares = [functools.partial(lambda i, send: i * i, i) for i in range(5)]
    assert run_forked(squares, 2, print, lambda: False, RuntimeError) == [0, 1, 4, 9, 16]


def test_members_at_once_spread_the_rounds_evenly():
    # 5 members on 2 cores: 3 then 2 at once, not 2, 2 and then 1 alone beside an idle core.
    assert [at_once(n, 2) for n in (1, 2, 3, 4, 5, 6, 7, 8, 16)] == [1, 2, 3, 2, 3, 2, 4, 2, 2]
    assert at_once(5, 1) == 1 and at_once(3, 4) == 3 and at_once(9, 4) == 5
    # The estimate's wall time of them, in units of one member alone on a core.
    assert [span(n, 2) for n in (0, 1, 2, 4)] == [0.0, 1.0, 1.0, 2.0]
    assert span(5, 2) == pytest.approx(2.75) and span(5, 1) == 5.0
