"""What an ensemble can see: the shared-error diagnostics of best-of-n points against direct
per-prompt enumeration, the ensemble block against numpy's own correlations, and best-of-n's
exact KL against brute force and the formula it is bounded by."""

from __future__ import annotations

import itertools
import math
from itertools import combinations

import numpy as np
import pytest

from backend.best_of_n import best_of_n_values, bon_curve, bon_kl, bon_ns
from backend.diagnostics import ensemble_stats
from backend.objectives import Objective


def kl_exact(sel: np.ndarray, ns) -> np.ndarray:
    return best_of_n_values(sel, np.zeros((*sel.shape, 1)), ns)[1]


def enumerate_bon(sel: np.ndarray, per_answer: np.ndarray, n: int) -> float:
    """E[quantity of the kept answer] over every n-subset of one prompt, ties split evenly."""
    total, count = 0.0, 0
    for subset in combinations(range(len(sel)), n):
        s = sel[list(subset)]
        best = [i for i, si in zip(subset, s, strict=True) if si == s.max()]
        total += np.mean(per_answer[best])
        count += 1
    return total / count


@pytest.mark.parametrize(
    "objective", [Objective("mean"), Objective("wco"), Objective("uwo", lam=1)]
)
def test_shared_error_and_spread_equal_direct_enumeration(objective):
    rng = np.random.default_rng(4)
    P, N, K = 3, 7, 4
    gold = rng.normal(size=(P, N))
    proxy = np.round(gold[..., None] + rng.normal(size=(P, N, K)), 1)  # rounding makes ties
    curve = bon_curve(gold, proxy, objective, bon_ns(N))
    err = proxy - gold[..., None]  # (P, N, K)
    for point in curve["points"]:
        n = point["n"]
        shared, sd, sq, msq = (
            np.mean([enumerate_bon(objective(proxy[p]), q[p], n) for p in range(P)])
            for q in (err.mean(-1), err.std(-1), err.mean(-1) ** 2, (err**2).mean(-1))
        )
        assert point["shared_error"] == pytest.approx(shared, abs=1e-12)
        assert point["member_sd"] == pytest.approx(sd, abs=1e-12)
        assert point["shared_share"] == pytest.approx(sq / msq, abs=1e-12)
        assert point["shared_error"] == pytest.approx(point["proxy_mean"] - point["gold"])


def test_a_shared_error_is_all_shared_and_independent_errors_are_not():
    rng = np.random.default_rng(0)
    P, N, K = 4, 500, 5
    gold = rng.normal(size=(P, N))
    bias = rng.normal(size=(P, N))  # every member makes the same mistake
    same = np.repeat((gold + bias)[..., None], K, axis=-1)
    shared = bon_curve(gold, same, Objective("mean"), [1, N])
    own = bon_curve(gold, gold[..., None] + rng.normal(size=(P, N, K)), Objective("mean"), [1, N])
    for point in shared["points"]:
        assert point["shared_share"] == pytest.approx(1.0)
        assert point["member_sd"] == pytest.approx(0.0, abs=1e-12)
    # Independent errors: at a random answer the shared part is the mean of K errors, 1/K of
    # their squared size; selecting on the mean makes the kept answer's errors agree more (the
    # members' errors all happen to be high there), but not completely.
    at_random, selected = (p["shared_share"] for p in own["points"])
    assert at_random == pytest.approx(1 / K, abs=0.03)
    assert at_random < selected < 0.9


def test_ensemble_block_against_numpy_correlations():
    rng = np.random.default_rng(1)
    P, N, K = 3, 200, 4
    gold = rng.normal(size=(P, N))
    common = rng.normal(size=(P, N, 1))
    proxy = gold[..., None] + 0.8 * common + 0.5 * rng.normal(size=(P, N, K))
    block = ensemble_stats(gold, proxy, "finetune")
    err = proxy - gold[..., None]
    off = ~np.eye(K, dtype=bool)
    rho = np.mean([np.corrcoef(err[p].T)[off].mean() for p in range(P)])
    assert block["error_corr"] == pytest.approx(rho)
    member = np.mean([np.corrcoef(proxy[p].T)[off].mean() for p in range(P)])
    assert block["member_corr"] == pytest.approx(member)
    for k in range(K):
        want = np.mean([np.corrcoef(proxy[p, :, k], gold[p])[0, 1] for p in range(P)])
        assert block["gold_corr"][k] == pytest.approx(want)
    assert block["averaging_ceiling"] == pytest.approx(rho + (1 - rho) / K)
    assert block["diversity"] == "finetune"
    one = ensemble_stats(gold, proxy[..., :1], "finetune")
    assert one["error_corr"] is None and one["averaging_ceiling"] is None


# ---- the exact KL of best-of-n ----------------------------------------------------------------


def brute_kl(sel: np.ndarray, answer: np.ndarray, n: int) -> float:
    """KL(best of n iid draws || empirical) by enumerating every n-tuple of the N samples;
    `answer` says which samples are the same answer (equal answers have equal scores)."""
    N = len(sel)
    kept: dict[int, float] = {}
    for draw in itertools.product(range(N), repeat=n):
        best = max(sel[i] for i in draw)
        tied = [i for i in draw if sel[i] == best]
        for i in tied:  # ties at random: each tied draw equally likely
            kept[answer[i]] = kept.get(answer[i], 0.0) + N**-n / len(tied)
    base = np.bincount(answer) / N
    return sum(q * math.log(q / base[a]) for a, q in kept.items())


def test_kl_exact_matches_enumeration_with_repeats_and_ties():
    rng = np.random.default_rng(2)
    for _ in range(25):
        N = int(rng.integers(2, 6))
        _, answer = np.unique(rng.integers(0, N, N), return_inverse=True)  # repeats
        scores = rng.integers(0, 3, answer.max() + 1).astype(float)  # distinct answers may tie
        sel = scores[answer]
        ns = [1, 2, 3, 4]
        want = [brute_kl(sel, answer, n) for n in ns]
        np.testing.assert_allclose(kl_exact(sel[None], ns), want, atol=1e-12)


def test_kl_exact_is_below_the_formula_and_approaches_it_without_repeats():
    rng = np.random.default_rng(3)
    ns = bon_ns(4096)
    with_repeats = rng.integers(0, 300, size=(5, 4096)).astype(float)  # about 300 answers each
    assert np.all(kl_exact(with_repeats, ns) <= bon_kl(ns) + 1e-12)
    assert kl_exact(with_repeats, ns)[-1] < bon_kl(ns)[-1] - 1.0
    gaps = []
    for N in (64, 1024, 16384):
        distinct = rng.random((2, N))
        got = kl_exact(distinct, [1, 8, 64])
        assert np.all(got <= bon_kl([1, 8, 64]) + 1e-12)
        gaps.append(float(bon_kl(64) - got[-1]))
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3
    assert kl_exact(rng.random((3, 50)), [1])[0] == pytest.approx(0.0, abs=1e-12)


def test_every_bon_point_carries_kl_exact():
    rng = np.random.default_rng(5)
    gold = rng.normal(size=(2, 32))
    proxy = np.round(rng.normal(size=(2, 32, 3)))  # few distinct scores: the formula overshoots
    curve = bon_curve(gold, proxy, Objective("single", member=0), bon_ns(32))
    for p in curve["points"]:
        assert 0.0 <= p["kl_exact"] <= p["kl"] + 1e-12
    assert curve["points"][-1]["kl_exact"] < curve["points"][-1]["kl"]
