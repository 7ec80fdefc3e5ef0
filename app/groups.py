"""Runs on the Compare page: runs that differ only by seed form a seed group, drawn as one curve
(the seeds' mean) with a band (their lowest and highest value), as Weights & Biases groups runs.
The math is backend/summary.py's (group_curve, band_points); this module only decides what
belongs together."""

from __future__ import annotations

import json

from app.describe import used_config
from backend.summary import average_points, group_curve, on_common_x


def seed_key(exp: dict) -> str:
    """What a run is apart from its seed (its used config without the seed)."""
    flat = {k: v for k, v in used_config(exp.get("config") or {}).items() if k != "seed"}
    return json.dumps(flat, sort_keys=True, default=str)


def seed_groups(exps: list[dict]) -> list[list[dict]]:
    """The runs grouped by seed_key, groups and runs in their first order."""
    groups: dict[str, list[dict]] = {}
    for e in exps:
        groups.setdefault(seed_key(e), []).append(e)
    return list(groups.values())


def run_curves(exp: dict) -> list[dict]:
    """A run's curves as Compare shows them: a best-of-n run's single members as one curve, their
    average ("single (avg of K)"); every other curve as stored."""
    curves = exp["result"]["curves"]
    singles = [c for c in curves if c["objective"] == "single" and c.get("method") == "bon"]
    out = [c for c in curves if c not in singles]
    if singles:
        avg = {**singles[0], "label": f"single (avg of {len(singles)})"}
        avg["points"] = average_points(on_common_x(singles))
        avg.pop("member", None)
        avg.pop("fit", None)
        out.insert(0, avg)
    return out


def objective_of(curve: dict) -> str:
    """The curve's objective (single, mean, wco, uwo) or, for direct alignment, its loss."""
    return curve.get("objective") or "?"


def compare_series(
    exps: list[dict], labels: dict[str, str], objectives: set[str], band: bool
) -> list[tuple[str, dict]]:
    """(legend label, curve) pairs: with `band`, each seed group of two or more runs as one
    curve per objective with band points (mean, lo, hi), labelled "<run> · N seeds"; otherwise
    every run on its own. Only curves whose objective is in `objectives`."""
    out = []
    for group in seed_groups(exps) if band else [[e] for e in exps]:
        per_run = [[c for c in run_curves(e) if objective_of(c) in objectives] for e in group]
        if len(group) == 1:
            out += [(labels[group[0]["id"]], c) for c in per_run[0]]
            continue
        name = f"{labels[group[0]['id']]} · {len(group)} seeds"
        by_label: dict[str, list[dict]] = {}
        for curves in per_run:
            for c in curves:
                by_label.setdefault(c["label"], []).append(c)
        for label, curves in by_label.items():
            grouped = group_curve(on_common_x(curves), label)
            grouped["seeds"] = [e["config"].get("seed") for e in group]
            out.append((name, grouped))
    return out
