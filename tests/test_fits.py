"""Gao et al.'s functional forms (backend/fits.py): exact and noisy recovery of known
coefficients, the conventions (R^2, standard errors, d = 0), and fits on engine results."""

from __future__ import annotations

import numpy as np
import pytest

from backend.best_of_n import bon_curves, bon_kl, bon_ns
from backend.fits import d_log_d, fit_bon, fit_curve, fit_rl, predict
from backend.objectives import standard_objectives

D = np.sqrt(bon_kl(bon_ns(4096)))  # the d values of a default best-of-n curve (13 points)
D_RL = np.linspace(0.0, 4.0, 41)  # PPO: step 0 at d = 0, then a spread of KLs


@pytest.mark.parametrize(("fit", "form", "d"), [(fit_bon, "bon", D), (fit_rl, "rl", D_RL)])
def test_exact_recovery_without_noise(fit, form, d):
    y = predict(form, 0.9, 0.35, d)
    f = fit(d, y)
    assert f["form"] == form and f["n_points"] == len(d)
    assert f["alpha"] == pytest.approx(0.9, abs=1e-10)
    assert f["beta"] == pytest.approx(0.35, abs=1e-10)
    assert f["r2"] == pytest.approx(1.0, abs=1e-12)
    assert f["alpha_se"] == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize(("fit", "form", "d"), [(fit_bon, "bon", D), (fit_rl, "rl", D_RL)])
def test_noisy_recovery_within_a_few_standard_errors(fit, form, d):
    """Over 300 noisy curves: every estimate within 6 se of the truth, about 95% within the t
    quantile (the errors are calibrated: their spread matches the reported se), R^2 near 1."""
    from scipy.stats import t

    rng = np.random.default_rng(0)
    alpha, beta, sigma = 1.2, 0.4, 0.05
    est, se, r2 = [], [], []
    for _ in range(300):
        f = fit(d, predict(form, alpha, beta, d) + rng.normal(0, sigma, len(d)))
        est.append([f["alpha"], f["beta"]])
        se.append([f["alpha_se"], f["beta_se"]])
        r2.append(f["r2"])
    est, se = np.array(est), np.array(se)  # (300, 2)
    z = np.abs(est - [alpha, beta]) / se
    assert z.max() < 6
    covered = (z < t.ppf(0.975, len(d) - 2)).mean(axis=0)
    assert np.all((covered > 0.91) & (covered < 0.985)), covered
    assert est.std(axis=0) / se.mean(axis=0) == pytest.approx([1.0, 1.0], abs=0.15)
    assert np.median(r2) > 0.95


def test_standard_errors_and_r2_by_hand():
    d = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([0.0, 0.7, 0.5, -0.4])
    f = fit_bon(d, y)
    X = np.stack([d, -(d**2)], 1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    var = resid @ resid / (4 - 2)
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ X)) * var)
    assert [f["alpha"], f["beta"]] == pytest.approx(coef)
    assert [f["alpha_se"], f["beta_se"]] == pytest.approx(se)
    assert f["r2"] == pytest.approx(1 - resid @ resid / ((y - y.mean()) ** 2).sum())


def test_d_log_d_at_zero_and_the_rl_form():
    assert d_log_d(np.array([0.0, 1.0, np.e])).tolist() == pytest.approx([0.0, 0.0, np.e])
    f = fit_rl([0.0, 0.5, 1.0, 2.0], predict("rl", 0.5, 0.2, [0.0, 0.5, 1.0, 2.0]))
    assert f["alpha"] == pytest.approx(0.5) and f["beta"] == pytest.approx(0.2)


def test_too_few_points_give_no_fit_with_a_reason():
    for d, y in (([0.0, 1.0], [0.0, 0.5]), ([0.0, 0.0, 1.0], [0.0, 0.1, 0.5])):
        f = fit_bon(d, y)
        assert f["alpha"] is None and f["beta"] is None and f["r2"] is None
        assert "too few points" in f["reason"]
    with pytest.raises(ValueError):
        fit_bon([0.0, 1.0, 2.0], [0.0, 1.0])


def test_fit_curve_picks_the_form_and_clips_negative_kl():
    pts = [{"kl": kl, "gold": g} for kl, g in ((-1e-4, 0.0), (0.25, 0.3), (1.0, 0.4), (4.0, 0.1))]
    assert fit_curve({"method": "bon", "points": pts})["form"] == "bon"
    rl = fit_curve({"method": "ppo", "points": pts})
    assert rl["form"] == "rl" and rl["n_points"] == 4


def test_best_of_n_curves_carry_their_fit():
    """Every curve from a score matrix (the engine's and the app's recomputed ones) is fitted."""
    rng = np.random.default_rng(1)
    gold = rng.normal(size=(4, 256))
    proxy = gold[..., None] + rng.normal(size=(4, 256, 3))  # members that track gold
    curves = bon_curves(gold, proxy, standard_objectives(3, 0.5))
    for c in curves:
        d = np.sqrt([p["kl"] for p in c["points"]])
        assert c["fit"] == fit_bon(d, [p["gold"] for p in c["points"]])
        assert c["fit"]["alpha"] > 0 and c["fit"]["r2"] > 0.9


def test_engine_results_carry_fit(tmp_path):
    """A tiny real best-of-n and PPO run: every curve has a fit of its method's form."""
    from backend.cache import ArtifactCache
    from backend.experiment import run_experiment
    from tests.jobs_support import tiny_config

    cache = ArtifactCache(root=tmp_path)
    bon = run_experiment(tiny_config(), cache=cache).result
    assert {c["fit"]["form"] for c in bon["curves"]} == {"bon"}
    assert all(c["fit"]["r2"] is not None for c in bon["curves"])
    ppo_cfg = tiny_config().replace(
        method="ppo",
        **{"ppo.steps": 4, "ppo.eval_every": 1, "ppo.batch_size": 16, "ppo.eval_samples": 8,
           "ppo.norm_samples": 64},
    )  # fmt: skip
    (curve,) = run_experiment(ppo_cfg, cache=cache).result["curves"]
    assert curve["fit"]["form"] == "rl" and curve["fit"]["n_points"] == 5
    d = np.sqrt(np.maximum([p["kl"] for p in curve["points"]], 0.0))
    assert curve["fit"] == fit_rl(d, [p["gold"] for p in curve["points"]])
