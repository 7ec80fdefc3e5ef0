"""Headline numbers of a set of curves: start, peak and final gold, and how much was lost.

"Overoptimization" of a curve = (peak gold - final gold) / (peak gold - gold at the start):
0 when gold never falls from its peak, 1 when it falls all the way back to where it started.
Single members are also averaged pointwise into "single_avg" (members differ a lot; claims are
about the average member).
"""

from __future__ import annotations

import numpy as np

SINGLE_AVG = "single_avg"  # the summary's label of the single members averaged pointwise
OPTIONAL_MEANS = ("epoch", "implicit_acc", "implicit_margin")  # averaged where every curve has them


def curve_stats(points: list[dict], x: str = "n") -> dict:
    gold = np.array([p["gold"] for p in points])
    proxy = [p["proxy"] for p in points]  # None throughout where no proxy scored (DPO)
    peak = int(np.argmax(gold))
    gain = gold[peak] - gold[0]
    out = {
        "gold_start": float(gold[0]),
        "gold_peak": float(gold[peak]),
        f"{x}_at_peak": points[peak][x],
        "kl_at_peak": float(points[peak]["kl"]),
        "gold_final": float(gold[-1]),
        "proxy_final": None if proxy[-1] is None else float(proxy[-1]),
        "proxy_rises": None if proxy[-1] is None else bool(proxy[-1] > proxy[0]),
        "overoptimization": float((gold[peak] - gold[-1]) / gain) if gain > 0 else 0.0,
    }
    if "epoch" in points[peak]:  # DPO: how far into the data the peak came
        out["epoch_at_peak"] = float(points[peak]["epoch"])
    return out


def average_points(curves: list[dict]) -> list[dict]:
    """Pointwise mean of curves that share their x values (a value missing in one curve, such
    as DPO's proxy without an ensemble, is None in the mean)."""
    keys = [k for k in ("n", "step") if k in curves[0]["points"][0]]
    out = []
    for pts in zip(*(c["points"] for c in curves), strict=True):
        avg = {k: pts[0][k] for k in keys}
        for k in ("kl", "gold", "proxy", "proxy_mean", *OPTIONAL_MEANS):
            vals = [p.get(k) for p in pts]
            if k in OPTIONAL_MEANS and not all(k in p for p in pts):
                continue
            avg[k] = None if any(v is None for v in vals) else float(np.mean(vals))
        out.append(avg)
    return out


def band_points(curves: list[dict]) -> list[dict]:
    """average_points, and per point the band of the curves around it: gold_lo and gold_hi (the
    lowest and highest gold), gold_sd (their population std), and proxy_lo, proxy_hi where every
    curve has a proxy. One line with a band for a group of curves that share their x values:
    an ensemble's single members, or runs that differ only by seed."""
    out = average_points(curves)
    for avg, pts in zip(out, zip(*(c["points"] for c in curves), strict=True), strict=True):
        for k in ("gold", "proxy"):
            vals = [p.get(k) for p in pts]
            if any(v is None for v in vals):
                continue
            avg[f"{k}_lo"], avg[f"{k}_hi"] = float(np.min(vals)), float(np.max(vals))
            if k == "gold":
                avg["gold_sd"] = float(np.std(vals))
    return out


def group_curve(curves: list[dict], label: str) -> dict:
    """One curve for a group (members, or seeds of one config): the first curve's method and
    objective, `label`, band_points as its points, and how many curves it stands for."""
    first = curves[0]
    keep = {k: first[k] for k in ("method", "objective", "lambda", "kl_coef", "beta") if k in first}
    return {**keep, "label": label, "points": band_points(curves), "group_size": len(curves)}


def summarize_curves(curves: list[dict]) -> dict:
    x = "n" if "n" in curves[0]["points"][0] else "step"
    out = {}
    singles = [c for c in curves if c["objective"] == "single"]
    if singles:
        out[SINGLE_AVG] = curve_stats(average_points(singles), x)
    for c in curves:
        out[c["label"]] = curve_stats(c["points"], x)
    return out


def on_common_x(curves: list[dict]) -> list[dict]:
    """The curves cut to the x values (n or step) every one of them has, so they can be
    averaged point by point (band_points): runs of one config and different seeds can differ by
    a few evaluation steps (DPO's seeds hold out different prompts)."""
    x = "n" if "n" in curves[0]["points"][0] else "step"
    common = set.intersection(*({p.get(x) for p in c["points"]} for c in curves))
    return [{**c, "points": [p for p in c["points"] if p.get(x) in common]} for c in curves]
