"""What an ensemble can and cannot see, from one best-of-n score matrix (Eisenstein et al. 2024).

Write member k's error on an answer as e_k = r_k - g (standardized proxy minus standardized
gold) = b + d_k: b the part every member shares, d_k its own. No function of the K scores (mean,
min, mean - lambda var) can see b, so ensembles help exactly as far as their members' errors are
their own. Per point of a best-of-n curve, backend.best_of_n.bon_curve reports the expected
shared error and spread at the answer best-of-n keeps; per run, `ensemble_stats` reports how the
errors correlate over the initial policy's answers.

Correlations are within a prompt (over its N sampled answers, each sample counted once, so
repeated answers count as often as they were drawn: the initial policy's distribution), then
averaged over prompts: best-of-n only ever compares answers to the same prompt.
Shapes: P prompts, N answers per prompt, K members.
"""

from __future__ import annotations

import numpy as np


def _within_prompt_corr(x: np.ndarray) -> np.ndarray:
    """Correlation matrix of the K columns over the N answers of each prompt, averaged over
    prompts where it is defined: (P, N, K) -> (K, K)."""
    centred = x - x.mean(axis=1, keepdims=True)  # (P, N, K)
    cov = np.einsum("pnk,pnl->pkl", centred, centred)  # (P, K, K)
    sd = np.sqrt(np.einsum("pkk->pk", cov))  # (P, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / (sd[:, :, None] * sd[:, None, :])
    return np.nanmean(np.where(np.isfinite(corr), corr, np.nan), axis=0)


def _off_diagonal_mean(c: np.ndarray) -> float | None:
    K = c.shape[0]
    if K < 2:
        return None
    return float(c[~np.eye(K, dtype=bool)].mean())


def ensemble_stats(gold: np.ndarray, proxy: np.ndarray, diversity: str) -> dict:
    """The `ensemble` block of a best-of-n result, for standardized gold (P, N) and members
    (P, N, K):
      error_corr         mean correlation between two members' errors e_k = r_k - g
      member_corr        mean correlation between two members' scores
      gold_corr          [K] each member's correlation with gold
      averaging_ceiling  rho + (1 - rho) / K with rho = error_corr: the share of one member's
                         error variance the mean of K members keeps (1: averaging removes
                         nothing; 1/K: the errors are independent)
      diversity          how the members differ (the config's reward_models.diversity)
    Correlations are within a prompt, averaged over prompts (module docstring); None with one
    member."""
    gold = np.asarray(gold, dtype=np.float64)
    proxy = np.asarray(proxy, dtype=np.float64)
    K = proxy.shape[-1]
    err = proxy - gold[..., None]  # (P, N, K)
    rho = _off_diagonal_mean(_within_prompt_corr(err))
    both = np.concatenate([proxy, gold[..., None]], axis=-1)  # (P, N, K+1)
    with_gold = _within_prompt_corr(both)[:K, K]  # (K,)
    return {
        "error_corr": rho,
        "member_corr": _off_diagonal_mean(_within_prompt_corr(proxy)),
        "gold_corr": [float(c) for c in with_gold],
        "averaging_ceiling": None if rho is None else float(rho + (1.0 - rho) / K),
        "diversity": diversity,
        "convention": "errors e_k = standardized proxy - standardized gold; correlations "
        "within a prompt over its N samples, averaged over prompts",
    }
