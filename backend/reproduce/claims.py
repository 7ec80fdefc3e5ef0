"""The claims: each paper statement, what the analysis measured, and a verdict computed from
thresholds stated here (and printed in the report)."""

from __future__ import annotations

import numpy as np

from backend.reproduce.plan import ENSEMBLE, NOISES
from backend.summary import SINGLE_AVG

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
VERDICTS = ("holds", "partly", "fails")


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
    over = _stat(main, SINGLE_AVG, "overoptimization")
    rises = _stat(main, SINGLE_AVG, "proxy_rises")
    ok = [o >= OVEROPT_MIN and r for o, r in zip(over, rises, strict=True)]
    pk, fin = _stat(main, SINGLE_AVG, "gold_peak"), _stat(main, SINGLE_AVG, "gold_final")
    n_peak = _stat(main, SINGLE_AVG, "n_at_peak")
    measured = (
        f"Single RM (members 0-{a['ensemble'] - 1} averaged), 25% label noise: gold peaks at "
        f"{_ms(pk)} (n = {', '.join(str(n) for n in n_peak)}) and ends at {_ms(fin)}, losing "
        f"{_pct(over)} of its peak gain; the proxy ends at "
        f"{_ms(_stat(main, SINGLE_AVG, 'proxy_final'))}. Overoptimizes (loss >= "
        f"{OVEROPT_MIN:.0%}, proxy rising) in {_seeds_text(ok)}."
    )
    clean = a["bon"].get("0")
    if clean:
        measured += (
            f" Without label noise: peak {_ms(_stat(clean, SINGLE_AVG, 'gold_peak'))}, final "
            f"{_ms(_stat(clean, SINGLE_AVG, 'gold_final'))}."
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
    loss_noisy = _gold_lost(noisy, SINGLE_AVG)
    mean_over = _stat(noisy, "mean", "overoptimization")
    mean_ok = [o >= OVEROPT_MIN for o in mean_over]
    parts = []
    worse = []
    if clean:
        loss_clean = _gold_lost(clean, SINGLE_AVG)
        worse = [n > c for n, c in zip(loss_noisy, loss_clean, strict=True)]
        parts.append(
            f"Single RM: gold lost from peak to n = N is {_ms(loss_noisy, '.2f')} with 25% "
            f"label noise against {_ms(loss_clean, '.2f')} without (final "
            f"{_ms(_stat(noisy, SINGLE_AVG, 'gold_final'))} against "
            f"{_ms(_stat(clean, SINGLE_AVG, 'gold_final'))}); worse with noise in "
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
    single = _stat(main, SINGLE_AVG, "gold_final")
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
    parts.append(seen_text(main))
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


def seen_text(block: dict) -> str:
    """What the ensemble could see at n = N (Eisenstein et al.): how much of the members' error
    at WCO's and UWO's picks is shared, and how correlated their errors are."""
    diag = block.get("diagnostics")
    if not diag:
        return ""
    shares = [
        f"{obj.upper()} {_pct(diag['at_n_max'][obj]['shared_share'])}"
        for obj in ("wco", "uwo")
        if obj in diag["at_n_max"]
    ]
    rho = [r for r in diag["error_corr"] if r is not None]
    text = f"At n = N the members share {' and '.join(shares)} of their squared error at the pick"
    if rho:
        text += f" (their errors correlate at {_ms(rho, '.2f')})"
    return text + ", which no objective of their scores can see."


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


def _dpo_betas(a: dict) -> list[str]:
    """The sweep's betas (keys of a["dpo"]), smallest first."""
    return sorted(a["dpo"], key=float)


def claim_dpo_overoptimizes(a: dict) -> dict:
    betas = _dpo_betas(a)
    small, large = a["dpo"][betas[0]], a["dpo"][betas[-1]]
    over = _stat(small, "dpo", "overoptimization")
    ok = [o >= OVEROPT_MIN for o in over]
    kl_small, kl_large = _stat(small, "dpo", "kl_final"), _stat(large, "dpo", "kl_final")
    lost_small, lost_large = _gold_lost(small, "dpo"), _gold_lost(large, "dpo")
    lower_kl = float(np.mean(kl_large)) < float(np.mean(kl_small))
    falls_less = float(np.mean(lost_large)) < float(np.mean(lost_small))
    rows = "; ".join(
        f"beta {b}: peak {_ms(_stat(a['dpo'][b], 'dpo', 'gold_peak'))} at KL "
        f"{_ms(_stat(a['dpo'][b], 'dpo', 'kl_at_peak'), '.1f')}, final "
        f"{_ms(_stat(a['dpo'][b], 'dpo', 'gold_final'))} at KL "
        f"{_ms(_stat(a['dpo'][b], 'dpo', 'kl_final'), '.1f')}"
        for b in betas
    )
    measured = (
        f"DPO on the experiment's noisy pairs, no reward model: {rows}. At beta {betas[0]} gold "
        f"loses {_pct(over)} of its peak gain (>= {OVEROPT_MIN:.0%} in {_seeds_text(ok)}); "
        f"beta {betas[-1]} ends at {'lower' if lower_kl else 'higher'} KL "
        f"({_ms(kl_large, '.1f')} against {_ms(kl_small, '.1f')}) and loses "
        f"{_ms(lost_large, '.2f')} gold from its peak against {_ms(lost_small, '.2f')}."
    )
    return {
        "id": "7a",
        "claim": "Direct alignment overoptimizes too",
        "paper": "DPO, IPO and SLiC train no reward model and still overoptimize: gold rises "
        "then falls as KL grows, more so with a larger KL budget (smaller beta) (Rafailov et al. "
        "2024).",
        "measured": measured,
        "verdict": _verdict([*ok, lower_kl, falls_less], ok),
        "criterion": f"at the smallest beta every seed loses >= {OVEROPT_MIN:.0%} of its peak "
        "gain, and the largest beta ends at a lower seed-mean KL and loses less gold (peak - "
        "final) than the smallest (partly: the smallest beta overoptimizes in some seeds)",
        "figure": "dpo",
    }


def claim_dpo_one_epoch(a: dict) -> dict:
    parts, early, over_runs = [], [], 0
    for b in _dpo_betas(a):
        block = a["dpo"][b]
        peaks = _stat(block, "dpo", "epoch_at_peak")
        overs = _stat(block, "dpo", "overoptimization")
        mine = [e <= 1.0 for e, o in zip(peaks, overs, strict=True) if o >= OVEROPT_MIN]
        over_runs += len(mine)
        early += mine
        parts.append(
            f"beta {b}: peak at epoch {', '.join(f'{e:.2f}' for e in peaks)} "
            f"({len(mine)} of {len(peaks)} overoptimize, {sum(mine)} of them peak by epoch 1)"
        )
    return {
        "id": "7b",
        "claim": "Direct alignment overoptimizes before one epoch",
        "paper": "The gold peak often comes before a single epoch over the preference data is "
        "done (Rafailov et al. 2024).",
        "measured": "; ".join(parts) + ".",
        "verdict": _verdict(early or [False], early),
        "criterion": f"every run that overoptimizes (loses >= {OVEROPT_MIN:.0%} of its peak gain) "
        "peaks within the first epoch (partly: some of them)",
        "figure": "dpo",
    }


def claim_dpo_form(a: dict) -> dict:
    r2 = a["fits"].get("dpo") or []
    med = float(np.median(r2)) if r2 else float("nan")
    fits = [a["dpo"][b]["curves"]["dpo"]["fit"].get("r2") for b in _dpo_betas(a)]
    per_beta = ", ".join(
        f"{b}: {'n/a' if x is None else format(x, '.2f')}"
        for b, x in zip(_dpo_betas(a), fits, strict=True)
    )
    mean_r2 = [x for x in fits if x is not None]
    med_mean = float(np.median(mean_r2)) if mean_r2 else float("nan")
    return {
        "id": "7c",
        "claim": "Gao et al.'s RL form fits direct alignment's curves",
        "paper": "Gold against d = √KL follows d(α − β log d) for DPO, IPO and SLiC as for RL "
        "(Rafailov et al. 2024).",
        "measured": f"RL form on every DPO run: median R² {med:.3f} over {len(r2)} runs "
        f"({sum(x >= R2_MIN for x in r2)} with R² >= {R2_MIN:g}); on the seed-mean curves by "
        f"beta ({per_beta}), median {med_mean:.3f}.",
        "verdict": _verdict([med >= R2_MIN], [med_mean >= R2_MIN]),
        "criterion": f"median R² >= {R2_MIN:g} over the runs (partly: over the seed-mean curves)",
        "figure": "dpo",
    }


def evaluate(analysis: dict) -> list[dict]:
    """The claims, in the order of science.md's headline claims, then Gao's forms, then direct
    alignment's (Rafailov et al. 2024). Each: id, claim, paper, measured, verdict (holds |
    partly | fails), criterion, figure."""
    fns = [claim_single_bon, claim_noise_and_mean, claim_conservative_bon]
    if analysis["ppo"]:
        fns.append(claim_ppo)
    fns += [claim_members, claim_lambda, claim_forms]
    if analysis.get("dpo"):
        fns += [claim_dpo_overoptimizes, claim_dpo_one_epoch, claim_dpo_form]
    return [fn(analysis) for fn in fns]
