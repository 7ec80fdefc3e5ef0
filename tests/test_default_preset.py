"""The default preset shows the phenomenon and the paper's claim 3 (seed 0; the README reports
3 seeds and the claim holds there on average, in 2 of 3 seeds).

Single proxies overoptimize: averaged over members, gold at n = N has lost at least half of the
gain it had at its peak while the proxy rises; WCO and UWO end above the single-member average
and lose at most a quarter of theirs (the presets' criterion, backend/presets.py). Every member
trained: none is flagged near chance.
"""

import pytest

from backend.cache import ArtifactCache
from backend.experiment import run_experiment
from backend.presets import get_preset


@pytest.mark.slow
def test_toy_bon_shows_overoptimization_and_the_ensemble_benefit(tmp_path):
    out = run_experiment(get_preset("toy-bon"), cache=ArtifactCache(tmp_path))
    s = out.result["summary"]
    single = s["single_avg"]
    gain = single["gold_peak"] - single["gold_start"]
    assert gain > 0
    assert single["gold_peak"] - single["gold_final"] >= 0.2 * gain
    assert single["proxy_final"] > single["gold_final"] and single["proxy_rises"]
    assert single["overoptimization"] >= 0.5
    for label in ("wco", "uwo (lambda=0.5)"):
        assert s[label]["gold_final"] > single["gold_final"], label
        assert s[label]["overoptimization"] <= 0.25, (label, s[label])
    assert not any(rm["near_chance"] for rm in out.result["reward_models"])
