"""The default preset shows the phenomenon (seed 0; the README reports 3 seeds).

Single proxies overoptimize: averaged over members, gold at n = N sits below its peak by more
than 20% of the peak's gain over n = 1 while the proxy rises; WCO and UWO end above the
single-member average at n = N.
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
    assert s["wco"]["gold_final"] > single["gold_final"]
    assert s["uwo (lambda=0.5)"]["gold_final"] > single["gold_final"]
