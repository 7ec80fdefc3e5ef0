"""The examples shipped in assets/examples/ (app/make_example.py) are what they say they are: each
one's config is its preset's at seed 0, its score matrix has the config's shape, and the UWO grid
the lambda knob reads is the curve the engine computes."""

from __future__ import annotations

import numpy as np
import pytest

from app import examples
from app.make_example import NAMES, lambdas
from backend.best_of_n import bon_curves
from backend.objectives import Objective
from backend.presets import PRESETS


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_example_is_its_presets_run(name):
    ex = examples.load(name)
    assert ex is not None, f"assets/examples/{name}.json is missing: python -m app.make_example"
    want = PRESETS[name][1].replace(seed=0).to_dict()
    assert ex.result["config"] == want
    if want["method"] != "bon":
        assert ex.arrays is None and not ex.uwo
        assert ex.result["curves"][0]["method"] == want["method"]
        return
    P, N, K = ex.arrays["proxy"].shape
    assert (
        want["bon"]["num_prompts"],
        want["bon"]["samples"],
        want["reward_models"]["members"],
    ) == (P, N, K)
    assert ex.arrays["gold"].shape == (P, N) and ex.arrays["answers"].shape[:2] == (P, N)
    assert ex.result["ensemble"]["error_corr"] is not None


@pytest.mark.parametrize("name", [n for n in NAMES if PRESETS[n][1].method == "bon"])
def test_the_uwo_grid_is_the_engines_curve(name):
    ex = examples.load(name)
    assert sorted(ex.uwo) == pytest.approx(list(lambdas()))
    stored = ex.curve("uwo")
    from_grid = ex.uwo_at(float(stored["lambda"]))
    assert [p["gold"] for p in from_grid["points"]] == pytest.approx(
        [p["gold"] for p in stored["points"]], abs=1e-9
    )
    assert from_grid["label"] == stored["label"]
    # Another lambda: the grid (full precision) against the engine on the shipped float16
    # matrix; they differ only by the float16 rounding of the scores.
    (want,) = bon_curves(ex.arrays["gold"], ex.arrays["proxy"], [Objective("uwo", lam=2.0)])
    got = [p["gold"] for p in ex.uwo_at(2.0)["points"]]
    assert got == pytest.approx([p["gold"] for p in want["points"]], abs=0.02)
    assert ex.uwo_at(2.0)["points"] != ex.uwo_at(0.0)["points"]


def test_the_examples_stay_small():
    total = sum(p.stat().st_size for p in examples.EXAMPLES.iterdir())
    assert total < 8e6, f"assets/examples/ holds {total / 1e6:.1f} MB"
    for path in examples.EXAMPLES.glob("*.npz"):
        with np.load(path) as z:
            if "proxy" in z.files and path.name.count(".") == 1:
                assert z["proxy"].dtype == np.float16
