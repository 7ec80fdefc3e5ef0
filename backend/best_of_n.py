"""Best-of-n from one score matrix: the unbiased estimator, its KL, and the curves.

Shapes: P prompts, N answers per prompt, K members, J values of n, C value columns, M distinct
answers of a prompt.

The estimator (Nakano et al.; Gao et al.): sort a prompt's N answers ascending by the selection
score, s_(1) <= ... <= s_(N). Drawing n of them without replacement and keeping the best, the
answer at sorted position i is the one kept with probability C(i-1, n-1) / C(N, n) (it must be
drawn, and the other n-1 must come from the i-1 below it). So
    E[value of best of n] = sum_{i=n..N} C(i-1, n-1) / C(N, n) * v_(i).
Ties in the selection score are broken at random by best-of-n, so tied answers share the mean of
their values. Weights are computed in log space (lgamma) so N in the tens of thousands is fine, and
cached per (N, ns): every objective of a matrix shares them.

The public code of Coste et al. re-sorted answers by the ensemble score but not the gold scores
(so every ensemble's "gold" curve was one member's). Here the gold values are gathered with the
same order as the selection score, in one place (`expected_best_of_n`), and a test guards it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from backend.fits import fit_curve
from backend.objectives import Objective


def bon_kl(n):
    """KL(best-of-n || initial policy) in nats: log n - (n - 1) / n (Stiennon et al.). An upper
    bound, exact only when no two answers are equal (Beirami et al. 2024): see bon_kl_exact."""
    n = np.asarray(n, dtype=np.float64)
    return np.log(n) - (n - 1.0) / n


def kl_exact_from_ties(new_group: np.ndarray, ns) -> np.ndarray:
    """Exact KL(best-of-n || empirical) in nats, averaged over prompts, from the tie structure
    of the selection score sorted ascending within each prompt: new_group (P, N) is True where
    a run of equal scores starts (column 0 always). -> (J,).

    Per prompt, the base distribution is the empirical one of its N sampled answers, identical
    answers merged (an answer drawn c times has probability c / N). Best-of-n draws n answers
    from it independently and keeps the one with the highest score, ties broken at random
    (uniformly over the drawn answers, so a tied answer is kept in proportion to its own
    probability). For a run G of equal scores at sorted positions s .. s + c - 1, with
    F_G = (s + c) / N and F_{G-} = s / N:
        P(kept in G) = q_G = F_G^n - F_{G-}^n,   KL = sum_G q_G log(q_G / (c / N)),
    because within G the kept answer's probability is q_G p_j / p_G, so every answer of G has
    the same ratio to its base probability. Identical answers always have equal scores, so only
    the runs matter, not which answers are identical. With N distinct answers this tends to
    log n - (n - 1)/n as N grows; it is below that bound whenever answers repeat (Beirami et
    al. 2024)."""
    P, N = new_group.shape
    ns = tuple(int(n) for n in ns)
    # A run of one answer at position s contributes a term that depends on (N, n, s) only: a
    # cached table (most runs are of one answer). Longer runs (repeated answers, equal scores)
    # are computed one by one. The sum over prompts / P is the mean over prompts.
    starts = np.flatnonzero(new_group.ravel())  # (G,) flat start of each run
    count = np.diff(np.append(starts, P * N))  # (G,) its size
    one = count == 1
    at = np.bincount(starts[one] % N, minlength=N)  # (N,) prompts with a lone answer at s
    total = _lone_answer_terms(N, ns) @ at  # (J,)
    below, c = starts[~one] % N, count[~one]  # (G',) the longer runs
    if len(c):
        powers = _boundary_powers(N, ns)  # (J, N+1): (s/N)^n
        q = np.maximum(powers[:, below + c] - powers[:, below], 0.0)  # (J, G') P(kept in G)
        log_q = np.log(q, out=np.full_like(q, -np.inf), where=q > 0)
        log_p = np.log(c / N)  # (G',)
        total += np.where(q > 0, q * (np.where(q > 0, log_q, 0.0) - log_p), 0.0).sum(axis=1)
    out = total / P
    return np.maximum(out, 0.0)  # >= 0; rounding at n = 1 gives -1e-17


@lru_cache(maxsize=32)
def _boundary_powers(N: int, ns: tuple[int, ...]) -> np.ndarray:
    """(J, N+1): F^n at every run boundary F = s/N, s = 0..N, for each n of ns (read-only)."""
    out = (np.arange(N + 1) / N)[None, :] ** np.asarray(ns, dtype=np.float64)[:, None]
    out.flags.writeable = False
    return out


@lru_cache(maxsize=32)
def _lone_answer_terms(N: int, ns: tuple[int, ...]) -> np.ndarray:
    """(J, N): kl_exact's term q log(q / p) of a run of one answer at sorted position s = 0..N-1
    (p = 1/N, q = ((s+1)/N)^n - (s/N)^n), for each n of ns; read-only, shared by every matrix
    with N answers per prompt."""
    q = np.maximum(np.diff(_boundary_powers(N, ns), axis=1), 0.0)  # (J, N)
    out = np.where(q > 0, q * np.log(np.where(q > 0, q * N, 1.0)), 0.0)
    out.flags.writeable = False
    return out


def bon_ns(N: int) -> list[int]:
    """n = 1, 2, 4, ... up to N, with N itself last if it is not a power of two."""
    ns = [1 << j for j in range(int(np.log2(N)) + 1)]
    return ns if ns[-1] == N else [*ns, N]


def bon_weights(N: int, ns) -> np.ndarray:
    """(J, N): weight of sorted position i = 1..N in E[best of n] for each n of ns (cached and
    read-only: every objective of a score matrix shares them)."""
    return _weights(int(N), tuple(int(n) for n in ns))


@lru_cache(maxsize=32)
def _weights(N: int, ns: tuple[int, ...]) -> np.ndarray:
    lf = np.array([math.lgamma(k + 1) for k in range(N + 1)])  # log k!
    n = np.asarray(ns)[:, None]  # (J, 1)
    i = np.arange(1, N + 1)[None, :]  # (1, N)
    valid = i >= n
    im1, nm1 = np.where(valid, i - 1, 0), np.where(valid, n - 1, 0)
    n = np.minimum(n, N)  # n > N draws cannot be made without replacement: no valid position
    log_w = lf[im1] - lf[nm1] - lf[im1 - nm1] - (lf[N] - lf[n] - lf[N - n])  # C(i-1,n-1)/C(N,n)
    w = np.where(valid, np.exp(log_w), 0.0)
    w.flags.writeable = False
    return w


def _runs(sorted_sel: np.ndarray) -> np.ndarray:
    """(P, N) True where a run of equal scores starts in each prompt's ascending scores."""
    new_group = np.ones(sorted_sel.shape, dtype=bool)
    new_group[:, 1:] = sorted_sel[:, 1:] != sorted_sel[:, :-1]
    return new_group


def _tie_mean(new_group: np.ndarray, sorted_cols: np.ndarray) -> np.ndarray:
    """Replace values of answers with equal selection score by their group mean, in place on
    `sorted_cols` (C, P*N) (the caller's own gathered copy), touching only the runs of more than
    one answer."""
    starts = np.flatnonzero(new_group.ravel())  # groups never span prompts (column 0 is new)
    size = np.diff(np.append(starts, new_group.size))  # (G,)
    multi = size > 1
    if not multi.any():
        return sorted_cols
    first, size = starts[multi], size[multi]  # (G',) the runs of two or more
    offsets = np.cumsum(size) - size  # each run's start among their rows
    rows = np.repeat(first - offsets, size) + np.arange(int(size.sum()))  # (R,) flat positions
    means = np.add.reduceat(sorted_cols[:, rows], offsets, axis=1) / size  # (C, G')
    sorted_cols[:, rows] = np.repeat(means, size, axis=1)
    return sorted_cols


def expected_best_of_n(selection: np.ndarray, values: np.ndarray, ns) -> np.ndarray:
    """Per-prompt E[values of the best-of-n answer by `selection`]: (P,N), (P,N,C) -> (J,P,C)."""
    return best_of_n_values(selection, values, ns, with_kl=False)[0]


def best_of_n_values(
    selection: np.ndarray, values: np.ndarray, ns, with_kl: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """expected_best_of_n (J,P,C), and the exact KL (J,) of the same draws from one sort."""
    return best_of_n_columns(selection, np.moveaxis(values, -1, 0), ns, with_kl)


def best_of_n_columns(
    selection: np.ndarray, columns: np.ndarray, ns, with_kl: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """best_of_n_values for values stored column first, (C,P,N): the layout the curves use,
    because gathering C contiguous rows of P*N is several times faster than P*N rows of C."""
    P, N = selection.shape
    C = columns.shape[0]
    order = np.argsort(selection, axis=1)  # (P, N); tie order is irrelevant (tie means below)
    flat = (order + (np.arange(P) * N)[:, None]).ravel()  # (P*N,) positions in sorted order
    sorted_sel = selection.ravel()[flat].reshape(P, N)
    # The values are gathered in the selection's order: the step the public code missed.
    sorted_cols = columns.reshape(C, P * N)[:, flat]  # (C, P*N)
    runs = _runs(sorted_sel)
    sorted_cols = _tie_mean(runs, sorted_cols)
    W = bon_weights(N, ns)  # (J, N)
    # (P, C, N) @ (N, J), batched over prompts: small products that stay on this thread (one
    # large gemm would start BLAS threads, several times slower on a busy machine).
    per_prompt = np.matmul(sorted_cols.reshape(C, P, N).transpose(1, 0, 2), W.T)  # (P, C, J)
    return per_prompt.transpose(2, 0, 1), kl_exact_from_ties(runs, ns) if with_kl else None


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


def answer_columns(gold: np.ndarray, proxy: np.ndarray) -> np.ndarray:
    """The per-answer values every curve of a score matrix averages under best-of-n, whatever
    its objective: gold (P,N), members (P,N,K) -> (5,P,N) [gold, mean of the members, their
    population std, (mean_k e_k)^2, mean_k e_k^2] with e_k = r_k - gold (see bon_curve).
    Column first (best_of_n_columns); members as K contiguous (P,N) planes, so every reduction
    over members is K whole-array operations."""
    gold = np.asarray(gold, dtype=np.float64)
    planes = np.moveaxis(np.asarray(proxy, dtype=np.float64), -1, 0).copy()  # (K, P, N)
    mean_k = planes.mean(0)  # (P, N)
    sd = np.sqrt(((planes - mean_k) ** 2).mean(0))  # population std (ddof 0)
    err = planes - gold  # (K, P, N) member errors
    shared = mean_k - gold
    return np.stack([gold, mean_k, sd, shared * shared, (err * err).mean(0)])


def bon_curve(
    gold: np.ndarray,
    proxy: np.ndarray,
    objective: Objective,
    ns,
    members: list[int] | None = None,
    columns: np.ndarray | None = None,
) -> dict:
    """One curve for standardized gold (P,N) and members (P,N,K): points with n, kl, gold,
    proxy (the objective's own value), proxy_mean (mean of the members), gold_se (standard
    error of gold over prompts), and what the ensemble sees at the answer best-of-n keeps, each
    the expectation under best-of-n (the estimator's weights) of a per-answer quantity of the
    member errors e_k = r_k - gold (standardized scores):
      shared_error  mean over members of e_k: the error they all make (= proxy_mean - gold);
      member_sd     population std over members of e_k (= of r_k): how much they disagree;
      shared_share  E[(mean_k e_k)^2] / E[mean_k e_k^2]: the fraction of the members' squared
                    error that is shared (no objective of the K scores can see that part).
    Each point also has kl_exact, the exact KL of these draws (kl_exact_from_ties), beside
    kl, the formula's upper bound. `columns`: the matrix's answer_columns over these members,
    when the caller computed them already."""
    sub = proxy if members is None else proxy[..., list(members)]
    sel = objective(sub)  # (P, N)
    if columns is None:
        columns = answer_columns(gold, sub)
    cols = np.concatenate([sel[None], columns])  # (6, P, N)
    per_prompt, exact = best_of_n_columns(sel, cols, ns)  # (J, P, 6): sel, gold, mean, sd, ...
    avg = per_prompt.mean(axis=1)  # (J, 6)
    P = gold.shape[0]
    se = per_prompt[..., 1].std(axis=1, ddof=1) / np.sqrt(P) if P > 1 else np.zeros(len(ns))
    kls = bon_kl(ns)
    points = []
    for n, kl, kl_x, a, s in zip(ns, kls, exact, avg, se, strict=True):
        points.append(
            dict(
                n=int(n),
                kl=float(kl),
                kl_exact=float(kl_x),
                gold=float(a[1]),
                proxy=float(a[0]),
                proxy_mean=float(a[2]),
                gold_se=float(s),
                shared_error=float(a[2] - a[1]),
                member_sd=float(a[3]),
                shared_share=float(a[4] / a[5]) if a[5] > 0 else 1.0,
            )
        )
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
    columns = answer_columns(gold, proxy if members is None else proxy[..., list(members)])
    return [bon_curve(gold, proxy, obj, ns, members, columns) for obj in objectives]
