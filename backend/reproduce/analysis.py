"""What the suite's runs say: seed-mean curves, per-seed numbers, ensemble sizes, lambdas and
fit R^2s (JSON-ready; the claims and the figures read it)."""

from __future__ import annotations

import numpy as np

from backend.best_of_n import bon_curves, expected_best_of_n
from backend.diagnostics import ensemble_stats
from backend.fits import fit_curve
from backend.objectives import Objective
from backend.reproduce.plan import ENSEMBLE, LAMBDAS, NOISES, Spec
from backend.summary import SINGLE_AVG, average_points, curve_stats


def _subsets(K: int, k: int) -> list[list[int]]:
    """The K cyclic windows of k of K members (one when k = K): every member equally often."""
    if k >= K:
        return [list(range(K))]
    return [[(i + j) % K for j in range(k)] for i in range(K)]


def _final_gold(gold: np.ndarray, sel: np.ndarray) -> float:
    """Gold of best-of-N (n = N, the last point of a curve) by the selection score (P,N)."""
    N = gold.shape[1]
    return float(expected_best_of_n(sel, gold[..., None], [N])[0, :, 0].mean())


DIAGNOSTICS = ("shared_error", "member_sd", "shared_share")  # of each objective at n = N


def _seed_lists(per_seed: list[dict]) -> dict:
    """[{a: 1, b: {c: 2}}, {a: 3, b: {c: 4}}] -> {a: [1, 3], b: {c: [2, 4]}}."""
    first = per_seed[0]
    if isinstance(first, dict):
        return {k: _seed_lists([d[k] for d in per_seed]) for k in first}
    return list(per_seed)


def bon_measures(arrays: dict, lam: float, lambdas=LAMBDAS) -> dict:
    """What one best-of-n score matrix (gold (P,N), proxy (P,N,K)) says.

    curves: single_avg (members 0..E-1 averaged pointwise), mean, wco and uwo (lambda `lam`)
    over those E = min(5, K) members; sizes: final gold (n = N) of mean, wco and uwo for every
    ensemble size k, averaged over the K cyclic windows of k members; lambdas: UWO's final gold
    and overoptimization over the E members at each lambda."""
    gold, proxy = np.asarray(arrays["gold"], float), np.asarray(arrays["proxy"], float)
    K = proxy.shape[-1]
    E = list(range(min(ENSEMBLE, K)))
    singles = bon_curves(gold, proxy, [Objective("single", member=m) for m in E])
    ens = bon_curves(
        gold, proxy, [Objective("mean"), Objective("wco"), Objective("uwo", lam=lam)], members=E
    )
    curves = {SINGLE_AVG: average_points(singles)}
    curves.update({c["objective"]: c["points"] for c in ens})
    seen = ensemble_stats(gold, proxy[..., E], "")
    diagnostics = {
        "error_corr": seen["error_corr"],
        "averaging_ceiling": seen["averaging_ceiling"],
        "at_n_max": {c["objective"]: {k: c["points"][-1][k] for k in DIAGNOSTICS} for c in ens},
    }
    sizes: dict[str, list[float]] = {"mean": [], "wco": [], "uwo": []}
    for k in range(1, K + 1):
        for name in sizes:
            obj = Objective(name, lam=lam if name == "uwo" else None)
            finals = [_final_gold(gold, obj(proxy, members=s)) for s in _subsets(K, k)]
            sizes[name].append(float(np.mean(finals)))
    lam_final, lam_over = [], []
    for a in lambdas:
        (c,) = bon_curves(gold, proxy, [Objective("uwo", lam=a)], members=E)
        st = curve_stats(c["points"])
        lam_final.append(st["gold_final"])
        lam_over.append(st["overoptimization"])
    return {
        "curves": curves,
        "diagnostics": diagnostics,
        "stats": {label: curve_stats(pts) for label, pts in curves.items()},
        "sizes": {"k": list(range(1, K + 1)), **sizes},
        "lambdas": {"lambda": list(lambdas), "final": lam_final, "overoptimization": lam_over},
    }


def _mean_curve(
    per_seed: list[list[dict]], method: str, label: str, objective: str, member: int | None = None
) -> dict:
    """The pointwise seed mean of curves that share their x values, with its own fit."""
    curve = {"method": method, "objective": objective, "label": label}
    curve["points"] = average_points([{"points": p} for p in per_seed])
    if member is not None:
        curve["member"] = member
    curve["fit"] = fit_curve(curve)
    return curve


def analyze(specs: list[Spec], results: dict[str, dict], arrays: dict[str, dict]) -> dict:
    """Everything the claims and the figures need, JSON-ready: per setting the seed-mean curves
    and every seed's numbers (backend.summary.curve_stats), ensemble sizes, lambdas, fit R^2s.
    results and arrays are keyed by Spec.key (arrays: the best-of-n runs' score matrices)."""
    seeds = sorted({s.seed for s in specs})
    bon_specs = [s for s in specs if s.method == "bon"]
    lam = float(bon_specs[0].config.bon.uwo_lambda)
    out: dict = {"seeds": seeds, "ensemble": None, "uwo_lambda_bon": lam, "bon": {}, "ppo": {}}
    main_noise = NOISES[0]
    per_noise: dict[float, list[dict]] = {}
    for s in bon_specs:
        per_noise.setdefault(s.noise, []).append(bon_measures(arrays[s.key], lam))
    for noise, ms in per_noise.items():
        labels = list(ms[0]["curves"])
        out["bon"][f"{noise:g}"] = {
            "curves": {
                lb: _mean_curve(
                    [m["curves"][lb] for m in ms], "bon", lb, "single" if lb == SINGLE_AVG else lb
                )
                for lb in labels
            },
            "per_seed": {lb: [m["stats"][lb] for m in ms] for lb in labels},
            "diagnostics": _seed_lists([m["diagnostics"] for m in ms]),
        }
    main = per_noise[main_noise]
    K = len(main[0]["sizes"]["k"])
    out["ensemble"] = min(ENSEMBLE, K)
    out["sizes"] = {
        "k": main[0]["sizes"]["k"],
        **{o: [m["sizes"][o] for m in main] for o in ("mean", "wco", "uwo")},
    }
    out["lambdas"] = {
        "lambda": main[0]["lambdas"]["lambda"],
        "final": [m["lambdas"]["final"] for m in main],
        "overoptimization": [m["lambdas"]["overoptimization"] for m in main],
        "single_final": [m["stats"][SINGLE_AVG]["gold_final"] for m in main],
    }
    for beta in sorted({s.beta for s in specs if s.method == "ppo"}):
        group = [s for s in specs if s.method == "ppo" and s.beta == beta]
        objectives = list(dict.fromkeys(s.objective for s in group))
        curves, per_seed = {}, {}
        for obj in objectives:
            runs = []  # per seed; the single objective's members averaged pointwise first
            for seed in seeds:
                mine = [s for s in group if s.objective == obj and s.seed == seed]
                member_curves = [results[s.key]["curves"][0] for s in mine]
                runs.append(average_points(member_curves))
            members = sorted({s.member for s in group if s.objective == obj})
            label, member = obj, None
            if obj == "single" and len(members) == 1:
                label, member = Objective("single", member=members[0]).label, members[0]
            elif obj == "single":
                label = f"single avg of {len(members)}"
            curves[obj] = _mean_curve(runs, "ppo", label, obj, member)
            per_seed[obj] = [curve_stats(p, "step") for p in runs]
        out["ppo"][f"{beta:g}"] = {"curves": curves, "per_seed": per_seed}
    out["dpo"] = dpo_measures([s for s in specs if s.method == "dpo"], results)
    r2 = {"bon": [], "rl": [], "dpo": []}  # "rl": PPO's; DPO's (also the RL form) apart
    for s in specs:
        for c in results[s.key]["curves"]:
            fit = c.get("fit") or fit_curve(c)  # runs stored before fits existed: fit now
            if fit.get("r2") is not None:
                r2["dpo" if s.method == "dpo" else fit["form"]].append(float(fit["r2"]))
    out["fits"] = r2
    ppo_members = sorted({s.member for s in specs if s.method == "ppo" and s.objective == "single"})
    if len(ppo_members) > 1:
        out["ppo_single"] = f"members {ppo_members[0]}-{ppo_members[-1]}, averaged"
    return out


def dpo_measures(specs: list[Spec], results: dict[str, dict]) -> dict:
    """DPO's beta sweep: per beta (key f"{beta:g}") the seed-mean curve (with its own fit) and
    every seed's numbers (curve_stats with epoch_at_peak, the final KL, the fit's R^2). Seeds
    hold out different prompts, so their runs can have a few more or fewer steps: the mean
    curve covers the evaluations every seed has (the schedule is the same up to there)."""
    out = {}
    for beta in sorted({s.beta for s in specs}):
        curves = [results[s.key]["curves"][0] for s in specs if s.beta == beta]
        n = min(len(c["points"]) for c in curves)
        mean = _mean_curve([c["points"][:n] for c in curves], "dpo", f"beta={beta:g}", "dpo")
        per_seed = []
        for c in curves:
            fit = c.get("fit") or fit_curve(c)
            st = curve_stats(c["points"], "step")
            per_seed.append({**st, "kl_final": float(c["points"][-1]["kl"]), "r2": fit.get("r2")})
        out[f"{beta:g}"] = {"curves": {"dpo": mean}, "per_seed": {"dpo": per_seed}}
    return out
