"""The cost estimate (backend/estimate.py, experiment.plan_run) against a real cache, and progress
that tells time: fine progress within stages, scaled to the estimated time, never backwards."""

from __future__ import annotations

import itertools
import math

import pytest

from backend import runtime
from backend.cache import ArtifactCache
from backend.estimate import (
    FLOOR_SECONDS,
    MIN_SECONDS,
    ProgressScale,
    StageCost,
    duration_text,
    stage_costs,
    time_left,
)
from backend.experiment import plan_run, run_experiment
from backend.presets import get_preset
from tests.jobs_support import tiny_config


def files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_progress_scale_is_monotone_and_follows_the_estimated_seconds():
    costs = [StageCost("sft", "", True, 0.2), StageCost("prefs", "", True, 0.2),
             StageCost("proxies", "", False, 90.0), StageCost("samples", "", False, 5.0),
             StageCost("scores", "", False, 4.0), StageCost("curves", "", False, 0.5)]  # fmt: skip
    scale = ProgressScale("bon", costs)
    fracs = [i / 1000 for i in range(1001)]
    out = [scale(f) for f in fracs]
    assert out[0] == 0.0 and out[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in itertools.pairwise(out))
    # Proxies take 90 of 99.9 s (reused stages count at their load, 0.2 s): their nominal span
    # 0.1-0.4 is ~90% of the scaled bar.
    assert scale(0.4) - scale(0.1) == pytest.approx(90 / 99.9, abs=1e-9)
    assert scale(0.25) == pytest.approx((0.2 + 0.2 + 45) / 99.9, abs=1e-9)  # half the proxies
    # A stage with no estimate counts as MIN_SECONDS; none counts for nothing.
    costs[-1] = StageCost("curves", "", False, math.nan)
    costs[0] = StageCost("sft", "", True, 0.0)
    scale = ProgressScale("bon", costs)
    assert scale(0.95) == pytest.approx(1 - MIN_SECONDS / (FLOOR_SECONDS + 99.7), abs=1e-9)
    assert 0 < scale(0.05) == pytest.approx(FLOOR_SECONDS / (FLOOR_SECONDS + 99.7), abs=1e-9)


def test_time_left_and_durations():
    assert time_left(60.0, 0.25) == pytest.approx(180.0)
    assert time_left(5.0, 0.01) is None  # too early to tell
    assert duration_text(45.2) == "45 s" and duration_text(200) == "3 min 20 s"
    assert duration_text(3900) == "1 h 05 min" and duration_text(math.nan) == ""


def test_the_estimate_knows_what_the_cache_holds_and_trains_nothing(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    cfg = tiny_config()
    cold = {c.stage: c for c in plan_run(cfg, cache)}
    assert not (tmp_path / "cache").exists() or not files(tmp_path / "cache")  # nothing built
    assert cold["sft"].reused  # the shipped initial policy
    assert not cold["prefs"].reused and cold["proxies"].what == "2 of 2 proxies to train"
    assert cold["proxies"].seconds > cold["samples"].seconds > 0
    run_experiment(cfg, cache=ArtifactCache(tmp_path / "cache"))
    before = files(tmp_path / "cache")
    warm = plan_run(cfg, cache)
    assert all(c.reused for c in warm if c.stage != "curves"), warm
    grown = {c.stage: c for c in plan_run(cfg.replace(**{"reward_models.members": 3}), cache)}
    assert grown["proxies"].what == "1 of 3 proxies to train (2 reused)"
    assert grown["samples"].reused and not grown["scores"].reused and grown["prefs"].reused
    reseeded = {c.stage: c for c in plan_run(cfg.replace(seed=1), cache)}
    assert not reseeded["prefs"].reused and not reseeded["proxies"].reused
    ppo = {c.stage: c for c in plan_run(cfg.replace(method="ppo"), cache)}
    assert ppo["proxies"].reused and "PPO steps" in ppo["ppo"].what
    assert files(tmp_path / "cache") == before  # the estimate built nothing


def test_the_estimate_counts_what_independent_and_pretrain_members_add(tmp_path):
    from backend.estimate import RATES

    cache = ArtifactCache(tmp_path / "cache")
    cfg = tiny_config()  # 2 members
    plain = {c.stage: c for c in plan_run(cfg, cache)}
    own = {c.stage: c for c in plan_run(cfg.replace(**{"reward_models.diversity": "independent"}),
                                        cache)}  # fmt: skip
    pairs = cfg.preferences.pairs + cfg.preferences.eval_pairs
    assert own["proxies"].what == (
        f"2 of 2 proxies to train; 1 of them first sample and label their own {pairs:,} pairs"
    )
    extra = own["proxies"].seconds - plain["proxies"].seconds
    assert extra == pytest.approx(pairs * RATES["prefs_pair"])
    pretrain = cfg.replace(**{"reward_models.diversity": "pretrain"})
    shipped = {c.stage: c for c in plan_run(pretrain, cache)}  # SFT seeds 1-7 ship
    assert shipped["sft"].reused and "1 members’ own SFT runs: reused" in shipped["sft"].what
    nine = {c.stage: c for c in plan_run(pretrain.replace(**{"reward_models.members": 9}), cache)}
    assert "1 of 8 members’ own SFT runs to train" in nine["sft"].what
    assert not nine["sft"].reused and math.isnan(nine["sft"].seconds)  # minutes, not estimated
    assert not (tmp_path / "cache").exists() or not files(tmp_path / "cache")  # nothing built


def test_preset_estimates_are_minutes_not_hours():
    cached = {"sft": True, "prefs": False, "samples": False}
    for name in ("toy-bon", "toy-ppo", "toy-dpo"):
        cfg = get_preset(name)
        K = cfg.reward_models.members
        plan = {**cached, "proxies": [False] * K, "scores": [False] * K, "ppo_norm": [False] * K}
        if cfg.method == "dpo" and not cfg.dpo.score_proxies:
            plan["proxies"] = []
        total = sum(c.seconds for c in stage_costs(cfg, plan, workers=2))
        assert 10 < total < 3600, (name, total)


def test_progress_within_stages_is_reported_and_never_goes_back(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "TICK_S", 0.0)  # every tick, so a tiny run shows them
    # In this process: a forked run samples the answers beside the pairs, without their prompt
    # by prompt progress (tests/test_forked.py).
    monkeypatch.setenv("GOODHART_FORK", "0")
    calls: list[tuple[float, str]] = []
    cfg = tiny_config().replace(**{"reward_models.epochs": 3})
    costs = plan_run(cfg, ArtifactCache(tmp_path))
    run_experiment(cfg, progress=lambda f, m: calls.append((f, m)), cache=ArtifactCache(tmp_path))
    fracs = [f for f, _ in calls]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    messages = [m for _, m in calls]
    assert any("epoch 3 of 3" in m for m in messages), messages
    assert any("of 4 prompts" in m for m in messages) and any("proxies done" in m for m in messages)
    # Proxy training takes the share of the bar that it has of the estimated time.
    start = next(f for f, m in calls if m.startswith("training 2 proxies"))
    end = next(f for f, m in calls if m == "2 of 2 proxies ready")
    scale = ProgressScale("bon", costs)  # the proxies' segment is 0.1-0.4 of the engine's
    assert end - start == pytest.approx(scale(0.4) - scale(0.1))


def test_the_machines_pace_from_recent_runs():
    from backend.estimate import pace, paced

    slow = ({"reward_models_s": 20.0, "sampling_s": 9.0}, {"proxies": 10.0, "samples": 1.0})
    assert pace([slow]) == pytest.approx(2.0)  # samples estimated under PACE_MIN_S: left out
    fast = ({"ppo_s": 30.0, "ppo_eval_s": 10.0}, {"ppo": 80.0})
    assert pace([slow, fast, slow]) == pytest.approx(2.0) and pace([]) is None
    assert pace([({}, {"curves": 0.5})]) is None
    costs = [StageCost("proxies", "", False, 10.0)]
    assert paced(costs, 1.5)[0].seconds == 15.0 and paced(costs, None) == costs


def test_a_finished_run_records_its_estimate_for_the_pace(tmp_path, monkeypatch):
    from tests.app_support import use_temp_db

    use_temp_db(tmp_path, monkeypatch)
    from db import api, jobs

    cfg = tiny_config()
    out = run_experiment(cfg, cache=ArtifactCache(tmp_path / "cache"))
    assert set(out.result["estimate"]) >= {"prefs", "proxies", "samples", "scores"}
    eid = api.submit(cfg)
    jobs.claim(eid, "test:1")
    jobs.finish(eid, "test:1", out.result, out.arrays)
    ((timings, estimate),) = api.recent_timings()
    assert timings["reward_models_s"] > 0 and estimate == out.result["estimate"]
