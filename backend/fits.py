"""Gao et al.'s functional forms of gold reward against d = sqrt(KL), fitted to a curve.

    best-of-n  R_bon(d) = d (alpha - beta d)      = alpha d - beta d^2
    RL         R_rl(d)  = d (alpha - beta log d)  = alpha d - beta d log d

Both are linear in (alpha, beta) and pass through R(0) = 0 by construction, so each is an ordinary
least-squares fit without intercept on two columns, X = [d, -d^2] or [d, -d log d] (with
d log d -> 0 at d = 0). Conventions, stated once:
- Standard errors: sigma^2 = SS_res / (n - 2) over the n points, cov = sigma^2 (X^T X)^-1;
  alpha_se and beta_se are the square roots of its diagonal (the usual OLS errors, which treat
  the points as independent with equal noise; curve points are not quite, so read them as a
  scale, not a confidence level).
- r2 = 1 - SS_res / SS_tot with SS_tot about the mean of the gold values (the usual R^2, which
  can be negative for a form without intercept that fits worse than a constant).
- Too few points (fewer than 3, or fewer than 2 with d > 0) or a singular X^T X give a fit whose
  alpha, beta and r2 are None and whose `reason` says why.

>>> d = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
>>> f = fit_bon(d, d * (1.0 - 0.4 * d))
>>> round(f["alpha"], 6), round(f["beta"], 6), round(f["r2"], 6)
(1.0, 0.4, 1.0)
"""

from __future__ import annotations

import math

import numpy as np

FORMS = {
    "bon": "d (alpha - beta d)",
    "rl": "d (alpha - beta log d)",
}


def d_log_d(d: np.ndarray) -> np.ndarray:
    """d log d with its limit 0 at d = 0."""
    d = np.asarray(d, dtype=np.float64)
    return np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)


def predict(form: str, alpha: float, beta: float, d) -> np.ndarray:
    """The form at d (sqrt KL)."""
    d = np.asarray(d, dtype=np.float64)
    if form == "bon":
        return alpha * d - beta * d * d
    if form == "rl":
        return alpha * d - beta * d_log_d(d)
    raise ValueError(f"form must be one of {', '.join(FORMS)}; got {form!r}")


def _no_fit(form: str, n: int, reason: str) -> dict:
    return {"form": form, "alpha": None, "beta": None, "r2": None, "n_points": n, "reason": reason}


def _fit(form: str, d, gold) -> dict:
    d = np.asarray(d, dtype=np.float64).ravel()
    y = np.asarray(gold, dtype=np.float64).ravel()
    if d.shape != y.shape:
        raise ValueError(f"d and gold must have one value per point; got {d.shape}, {y.shape}")
    keep = np.isfinite(d) & np.isfinite(y)
    d, y = d[keep], y[keep]
    n = len(d)
    if np.any(d < 0):
        raise ValueError("d = sqrt(KL) must be >= 0")
    if n < 3 or np.count_nonzero(d > 0) < 2:
        return _no_fit(form, n, f"too few points: {n} ({np.count_nonzero(d > 0)} with d > 0)")
    second = d * d if form == "bon" else d_log_d(d)
    X = np.stack([d, -second], axis=1)  # (n, 2)
    xtx = X.T @ X
    if np.linalg.cond(xtx) > 1e12:
        return _no_fit(form, n, "the two columns are (nearly) collinear at these d values")
    inv = np.linalg.inv(xtx)
    coef = inv @ (X.T @ y)  # (2,)
    resid = y - X @ coef
    ss_res = float(resid @ resid)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    var = ss_res / (n - 2)
    se = np.sqrt(np.maximum(np.diag(inv) * var, 0.0))
    return {
        "form": form,
        "alpha": float(coef[0]),
        "beta": float(coef[1]),
        "alpha_se": float(se[0]),
        "beta_se": float(se[1]),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0),
        "n_points": n,
    }


def fit_bon(d, gold) -> dict:
    """Fit R = d (alpha - beta d) by least squares: form, alpha, beta, alpha_se, beta_se, r2,
    n_points (or alpha = beta = r2 = None and a reason)."""
    return _fit("bon", d, gold)


def fit_rl(d, gold) -> dict:
    """Fit R = d (alpha - beta log d) by least squares; same fields as fit_bon."""
    return _fit("rl", d, gold)


def fit_curve(curve: dict) -> dict:
    """The form of a curve's method ("bon": best-of-n; anything else, e.g. PPO: RL), fitted to
    its gold against d = sqrt(KL) (a slightly negative KL estimate counts as 0)."""
    pts = curve["points"]
    d = np.array([math.sqrt(max(p["kl"], 0.0)) for p in pts])
    gold = np.array([p["gold"] for p in pts])
    return fit_bon(d, gold) if curve.get("method") == "bon" else fit_rl(d, gold)
