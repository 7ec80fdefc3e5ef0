"""The reproduction suite: the headline claims of Coste et al. (ICLR 2024) and Gao et al.
(ICML 2023), measured in our world over seeds, each with a verdict computed from the numbers.

Pure functions, in the order they are used:
  plan(seeds, size)            the suite's experiments (configs), each with a key
  analyze(plan, results, arrays)  seed-mean curves and per-seed numbers of every comparison
  evaluate(analysis)           the claims: paper statement, what we measured, verdict
  report_markdown(...)         report.md
Running and storing the experiments is db/reproduce.py; the figures and the standalone HTML page
are app/reproduction.py; the command is `python -m backend reproduce` (docs/reproduce.md).

Best-of-n needs one experiment per (seed, label noise): an ensemble of 8 members scored once.
The single-RM, mean, WCO and UWO curves over the paper's 5 members, every ensemble size 1..8 and
every UWO lambda are computed from that one score matrix (backend.best_of_n), so they cost
fractions of a second. PPO needs one training run per (seed, objective, beta): the expensive part.

Shape letters: P prompts, N answers per prompt, K members, S seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from backend.best_of_n import bon_curves, expected_best_of_n
from backend.cache import data_dir
from backend.config import ExperimentConfig
from backend.fits import fit_curve
from backend.objectives import Objective
from backend.presets import get_preset
from backend.summary import average_points, curve_stats

# ---- thresholds of the verdicts (also printed in the report) ---------------------------------
OVEROPT_MIN = 0.2  # a curve "overoptimizes": it loses >= 20% of its peak gain by its last point
ELIMINATED_MAX = 0.1  # "practically eliminates": it loses at most 10% of its peak gain
ENOUGH_FRACTION = 0.8  # "4-5 members are enough": 5 members get >= 80% of the best size's gain
LAMBDA_RANGE_MAX = 0.25  # "UWO is robust to lambda": final gold varies <= 0.25 gold std units
R2_MIN = 0.9  # "the functional form fits": median R^2 of the curves >= 0.9

THRESHOLDS = {
    "OVEROPT_MIN": (OVEROPT_MIN, "overoptimizes: (peak - final) / (peak - start) >= this"),
    "ELIMINATED_MAX": (ELIMINATED_MAX, "practically no overoptimization: that ratio <= this"),
    "ENOUGH_FRACTION": (
        ENOUGH_FRACTION,
        "enough members: 5 members reach this fraction of the best ensemble size's gain over 1",
    ),
    "LAMBDA_RANGE_MAX": (
        LAMBDA_RANGE_MAX,
        "robust to lambda: max - min of the final gold over the lambdas (gold std units)",
    ),
    "R2_MIN": (R2_MIN, "a form fits: median R^2 over the curves >= this"),
}

ENSEMBLE = 5  # the paper's ensemble size: best-of-n objectives are compared over members 0..4
NOISES = (0.25, 0.0)  # label noise of the best-of-n experiments (the first is the main setting)
BETAS = (0.0, 0.01)  # PPO's KL penalties in the paper
LAMBDAS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)  # UWO lambdas, from the score matrix (0 = mean)
VERDICTS = ("holds", "partly", "fails")


@dataclass(frozen=True)
class Size:
    """How big the suite's experiments are: changes to the toy-bon and toy-ppo presets (and, for
    the best-of-n run without label noise, `clean` on top of `bon`)."""

    name: str
    doc: str
    bon: dict
    ppo: dict
    ppo_objectives: tuple[str, ...]
    clean: dict = field(default_factory=dict)
    #: Members PPO's single objective is run against; the claims use their average (members
    #: differ a lot: on toy-ppo, one member's final gold ranges from -0.6 to -9 over seeds).
    ppo_members: tuple[int, ...] = (0,)


_TINY_DATA = {
    "preferences.pairs": 200,
    "preferences.eval_pairs": 50,
    "reward_models.members": 3,
}
SIZES = {
    "full": Size(
        "full",
        "the presets: toy-bon with 8 proxies (P = 20 x N = 4096), toy-ppo (200 steps) against "
        "single (each of members 0-4, averaged), mean, WCO and UWO",
        {"reward_models.members": 8},
        {},
        ("single", "mean", "wco", "uwo"),
        ppo_members=(0, 1, 2, 3, 4),
    ),
    # Quick shares one ensemble between best-of-n and PPO (toy-ppo's 12,000 pairs: member i is
    # the same artifact in both), so it trains 8 + 5 proxies instead of 8 + 8 + 5. 100 PPO steps:
    # at 60 the single proxy had not yet fallen below the ensembles (toy-ppo's mean curves cross
    # between steps 30 and 60).
    "quick": Size(
        "quick",
        "best-of-n on toy-ppo's 12,000 pairs with 8 proxies (5 without label noise), N = 1024 "
        "answers per prompt; toy-ppo for 100 steps with 32 evaluation answers per prompt, "
        "against single member 0, WCO and UWO (<= 10 min on 2 CPU cores)",
        {"preferences.pairs": 12_000, "reward_models.members": 8, "bon.samples": 1024},
        {"ppo.steps": 100, "ppo.eval_samples": 32, "ppo.norm_samples": 1024},
        ("single", "wco", "uwo"),
        clean={"reward_models.members": 5},
    ),
    "tiny": Size(  # for tests: seconds, numbers meaningless
        "tiny",
        "test size: 200 pairs, 3 proxies, 4 x 64 best-of-n answers, 4 PPO steps",
        {**_TINY_DATA, "bon.num_prompts": 4, "bon.samples": 64},
        {
            **_TINY_DATA,
            "ppo.steps": 4,
            "ppo.eval_every": 2,
            "ppo.batch_size": 16,
            "ppo.eval_samples": 8,
            "ppo.norm_samples": 64,
        },
        ("single", "wco", "uwo"),
    ),
}


# ---- plan ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One experiment of the suite. key: "bon/noise0.25/seed0", "ppo/wco/beta0.01/seed0" or
    "ppo/single3/beta0/seed0" (single objective against member 3)."""

    key: str
    method: str
    seed: int
    config: ExperimentConfig
    noise: float | None = None
    objective: str | None = None
    beta: float | None = None
    member: int | None = None

    @property
    def name(self) -> str:
        return f"reproduce · {self.key}"


def bon_key(noise: float, seed: int) -> str:
    return f"bon/noise{noise:g}/seed{seed}"


def ppo_key(objective: str, beta: float, seed: int, member: int = 0) -> str:
    name = f"single{member}" if objective == "single" else objective
    return f"ppo/{name}/beta{beta:g}/seed{seed}"


def plan(seeds: int, size: str = "full") -> list[Spec]:
    """The suite's experiments for seeds 0..seeds-1: best-of-n first (they train the proxies),
    then PPO."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}; got {size!r}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1; got {seeds}")
    sz = SIZES[size]
    bon = get_preset("toy-bon").replace(**sz.bon)
    ppo = get_preset("toy-ppo").replace(**sz.ppo)
    specs = []
    for seed in range(seeds):
        for noise in NOISES:
            changes = {"preferences.label_noise": noise, **(sz.clean if noise == 0 else {})}
            cfg = bon.replace(seed=seed, **changes)
            specs.append(Spec(bon_key(noise, seed), "bon", seed, cfg, noise=noise))
    for seed in range(seeds):
        for beta in BETAS:
            for obj in sz.ppo_objectives:
                for member in sz.ppo_members if obj == "single" else (0,):
                    cfg = ppo.replace(
                        seed=seed,
                        **{"ppo.objective": obj, "ppo.kl_coef": beta, "ppo.member": member},
                    )
                    key = ppo_key(obj, beta, seed, member)
                    specs.append(
                        Spec(key, "ppo", seed, cfg, objective=obj, beta=beta, member=member)
                    )
    return specs


# ---- analysis -----------------------------------------------------------------------------------


def _subsets(K: int, k: int) -> list[list[int]]:
    """The K cyclic windows of k of K members (one when k = K): every member equally often."""
    if k >= K:
        return [list(range(K))]
    return [[(i + j) % K for j in range(k)] for i in range(K)]


def _final_gold(gold: np.ndarray, sel: np.ndarray) -> float:
    """Gold of best-of-N (n = N, the last point of a curve) by the selection score (P,N)."""
    N = gold.shape[1]
    return float(expected_best_of_n(sel, gold[..., None], [N])[0, :, 0].mean())


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
    curves = {"single_avg": average_points(singles)}
    curves.update({c["objective"]: c["points"] for c in ens})
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
        "stats": {label: curve_stats(pts) for label, pts in curves.items()},
        "sizes": {"k": list(range(1, K + 1)), **sizes},
        "lambdas": {"lambda": list(lambdas), "final": lam_final, "overoptimization": lam_over},
    }


def _mean_curve(per_seed: list[list[dict]], method: str, label: str) -> dict:
    """The pointwise seed mean of curves that share their x values, with its own fit."""
    curve = {"method": method, "objective": label, "label": label}
    curve["points"] = average_points([{"points": p} for p in per_seed])
    if label.startswith("single #"):
        curve.update(objective="single", member=int(label.split("#")[1]))
    elif label.startswith("single"):
        curve.update(objective="single")
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
            "curves": {lb: _mean_curve([m["curves"][lb] for m in ms], "bon", lb) for lb in labels},
            "per_seed": {lb: [m["stats"][lb] for m in ms] for lb in labels},
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
        "single_final": [m["stats"]["single_avg"]["gold_final"] for m in main],
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
            label = obj
            if obj == "single":
                label = (
                    f"single #{members[0]}"
                    if len(members) == 1
                    else f"single avg of {len(members)}"
                )
            curves[obj] = _mean_curve(runs, "ppo", label)
            per_seed[obj] = [curve_stats(p, "step") for p in runs]
        out["ppo"][f"{beta:g}"] = {"curves": curves, "per_seed": per_seed}
    r2 = {"bon": [], "rl": []}
    for s in specs:
        for c in results[s.key]["curves"]:
            fit = c.get("fit") or fit_curve(c)  # runs stored before fits existed: fit now
            if fit.get("r2") is not None:
                r2[fit["form"]].append(float(fit["r2"]))
    out["fits"] = r2
    ppo_members = sorted({s.member for s in specs if s.method == "ppo" and s.objective == "single"})
    if len(ppo_members) > 1:
        out["ppo_single"] = f"members {ppo_members[0]}-{ppo_members[-1]}, averaged"
    return out


# ---- claims -------------------------------------------------------------------------------------


def _ms(values, fmt: str = "+.2f") -> str:
    """ "mean ± sd" over seeds (sample sd), or the one value."""
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return format(float(v[0]), fmt)
    return f"{format(float(v.mean()), fmt)} ± {float(v.std(ddof=1)):.2f}"


def _pct(ratios) -> str:
    """Overoptimization ratios as percent of the peak gain: "35% ± 12" (sd over seeds)."""
    v = 100 * np.asarray(ratios, dtype=float)
    return f"{v[0]:.0f}%" if len(v) == 1 else f"{v.mean():.0f}% ± {v.std(ddof=1):.0f}"


def _verdict(all_of: list[bool], any_of: list[bool]) -> str:
    """holds when every condition holds; partly when at least one of `any_of` does; else
    fails."""
    if all(all_of):
        return "holds"
    return "partly" if any(any_of) else "fails"


def _stat(block: dict, label: str, key: str) -> list[float]:
    return [st[key] for st in block["per_seed"][label]]


def _gold_lost(block: dict, label: str) -> list[float]:
    """Per seed: gold lost from the curve's peak to its last point (peak - final)."""
    peaks, finals = _stat(block, label, "gold_peak"), _stat(block, label, "gold_final")
    return [p - f for p, f in zip(peaks, finals, strict=True)]


def _seeds_text(flags: list[bool]) -> str:
    return f"{sum(flags)} of {len(flags)} seed{'s' if len(flags) > 1 else ''}"


def claim_single_bon(a: dict) -> dict:
    main = a["bon"][f"{NOISES[0]:g}"]
    over = _stat(main, "single_avg", "overoptimization")
    rises = _stat(main, "single_avg", "proxy_rises")
    ok = [o >= OVEROPT_MIN and r for o, r in zip(over, rises, strict=True)]
    pk, fin = _stat(main, "single_avg", "gold_peak"), _stat(main, "single_avg", "gold_final")
    n_peak = _stat(main, "single_avg", "n_at_peak")
    measured = (
        f"Single RM (members 0-{a['ensemble'] - 1} averaged), 25% label noise: gold peaks at "
        f"{_ms(pk)} (n = {', '.join(str(n) for n in n_peak)}) and ends at {_ms(fin)}, losing "
        f"{_pct(over)} of its peak gain; the proxy ends at "
        f"{_ms(_stat(main, 'single_avg', 'proxy_final'))}. Overoptimizes (loss >= "
        f"{OVEROPT_MIN:.0%}, proxy rising) in {_seeds_text(ok)}."
    )
    clean = a["bon"].get("0")
    if clean:
        measured += (
            f" Without label noise: peak {_ms(_stat(clean, 'single_avg', 'gold_peak'))}, final "
            f"{_ms(_stat(clean, 'single_avg', 'gold_final'))}."
        )
    return {
        "id": "1",
        "claim": "Single-RM best-of-n overoptimizes",
        "paper": "Gold reward peaks at moderate n and falls at large n while the proxy keeps "
        "rising (Gao et al.; Coste et al. Fig. 2).",
        "measured": measured,
        "verdict": _verdict(ok, ok),
        "criterion": f"in every seed the single-RM average loses >= {OVEROPT_MIN:.0%} of its peak "
        "gain and its proxy rises (partly: in some seeds)",
        "figure": "bon",
    }


def claim_noise_and_mean(a: dict) -> dict:
    noisy, clean = a["bon"][f"{NOISES[0]:g}"], a["bon"].get("0")
    loss_noisy = _gold_lost(noisy, "single_avg")
    mean_over = _stat(noisy, "mean", "overoptimization")
    mean_ok = [o >= OVEROPT_MIN for o in mean_over]
    parts = []
    worse = []
    if clean:
        loss_clean = _gold_lost(clean, "single_avg")
        worse = [n > c for n, c in zip(loss_noisy, loss_clean, strict=True)]
        parts.append(
            f"Single RM: gold lost from peak to n = N is {_ms(loss_noisy, '.2f')} with 25% "
            f"label noise against {_ms(loss_clean, '.2f')} without (final "
            f"{_ms(_stat(noisy, 'single_avg', 'gold_final'))} against "
            f"{_ms(_stat(clean, 'single_avg', 'gold_final'))}); worse with noise in "
            f"{_seeds_text(worse)}."
        )
    parts.append(
        f"Ensemble mean ({a['ensemble']} members, 25% noise) loses {_pct(mean_over)} of its peak "
        f"gain (final {_ms(_stat(noisy, 'mean', 'gold_final'))}); still overoptimizes in "
        f"{_seeds_text(mean_ok)}."
    )
    conds = worse + mean_ok
    return {
        "id": "2",
        "claim": "Label noise makes overoptimization worse; the plain ensemble mean still "
        "overoptimizes",
        "paper": "With 25% label noise overoptimization is more severe, and optimizing the mean "
        "of the ensemble does not prevent it (Coste et al.).",
        "measured": " ".join(parts),
        "verdict": _verdict(conds, conds),
        "criterion": "in every seed the single RM loses more gold (peak - final) with 25% noise "
        f"than without, and the mean loses >= {OVEROPT_MIN:.0%} of its peak gain (partly: some of "
        "these)",
        "figure": "bon",
    }


def claim_conservative_bon(a: dict) -> dict:
    main = a["bon"][f"{NOISES[0]:g}"]
    single = _stat(main, "single_avg", "gold_final")
    parts, above, gone = [], [], []
    for obj in ("wco", "uwo"):
        fin, over = _stat(main, obj, "gold_final"), _stat(main, obj, "overoptimization")
        up = [f > s for f, s in zip(fin, single, strict=True)]
        el = [o <= ELIMINATED_MAX for o in over]
        above += up
        gone += el
        gain = [f - s for f, s in zip(fin, single, strict=True)]
        rel = [g / abs(s) for g, s in zip(gain, single, strict=True) if abs(s) > 1e-9]
        parts.append(
            f"{obj.upper()}: final gold {_ms(fin)} vs single {_ms(single)} (gain {_ms(gain)}, "
            f"{_ms(np.multiply(rel, 100), '+.0f')}% of |single|), loses {_pct(over)} of its peak "
            f"gain; above single in {_seeds_text(up)}, overoptimization eliminated (<= "
            f"{ELIMINATED_MAX:.0%}) in {_seeds_text(el)}."
        )
    verdict = _verdict(above + gone, [all(above)])
    if verdict == "partly":
        parts.append("They soften the fall but do not remove it.")
    return {
        "id": "3",
        "claim": "WCO and UWO practically eliminate best-of-n overoptimization",
        "paper": "Worst-case and uncertainty-weighted optimization practically eliminate "
        "overoptimization in best-of-n and raise the final gold by up to about 70% over a "
        "single RM (Coste et al.).",
        "measured": " ".join(parts),
        "verdict": verdict,
        "criterion": "holds: WCO and UWO end above the single RM in every seed and lose <= "
        f"{ELIMINATED_MAX:.0%} of their peak gain; partly: above the single RM in every seed only",
        "figure": "bon",
    }


def claim_ppo(a: dict) -> dict:
    b0, b1 = a["ppo"].get("0"), a["ppo"].get("0.01")
    parts, beat, stopped, single_needs_more = [], [], [], []
    if b0:
        single = _stat(b0, "single", "gold_final")
        s_over = _stat(b0, "single", "overoptimization")
        parts.append(f"beta 0: single RM final gold {_ms(single)} (loses {_pct(s_over)})")
        for obj in [o for o in b0["per_seed"] if o != "single"]:
            fin, over = _stat(b0, obj, "gold_final"), _stat(b0, obj, "overoptimization")
            if obj in ("wco", "uwo"):
                beat += [f > s for f, s in zip(fin, single, strict=True)]
            parts.append(f"{obj.upper()} {_ms(fin)} (loses {_pct(over)})")
    if b1:
        s_over = _stat(b1, "single", "overoptimization")
        single_needs_more = [o >= OVEROPT_MIN for o in s_over]
        parts.append(
            f"beta 0.01: single final {_ms(_stat(b1, 'single', 'gold_final'))} (loses "
            f"{_pct(s_over)})"
        )
        for obj in [o for o in b1["per_seed"] if o != "single"]:
            fin, over = _stat(b1, obj, "gold_final"), _stat(b1, obj, "overoptimization")
            if obj in ("wco", "uwo"):
                stopped += [o <= ELIMINATED_MAX for o in over]
            parts.append(f"{obj.upper()} {_ms(fin)} (loses {_pct(over)})")
    measured = "; ".join(parts) + (
        f". WCO/UWO above the single RM at beta 0: {sum(beat)} of {len(beat)} runs; WCO/UWO "
        f"without overoptimization (<= {ELIMINATED_MAX:.0%}) at beta 0.01: {sum(stopped)} of "
        f"{len(stopped)} runs; single still overoptimizing at beta 0.01: "
        f"{sum(single_needs_more)} of {len(single_needs_more)} runs."
    )
    a_ok, b_ok = bool(beat) and all(beat), bool(stopped) and all(stopped)
    return {
        "id": "4",
        "claim": "PPO: conservative ensembles beat a single RM; a small KL penalty stops "
        "overoptimization",
        "paper": "In PPO, WCO and UWO always reduce overoptimization and outperform a single RM; "
        "with a small KL penalty (0.01) they stop overoptimizing at no performance cost, while a "
        "single RM needs a much larger penalty (Coste et al.).",
        "measured": measured,
        "verdict": _verdict([a_ok, b_ok, all(single_needs_more)], [a_ok, b_ok]),
        "criterion": "holds: at beta 0 WCO and UWO end above the single RM in every seed, at "
        f"beta 0.01 they lose <= {ELIMINATED_MAX:.0%} of their peak gain while the single RM "
        f"loses >= {OVEROPT_MIN:.0%}; partly: the first or the second part",
        "figure": "ppo",
    }


def claim_members(a: dict) -> dict:
    ks = a["sizes"]["k"]
    k5 = min(ENSEMBLE, ks[-1])
    parts, ok = [], []
    for obj in ("wco", "uwo"):
        finals = np.mean(a["sizes"][obj], axis=0)  # (k,) seed mean
        gain = finals - finals[0]
        best = float(gain.max())
        frac = float(gain[k5 - 1] / best) if best > 0 else float("nan")
        good = best > 0 and frac >= ENOUGH_FRACTION
        ok.append(good)
        curve = ", ".join(f"{k}: {f:+.2f}" for k, f in zip(ks, finals, strict=True))
        frac_text = f"{frac:.0%}" if best > 0 else "n/a (no size beats 1 member)"
        parts.append(
            f"{obj.upper()} final gold by ensemble size ({curve}); {k5} members get {frac_text} "
            f"of the best size's gain over 1 member (best: k = {ks[int(gain.argmax())]})."
        )
    return {
        "id": "5a",
        "claim": "4-5 ensemble members are about enough",
        "paper": "Gains from adding members level off at about 4-5 members (Coste et al.).",
        "measured": " ".join(parts) + " Best-of-n, 25% noise, seed means.",
        "verdict": _verdict(ok, ok),
        "criterion": f"for WCO and UWO, {k5} members reach >= {ENOUGH_FRACTION:.0%} of the best "
        "ensemble size's final-gold gain over one member (partly: for one of them)",
        "figure": "sizes",
    }


def claim_lambda(a: dict) -> dict:
    lams = a["lambdas"]["lambda"]
    finals = np.mean(a["lambdas"]["final"], axis=0)  # (L,)
    single = float(np.mean(a["lambdas"]["single_final"]))
    pos = [i for i, x in enumerate(lams) if x > 0]  # lambda 0 is the mean, not UWO
    span = float(finals[pos].max() - finals[pos].min())
    narrow = span <= LAMBDA_RANGE_MAX
    above = bool(np.all(finals[pos] > single))
    curve = ", ".join(f"{lams[i]:g}: {finals[i]:+.2f}" for i in pos)
    return {
        "id": "5b",
        "claim": "UWO is robust to lambda",
        "paper": "UWO's results change little over a wide range of lambda (Coste et al.).",
        "measured": f"Best-of-n UWO final gold by lambda ({curve}); range {span:.2f} against "
        f"the single RM's {single:+.2f}; every lambda above the single RM: "
        f"{'yes' if above else 'no'}. (lambda 0, the mean: {finals[lams.index(0.0)]:+.2f}.)"
        if 0.0 in lams
        else f"Best-of-n UWO final gold by lambda ({curve}); range {span:.2f}.",
        "verdict": _verdict([narrow, above], [narrow, above]),
        "criterion": f"over lambda > 0 the seed-mean final gold varies by <= {LAMBDA_RANGE_MAX:g} "
        "and is above the single RM at every lambda (partly: one of the two)",
        "figure": "lambdas",
    }


def claim_forms(a: dict) -> dict:
    parts, ok = [], []
    for form, name in (("bon", "best-of-n d(α − βd)"), ("rl", "RL d(α − β log d)")):
        r2 = a["fits"].get(form) or []
        if not r2:
            parts.append(f"{name}: no curves.")
            continue
        med = float(np.median(r2))
        ok.append(med >= R2_MIN)
        parts.append(
            f"{name}: median R² {med:.3f} over {len(r2)} curves (min {min(r2):.3f}, "
            f"{sum(x >= R2_MIN for x in r2)} with R² >= {R2_MIN:g})."
        )
    return {
        "id": "6",
        "claim": "Gao et al.'s functional forms fit the gold curves",
        "paper": "Gold reward against d = √KL follows d(α − βd) for best-of-n and "
        "d(α − β log d) for RL (Gao et al.).",
        "measured": " ".join(parts),
        "verdict": _verdict(ok, ok) if ok else "fails",
        "criterion": f"median R² >= {R2_MIN:g} for each method's curves (partly: for one)",
        "figure": "bon",
    }


def evaluate(analysis: dict) -> list[dict]:
    """The claims, in the order of science.md's headline claims, then Gao's forms. Each:
    id, claim, paper, measured, verdict (holds | partly | fails), criterion, figure."""
    fns = [claim_single_bon, claim_noise_and_mean, claim_conservative_bon]
    if analysis["ppo"]:
        fns.append(claim_ppo)
    fns += [claim_members, claim_lambda, claim_forms]
    return [fn(analysis) for fn in fns]


# ---- the report -------------------------------------------------------------------------------


def run_link(app_url: str, eid: str) -> str:
    return f"{app_url.rstrip('/')}/?run={eid}"


def setup_text(analysis: dict) -> str:
    """How to read the numbers (report.md, report.html and the app say the same)."""
    E, K = analysis["ensemble"], len(analysis["sizes"]["k"])
    return (
        "Numbers are means ± sample standard deviation over seeds; gold is in units of the "
        "initial policy's gold std (initial policy = 0); a curve's overoptimization is the "
        "share of its peak gain it loses by its last point, (peak − final) / (peak − start). "
        f"Best-of-n objectives use members 0-{E - 1} of an ensemble of {K} (single RM: those "
        f"members' curves averaged; ensemble sizes and UWO λ use the same score matrix, "
        f"UWO λ = {analysis['uwo_lambda_bon']:g} elsewhere); PPO's single RM: "
        f"{analysis.get('ppo_single', 'member 0')}. "
        "Verdicts come from the criteria below, computed from these numbers."
    )


def report_markdown(
    meta: dict, claims: list[dict], analysis: dict, runs: dict[str, str], app_url: str
) -> str:
    """report.md: the claims table, the criteria, the setup and a link to every run."""
    seeds = meta["seeds"]
    lines = [
        "# Goodhart Lab: reproduction report",
        "",
        f"Made {meta['created_at']} · size **{meta['size']}** ({SIZES[meta['size']].doc}) · "
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}).",
        "",
        setup_text(analysis),
        "",
        "| # | claim | paper | measured | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        cells = [c["id"], c["claim"], c["paper"], c["measured"], f"**{c['verdict']}**"]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    lines += ["", "## Criteria", ""]
    lines += [f"- **{c['id']}** {c['claim']}: {c['criterion']}." for c in claims]
    lines += ["", "Thresholds (backend/reproduce.py):", ""]
    lines += [f"- `{k}` = {v:g}: {doc}" for k, (v, doc) in THRESHOLDS.items()]
    lines += ["", "## Runs", ""]
    lines += [f"- {key}: [{eid}]({run_link(app_url, eid)})" for key, eid in runs.items()]
    lines += ["", "Figures: report.html (standalone) or the app's Reproduction page.", ""]
    return "\n".join(lines)


# ---- manifests: where the app finds reproductions ---------------------------------------------


def registry() -> Path:
    """<data>/reproductions/: one folder per reproduction (manifest.json, then the report)."""
    return data_dir() / "reproductions"


def new_manifest(specs: list[Spec], size: str, seeds: int, runs: dict[str, str], **extra) -> dict:
    t = datetime.now(UTC)
    rid = t.strftime("%Y%m%d-%H%M%S-%f")
    return {
        "id": rid,
        "created_at": t.isoformat(timespec="seconds"),
        "size": size,
        "seeds": list(range(seeds)),
        "runs": runs,  # spec key -> experiment id
        **extra,
    }


def save_json(path: Path, obj) -> None:
    """Write JSON through a temporary file and a rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=True))
    tmp.replace(path)


def save_manifest(manifest: dict) -> Path:
    folder = registry() / manifest["id"]
    save_json(folder / "manifest.json", manifest)
    return folder


def latest_manifest() -> dict | None:
    """The newest reproduction's manifest (by creation time), or None."""
    root = registry()
    if not root.exists():
        return None
    found = []
    for p in root.glob("*/manifest.json"):
        try:
            found.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return max(found, key=lambda m: m["created_at"] + m["id"]) if found else None


def specs_of(manifest: dict) -> list[Spec]:
    """The plan a manifest was made from."""
    return plan(len(manifest["seeds"]), manifest["size"])
