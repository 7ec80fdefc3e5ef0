"""The best-of-n estimator against brute force, the KL formula, and the ensemble-gold bug."""

import math
from itertools import combinations

import numpy as np
import pytest

from backend.best_of_n import (
    bon_curve,
    bon_kl,
    bon_ns,
    bon_weights,
    expected_best_of_n,
    monte_carlo_best_of_n,
)
from backend.objectives import Objective


def exact_by_enumeration(sel: np.ndarray, vals: np.ndarray, n: int) -> float:
    """E[value of the best of n] over every n-subset, ties split evenly: the definition."""
    total, count = 0.0, 0
    for subset in combinations(range(len(sel)), n):
        s = sel[list(subset)]
        best = [i for i, si in zip(subset, s, strict=True) if si == s.max()]
        total += np.mean(vals[best])
        count += 1
    return total / count


def test_weights_are_a_distribution_and_match_binomials():
    N = 9
    W = bon_weights(N, [1, 2, 3, 9])
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    np.testing.assert_allclose(W[0], np.full(N, 1 / N))  # n = 1: the mean
    np.testing.assert_allclose(W[3], np.eye(N)[-1])  # n = N: the maximum
    # n = 3, position i = 5: C(4, 2) / C(9, 3)
    assert W[2, 4] == pytest.approx(math.comb(4, 2) / math.comb(9, 3))


def test_weights_stay_finite_for_large_N():
    W = bon_weights(50_000, [1, 1024, 50_000])
    assert np.isfinite(W).all()
    np.testing.assert_allclose(W.sum(axis=1), 1.0, rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimator_equals_enumeration_with_ties(seed):
    rng = np.random.default_rng(seed)
    N = 8
    sel = rng.integers(0, 4, size=(3, N)).astype(float)  # many ties
    vals = rng.normal(size=(3, N, 1))
    ns = [1, 2, 3, 5, 8]
    est = expected_best_of_n(sel, vals, ns)  # (J, P, 1)
    for p in range(3):
        for j, n in enumerate(ns):
            assert est[j, p, 0] == pytest.approx(exact_by_enumeration(sel[p], vals[p, :, 0], n))


def test_estimator_agrees_with_monte_carlo_resampling():
    rng = np.random.default_rng(5)
    sel = rng.normal(size=(4, 200))
    vals = (sel + rng.normal(size=(4, 200)))[..., None]
    for n in (4, 32):
        exact = expected_best_of_n(sel, vals, [n])[0, :, 0]
        mc = monte_carlo_best_of_n(sel, vals, n, draws=20_000, rng=rng)[:, 0]
        np.testing.assert_allclose(mc, exact, atol=0.03)


def test_kl_formula():
    assert bon_kl(1) == 0.0
    assert bon_kl(2) == pytest.approx(math.log(2) - 0.5)
    ns = np.array([1, 2, 4, 1024])
    np.testing.assert_allclose(bon_kl(ns), np.log(ns) - (ns - 1) / ns)
    assert np.all(np.diff(bon_kl(ns)) > 0)


def test_ns_are_powers_of_two_then_N():
    assert bon_ns(8) == [1, 2, 4, 8]
    assert bon_ns(12) == [1, 2, 4, 8, 12]


def test_ensemble_gold_is_gold_of_the_answers_the_ensemble_picked():
    """Coste et al.'s public code sorted the ensemble score but not the gold scores, so the
    'ensemble gold' was one member's gold curve. Here member 0 and the WCO pick different
    answers, and the gold at n = N must be the gold of each objective's own pick."""
    gold = np.array([[0.0, 1.0, 2.0, 3.0]])  # (P=1, N=4)
    proxy = np.array(
        [[[3.0, 0.0], [2.0, 2.5], [1.0, 1.0], [0.0, 3.0]]]  # (1, 4, K=2)
    )
    ns = [1, 4]
    single0 = bon_curve(gold, proxy, Objective("single", member=0), ns)
    worst = bon_curve(gold, proxy, Objective("wco"), ns)
    assert single0["points"][-1]["gold"] == 0.0  # member 0 prefers answer 0
    assert worst["points"][-1]["gold"] == 1.0  # min over members is highest for answer 1
    assert worst["points"][-1]["proxy"] == 2.0  # the WCO value of that answer
    assert worst["points"][-1]["proxy_mean"] == 2.25
    assert worst["points"][0]["gold"] == pytest.approx(gold.mean())
