"""The Learn page's steps as numbers and sentences, computed from the shipped results (never
written by hand: a sentence says "holds its peak" only when the curve does). No Streamlit here,
so every sentence is tested against the stored numbers (tests/test_lessons.py).

The headline numbers are backend.summary's (curve_stats: peak, final, overoptimization = the
share of the gain up to the peak lost again by the last point); the single members become one
curve with a band (backend.summary.group_curve). Shape letters: P prompts, N answers per prompt.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from app.answers import draw
from app.describe import SINGLE_GROUP
from app.examples import Example
from backend.summary import curve_stats, group_curve
from backend.worlds.lists_words import off_topic_items
from backend.worlds.text import decode_tokens

HOLDS = 0.05  # a curve that loses at most 5% of its peak gain "holds its peak"
NUMBER = re.compile(r"\b(\d+)\b")


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def x_name(curve: dict) -> str:
    first = curve["points"][0] if curve["points"] else {}
    return "step" if "step" in first else "n"


def stats(curve: dict) -> dict:
    return curve_stats(curve["points"], x_name(curve))


def at_x(curve: dict, value: int) -> str:
    x = x_name(curve)
    return f"{x} = {value:,}"


def fate(curve: dict) -> str:
    """What happened to a curve's gold, in words that its numbers make true: "holds its peak
    (+0.92 at n = 64, +0.90 at n = 4,096)" or "loses 41% of the gold it gained by its peak
    (+0.69 at n = 8, +0.28 at n = 4,096)"."""
    s, x = stats(curve), x_name(curve)
    last = curve["points"][-1][x]
    where = f"{s['gold_peak']:+.2f} at {at_x(curve, s[f'{x}_at_peak'])}, "
    where += f"{s['gold_final']:+.2f} at {at_x(curve, last)}"
    gain = s["gold_peak"] - s["gold_start"]
    if gain <= 0:
        return f"never rises above where it starts ({where})"
    if s["overoptimization"] <= HOLDS:
        return f"holds its peak ({where})"
    return f"loses {pct(s['overoptimization'])} of the gold it gained by its peak ({where})"


def singles_group(ex: Example, members: list[int] | None = None) -> dict:
    """The single members (all, or `members`) as one average curve with a band."""
    singles = [c for c in ex.singles() if members is None or c.get("member") in members]
    return group_curve(singles, SINGLE_GROUP)


# ---- (a) one proxy, slide n ------------------------------------------------------------------


def point_at(curve: dict, n: int) -> dict:
    return next(p for p in curve["points"] if p["n"] == n)


def one_proxy_sentence(curve: dict, n: int) -> str:
    """Proxy and gold of one proxy's best-of-n at n, against its peak and its end."""
    p, s = point_at(curve, n), stats(curve)
    peak_n, last = s["n_at_peak"], curve["points"][-1]
    text = (
        f"At n = {n:,} best-of-n on {curve['label']} scores {p['proxy']:+.2f} on the proxy and "
        f"{p['gold']:+.2f} on gold (gold std units; the initial policy scores 0)."
    )
    gain = s["gold_peak"] - s["gold_start"]
    if n < peak_n:
        text += f" Gold is still rising: it peaks at {s['gold_peak']:+.2f} at n = {peak_n:,}."
    elif n == peak_n:
        text += " This is gold's peak."
    elif gain > 0:
        lost = (s["gold_peak"] - p["gold"]) / gain
        text += (
            f" Gold peaked at {s['gold_peak']:+.2f} at n = {peak_n:,} and has lost "
            f"{pct(lost)} of that gain since"
        )
        rising = p["proxy"] > point_at(curve, peak_n)["proxy"]
        text += ", while the proxy kept rising." if rising else "."
    if n != last["n"]:
        text += f" At n = {last['n']:,}: proxy {last['proxy']:+.2f}, gold {last['gold']:+.2f}."
    return text


def picks(arrays: dict, result: dict, member: int, n: int, seed: int = 0) -> pd.DataFrame:
    """For every prompt, the answer best-of-n on one member returns for one draw of n of its N
    answers (draw `seed`, as the answer explorer's), with its gold in std units and in the
    world's points (gold = (points - mean) / std, one mean and std over all P*N answers of the
    initial policy: a global standardization, not per prompt)."""
    P, N = arrays["gold"].shape
    norm = (result.get("normalization") or {}).get("gold") or {}
    mu, sd = norm.get("mean"), norm.get("std")
    idx = draw(N, n, seed)  # (n,)
    rows = []
    for p in range(P):
        score = arrays["proxy"][p, idx, member]
        a = int(idx[int(np.argmax(score))])
        text = decode_tokens(arrays["answers"][p, a][None], arrays["vocab"])[0]
        gold = float(arrays["gold"][p, a])
        rows.append(
            {
                "prompt": str(arrays["prompts"][p]),
                "picked answer": text,
                "words": len(text.split()),
                "gold (std)": gold,
                "gold (points)": gold * sd + mu if mu is not None and sd else None,
                "proxy": float(score.max()),
            }
        )
    return pd.DataFrame(rows)


def describe_picks(table: pd.DataFrame) -> dict:
    """What the picked answers are, counted: words, items asked (the first number of a prompt),
    empty answers, answers with items of another topic (toy-lists prompts), that repeat a word,
    that use a word of the prompt, and those below gold 0."""
    words = [str(a).split() for a in table["picked answer"]]
    off = [
        off_topic_items(str(p), str(a))
        for p, a in zip(table["prompt"], table["picked answer"], strict=True)
    ]
    asked = [NUMBER.search(str(p)) for p in table["prompt"]]
    prompt_words = [set(str(p).split()) - {":"} for p in table["prompt"]]
    return {
        "count": len(table),
        "words": float(np.mean([len(w) for w in words])) if words else 0.0,
        "asked": float(np.mean([int(m[1]) for m in asked])) if all(asked) else None,
        "empty": sum(not w for w in words),
        "repeat": sum(len(set(w)) < len(w) for w in words),
        "prompt_word": sum(bool(set(w) & pw) for w, pw in zip(words, prompt_words, strict=True)),
        "off_topic": None if None in off else sum(o > 0 for o in off),
        "below_zero": int((table["gold (std)"] < 0).sum()),
        "gold": float(table["gold (std)"].mean()),
    }


def picks_sentence(at_n: dict, at_1: dict, n: int, label: str) -> str:
    """The picked answers at n described by their counts, beside those at n = 1 (a plain
    sample of the initial policy)."""
    asked = f" where the prompts ask for {at_n['asked']:.1f} items" if at_n["asked"] else ""
    text = (
        f"The answers {label} picks at n = {n:,} (one draw per prompt, {at_n['count']} prompts) "
        f"have {at_n['words']:.1f} words on average{asked} (at n = 1: {at_1['words']:.1f}); "
        f"{at_n['below_zero']} of {at_n['count']} score below the initial policy's average gold "
        f"(their mean {at_n['gold']:+.2f} std, at n = 1 {at_1['gold']:+.2f})"
    )
    parts = []
    if at_n.get("off_topic"):
        off_1 = f" (at n = 1: {at_1['off_topic']})" if at_1.get("off_topic") is not None else ""
        parts.append(f"{at_n['off_topic']} name items of another topic{off_1}")
    if at_n["empty"]:
        parts.append(f"{at_n['empty']} {'is' if at_n['empty'] == 1 else 'are'} empty")
    if at_n["repeat"]:
        parts.append(f"{at_n['repeat']} {'repeats' if at_n['repeat'] == 1 else 'repeat'} a word")
    if at_n["prompt_word"]:
        one = at_n["prompt_word"] == 1
        parts.append(f"{at_n['prompt_word']} {'uses' if one else 'use'} a word of the prompt")
    return text + (": " + ", ".join(parts) if parts else "") + "."


# ---- (b) shared errors -----------------------------------------------------------------------


def errors_facts(ex: Example, objective: str = "wco") -> dict:
    """What an ensemble can see in one world: the members' error correlation, and at the last n
    the share of squared error at the objective's pick that all members share."""
    curve = ex.curve(objective)
    last = curve["points"][-1]
    ens = ex.result.get("ensemble") or {}
    return {
        "name": ex.name,
        "corr": ens.get("error_corr"),
        "ceiling": ens.get("averaging_ceiling"),
        "n": last["n"],
        "share": last.get("shared_share"),
        "shared_error": last.get("shared_error"),
        "spread": last.get("member_sd"),
        "lost": stats(curve)["overoptimization"],
        "final": stats(curve)["gold_final"],
        "label": curve["label"].upper() if objective != "uwo" else "UWO",
    }


def errors_world_sentence(f: dict) -> str:
    return (
        f"{f['name']}: the members' errors correlate at {f['corr']:.2f}; at n = {f['n']:,} "
        f"{pct(f['share'])} of the squared error at {f['label']}'s pick is shared "
        f"(over-rated by {f['shared_error']:+.2f} alike, spread ±{f['spread']:.2f}), and "
        f"{f['label']} ends at {f['final']:+.2f}."
    )


def errors_compare_sentence(shared: dict, other: dict) -> str:
    """The two worlds side by side, with the link between shared error and loss stated only as
    far as these numbers go."""
    more = shared["share"] > other["share"]
    worse = shared["final"] < other["final"]
    text = (
        f"Where more of the error is shared ({shared['name']}: {pct(shared['share'])} against "
        f"{pct(other['share'])})" if more else
        f"Shared share of the error: {shared['name']} {pct(shared['share'])}, "
        f"{other['name']} {pct(other['share'])}"
    )  # fmt: skip
    if more and worse:
        text += (
            f", {shared['label']} ends lower ({shared['final']:+.2f} against "
            f"{other['final']:+.2f}): an objective of the members' scores cannot see what they "
            "all get wrong."
        )
    elif more:
        text += (
            f", yet {shared['label']} does not end lower here ({shared['final']:+.2f} against "
            f"{other['final']:+.2f})."
        )
    else:
        text += f"; {shared['label']} ends at {shared['final']:+.2f} and {other['final']:+.2f}."
    return text


# ---- (c) conservative objectives and lambda --------------------------------------------------


def objective_sentence(singles: dict, mean: dict, wco: dict, uwo: dict, lam: float) -> str:
    return (
        f"At λ = {lam:g} UWO {fate(uwo)}; WCO {fate(wco)}; the mean {fate(mean)}; the "
        f"single members' average {fate(singles)}."
    )


# ---- (d) label noise ------------------------------------------------------------------------


def noise_sentence(noisy: Example, clean: Example, objective: str = "wco") -> str:
    def facts(ex: Example) -> tuple[str, dict, dict]:
        noise = ex.result["config"]["preferences"]["label_noise"]
        return f"{noise:.0%}", stats(singles_group(ex)), stats(ex.curve(objective))

    (nn, ns, nw), (cn, cs, cw) = facts(noisy), facts(clean)
    label = objective.upper()
    text = (
        f"With {nn} of the labels flipped ({noisy.name}) single members lose "
        f"{pct(ns['overoptimization'])} of their peak gain and {label} "
        f"{pct(nw['overoptimization'])} (ending at {ns['gold_final']:+.2f} and "
        f"{nw['gold_final']:+.2f}); with {cn} "
        f"({clean.name}) single members lose {pct(cs['overoptimization'])} and {label} "
        f"{pct(cw['overoptimization'])} (ending at {cs['gold_final']:+.2f} and "
        f"{cw['gold_final']:+.2f})."
    )
    if cw["gold_final"] > nw["gold_final"] and cs["gold_final"] > ns["gold_final"]:
        text += " Clean labels end higher for both."
    return text


# ---- (e) PPO and direct alignment -------------------------------------------------------------


def methods_sentence(named: list[tuple[str, dict]]) -> str:
    """Each method's gold against its KL from the initial policy: peak, KL at the peak, end."""
    parts = []
    for name, curve in named:
        s = stats(curve)
        kl_end = curve["points"][-1]["kl"]
        parts.append(
            f"{name} peaks at {s['gold_peak']:+.2f} (KL {s['kl_at_peak']:.1f} nats) and ends at "
            f"{s['gold_final']:+.2f} (KL {kl_end:.1f})"
            + (
                f", losing {pct(s['overoptimization'])} of its gain"
                if s["overoptimization"] > HOLDS
                else ""
            )
        )
    return "; ".join(parts) + "."


def methods_title(named: list[tuple[str, dict]]) -> str:
    """The methods chart's title: how much of its peak gain each method loses by its end."""
    parts = []
    for name, curve in named:
        s = stats(curve)
        gained = s["gold_peak"] > s["gold_start"]
        parts.append(f"{name} {pct(s['overoptimization'])}" if gained else f"{name} never rises")
    return "Share of the gain up to the peak (★) lost by the end:<br>" + " · ".join(parts)
