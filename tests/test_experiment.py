"""Tiny end-to-end runs of the engine through its CLI: layout, seeds, cache, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.cache import ArtifactCache
from backend.config import ExperimentConfig
from backend.experiment import run_experiment
from backend.runtime import Cancelled

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "preferences.pairs": 300,
    "preferences.eval_pairs": 100,
    "reward_models.members": 3,
    "bon.num_prompts": 6,
    "bon.samples": 64,
}
TINY_ARGS = ["--pairs", "300", "--eval-pairs", "100", "--members", "3", "--num-prompts", "6",
             "--samples", "64"]  # fmt: skip


def cli(*args, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOODHART_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_cli_run_writes_result_and_scores(tmp_path):
    out, scores = tmp_path / "r.json", tmp_path / "s.npz"
    p = cli("run", "--preset", "toy-bon", "--seed", "3", "--out", str(out), "--scores",
            str(scores), *TINY_ARGS, "--uwo-lambda", "0.7", data_dir=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    assert r["config"]["seed"] == 3 and r["config"]["bon"]["uwo_lambda"] == 0.7
    assert [m["member"] for m in r["reward_models"]] == [0, 1, 2]
    assert all(0.0 <= m["heldout_acc_gold"] <= 1.0 for m in r["reward_models"])
    kinds = [(c["objective"], c.get("member"), c.get("lambda")) for c in r["curves"]]
    assert kinds == [("single", 0, None), ("single", 1, None), ("single", 2, None),
                     ("mean", None, None), ("wco", None, None), ("uwo", None, 0.7)]  # fmt: skip
    for c in r["curves"]:
        assert c["method"] == "bon"
        assert [p["n"] for p in c["points"]] == [1, 2, 4, 8, 16, 32, 64]
        assert c["points"][0]["gold"] == pytest.approx(0.0, abs=1e-9)  # gold shifted at n = 1
        assert c["points"][-1]["kl"] == pytest.approx(np.log(64) - 63 / 64)
        assert set(c["points"][0]) >= {"n", "kl", "gold", "proxy", "proxy_mean"}
    assert r["timings"]["total_s"] > 0 and "torch" in r["versions"]
    z = np.load(scores)
    assert z["gold"].shape == (6, 64) and z["proxy"].shape == (6, 64, 3)
    np.testing.assert_allclose(z["proxy"].mean(axis=(0, 1)), 0.0, atol=1e-9)
    np.testing.assert_allclose(z["proxy"].std(axis=(0, 1)), 1.0)
    # the curve at n = N is the matrix's own argmax (by member 0), averaged over prompts
    best = z["proxy"][..., 0].argmax(axis=1)
    top_gold = z["gold"][np.arange(6), best].mean()
    assert r["curves"][0]["points"][-1]["gold"] == pytest.approx(top_gold, abs=1e-9)


@pytest.mark.parametrize(
    "args, option, allowed",
    [
        (["--label-noise", "0.7"], "--label-noise", "between 0.0 and 0.5"),
        (["--members", "0"], "--members", "between 1 and 16"),
        (["--samples", "1"], "--samples", "between 2 and"),
        (["--preset", "nope"], "--preset", "toy-bon"),
        (["--pairs", "many"], "--pairs", "expected int"),
    ],
)
def test_bad_values_exit_2_name_the_option_and_write_nothing(tmp_path, args, option, allowed):
    out = tmp_path / "r.json"
    p = cli("run", "--out", str(out), *args, data_dir=tmp_path)
    assert p.returncode == 2
    assert option in p.stderr and allowed in p.stderr
    assert not out.exists()
    assert not (tmp_path / "cache").exists()


def test_same_seed_same_numbers_and_cache_reuse(tmp_path):
    cfg = ExperimentConfig().replace(seed=11, **TINY)
    fresh = run_experiment(cfg, cache=ArtifactCache(tmp_path / "a"))
    again = run_experiment(cfg, cache=ArtifactCache(tmp_path / "b"))
    assert fresh.result["curves"] == again.result["curves"]
    np.testing.assert_array_equal(fresh.arrays["proxy"], again.arrays["proxy"])
    other_seed = run_experiment(cfg.replace(seed=12), cache=ArtifactCache(tmp_path / "a"))
    assert other_seed.result["curves"] != fresh.result["curves"]

    # changing only lambda reuses every artifact (nothing retrained or resampled)
    cache = ArtifactCache(tmp_path / "a")
    warm = run_experiment(cfg.replace(**{"bon.uwo_lambda": 2.0}), cache=cache)
    assert {h.split("/")[0] for h in cache.hits} == {"prefs", "proxy", "samples", "scores"}
    assert warm.result["curves"][:4] == fresh.result["curves"][:4]  # singles and mean unchanged
    assert warm.result["curves"][-1]["lambda"] == 2.0
    # growing the ensemble trains only the new member
    cache = ArtifactCache(tmp_path / "a")
    run_experiment(cfg.replace(**{"reward_models.members": 4}), cache=cache)
    assert sum(h.startswith("proxy/") for h in cache.hits) == 3


def test_cancel_at_a_stage_boundary(tmp_path):
    seen = []
    with pytest.raises(Cancelled):
        run_experiment(
            ExperimentConfig().replace(**TINY),
            progress=lambda f, m: seen.append(m),
            should_stop=lambda: len(seen) >= 2,
            cache=ArtifactCache(tmp_path),
        )
    assert len(seen) == 2
