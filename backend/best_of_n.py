"""Best-of-n from one score matrix: the unbiased estimator, its KL, and the curves.

Shapes: P prompts, N answers per prompt, K members, J values of n, C value columns.

The estimator (Nakano et al.; Gao et al.): sort a prompt's N answers ascending by the selection
score, s_(1) <= ... <= s_(N). Drawing n of them without replacement and keeping the best, the
answer at sorted position i is the one kept with probability C(i-1, n-1) / C(N, n) (it must be
drawn, and the other n-1 must come from the i-1 below it). So
    E[value of best of n] = sum_{i=n..N} C(i-1, n-1) / C(N, n) * v_(i).
Ties in the selection score are broken at random by best-of-n, so tied answers share the mean of
their values. Weights are computed in log space (lgamma) so N in the tens of thousands is fine.

The public code of Coste et al. re-sorted answers by the ensemble score but not the gold scores
(so every ensemble's "gold" curve was one member's). Here the gold values are gathered with the
same order as the selection score, in one place (`expected_best_of_n`), and a test guards it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from backend.fits import fit_curve
from backend.objectives import Objective


def bon_kl(n):
    """KL(best-of-n || initial policy) in nats: log n - (n - 1) / n (Stiennon et al.)."""
    n = np.asarray(n, dtype=np.float64)
    return np.log(n) - (n - 1.0) / n


def bon_ns(N: int) -> list[int]:
    """n = 1, 2, 4, ... up to N, with N itself last if it is not a power of two."""
    ns = [1 << j for j in range(int(np.log2(N)) + 1)]
    return ns if ns[-1] == N else [*ns, N]


def bon_weights(N: int, ns) -> np.ndarray:
    """(J, N): weight of sorted position i = 1..N in E[best of n] for each n of ns."""
    ns = np.asarray(ns, dtype=np.float64)[:, None]  # (J, 1)
    i = np.arange(1, N + 1, dtype=np.float64)[None, :]  # (1, N)
    valid = i >= ns
    im1, nm1 = np.where(valid, i - 1, 0), np.where(valid, ns - 1, 0)
    log_w = (
        gammaln(im1 + 1)
        - gammaln(nm1 + 1)
        - gammaln(im1 - nm1 + 1)  # log C(i-1, n-1)
        - (gammaln(N + 1) - gammaln(ns + 1) - gammaln(N - ns + 1))  # - log C(N, n)
    )
    return np.where(valid, np.exp(log_w), 0.0)


def _tie_mean(sorted_sel: np.ndarray, sorted_vals: np.ndarray) -> np.ndarray:
    """Replace values of answers with equal selection score by their group mean: (P,N,C)."""
    P, N, C = sorted_vals.shape
    new_group = np.ones((P, N), dtype=bool)
    new_group[:, 1:] = sorted_sel[:, 1:] != sorted_sel[:, :-1]
    if new_group.all():
        return sorted_vals
    gid = np.cumsum(new_group.ravel()) - 1  # (P*N,) groups never span prompts (col 0 is new)
    size = np.bincount(gid)
    out = np.empty_like(sorted_vals)
    for c in range(C):
        sums = np.bincount(gid, weights=sorted_vals[..., c].ravel())
        out[..., c] = (sums / size)[gid].reshape(P, N)
    return out


def expected_best_of_n(selection: np.ndarray, values: np.ndarray, ns) -> np.ndarray:
    """Per-prompt E[values of the best-of-n answer by `selection`]: (P,N), (P,N,C) -> (J,P,C)."""
    order = np.argsort(selection, axis=1)  # (P, N); tie order is irrelevant (tie means below)
    sorted_sel = np.take_along_axis(selection, order, axis=1)
    # The values are gathered in the selection's order: the step the public code missed.
    sorted_vals = np.take_along_axis(values, order[..., None], axis=1)  # (P, N, C)
    sorted_vals = _tie_mean(sorted_sel, sorted_vals)
    W = bon_weights(selection.shape[1], ns)  # (J, N)
    return np.matmul(W, sorted_vals).transpose(1, 0, 2)  # (P,J,C) -> (J,P,C); BLAS, not einsum


def monte_carlo_best_of_n(
    selection: np.ndarray, values: np.ndarray, n: int, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Reference by resampling: mean over `draws` subsets of n answers (without replacement) of
    the values of the subset's best answer (ties at random): (P,N), (P,N,C) -> (P,C)."""
    P, N = selection.shape
    out = np.zeros((P, values.shape[2]))
    for p in range(P):
        idx = np.argsort(rng.random((draws, N)), axis=1)[:, :n]  # (D, n) subsets
        s = selection[p][idx]  # (D, n)
        tied_best = s == s.max(axis=1, keepdims=True)
        pick = np.argmax(np.where(tied_best, rng.random((draws, n)), -1.0), axis=1)  # (D,)
        out[p] = values[p][idx[np.arange(draws), pick]].mean(axis=0)
    return out


def bon_curve(
    gold: np.ndarray,
    proxy: np.ndarray,
    objective: Objective,
    ns,
    members: list[int] | None = None,
) -> dict:
    """One curve for standardized gold (P,N) and members (P,N,K): points with n, kl, gold,
    proxy (the objective's own value), proxy_mean (mean of the members), and gold_se (standard
    error of gold over prompts)."""
    sub = proxy if members is None else proxy[..., list(members)]
    sel = objective(sub)  # (P, N)
    cols = np.stack([gold, sel, sub.mean(-1)], axis=-1)  # (P, N, 3)
    per_prompt = expected_best_of_n(sel, cols, ns)  # (J, P, 3)
    avg = per_prompt.mean(axis=1)  # (J, 3)
    P = gold.shape[0]
    se = per_prompt[..., 0].std(axis=1, ddof=1) / np.sqrt(P) if P > 1 else np.zeros(len(ns))
    kls = bon_kl(ns)
    points = [
        {
            "n": int(n),
            "kl": float(kl),
            "gold": float(a[0]),
            "proxy": float(a[1]),
            "proxy_mean": float(a[2]),
            "gold_se": float(s),
        }
        for n, kl, a, s in zip(ns, kls, avg, se, strict=True)
    ]
    curve = {"method": "bon", **objective.to_dict(), "label": objective.label, "points": points}
    if members is not None:
        curve["members"] = list(members)
    curve["fit"] = fit_curve(curve)  # Gao et al.'s best-of-n form, on every curve
    return curve


def bon_curves(
    gold: np.ndarray,
    proxy: np.ndarray,
    objectives: list[Objective],
    members: list[int] | None = None,
) -> list[dict]:
    """Curves of every objective from one standardized score matrix, without resampling."""
    ns = bon_ns(gold.shape[1])
    return [bon_curve(gold, proxy, obj, ns, members) for obj in objectives]
