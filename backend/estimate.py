"""What a run costs before it starts, and progress that tells time while it runs.

`stage_costs(cfg, plan)`: the run's stages, each with whether the artifact cache already holds
it (reused) or it must be computed, and rough seconds from RATES (backend/experiment.py's
`plan_run` finds what is cached, from the same cache keys the Runner uses; nothing is trained).

`ProgressScale`: the engine reports progress at fixed fractions per stage (SEGMENTS); scaled by
the stages' estimated seconds, the stored fraction becomes roughly the fraction of the run's
time, so elapsed / fraction is an honest estimate of the whole (`time_left`). Pure: no torch.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from backend.config import ExperimentConfig
from backend.forked import span

# Seconds per unit of work on one CPU thread, toy world, from cold runs of the three presets on
# this 2-core CPU, idle (2026-12-06, load about 1: toy-bon 31.7 s, toy-ppo 36.6 s, toy-dpo
# 39.7 s in all; the proxies' rate again that afternoon, when they began to train 2x faster in
# forked processes: toy-bon estimated 15.9 s, took 14.4 s; and that evening, with each proxy
# minibatch's own table and scoring by it: the proxies estimated 8.6 s, took 8.1-8.3 s; the
# five members' scores 0.51 s).
# A busy machine is slower: `pace` scales them by its recent runs. Estimates: the form says so.
# (They were measured at load 6 before, which made an idle machine's estimate 2-5x too long,
# and the stages' shares of it wrong.)
RATES = {
    "prefs_pair": 4.3e-5,  # one preference pair: two answers sampled and labelled by gold
    "proxy_pair_epoch": 2.0e-5,  # one pair through one member's training, one epoch (forked)
    "sample": 2.3e-5,  # one best-of-n answer sampled and scored by gold
    "score": 2.0e-6,  # one answer scored by one member
    "ppo_step": 0.18,  # one PPO step of 64 rollouts and 4 epochs, its evaluations included
    "dpo_step": 0.030,  # one DPO step of 64 pairs, its evaluations included
    "dpo_ref_pair": 1.0e-4,  # one pair's reference log-probs (both answers)
    "load": 0.2,  # loading one cached artifact
}
MIN_SECONDS = 0.5  # a stage without an estimate (the curves, an SFT run to train) counts so
FLOOR_SECONDS = 0.05  # a stage's share of the progress bar is never zero
# The result's timings of each stage (what `pace` compares the estimate with).
STAGE_TIMINGS = {
    "prefs": ("preferences_s",), "proxies": ("reward_models_s",), "samples": ("sampling_s",),
    "scores": ("scoring_s",), "ppo_norm": ("ppo_norm_s",), "ppo": ("ppo_s", "ppo_eval_s"),
    "dpo_ref": ("dpo_ref_s",), "dpo": ("dpo_s", "dpo_eval_s"),
}  # fmt: skip
PACE_MIN_S = 2.0  # only stages estimated this long say something about the machine's pace

# The engine's progress fractions where each stage starts (backend/experiment.py, backend/ppo.py,
# backend/dpo.py); a stage runs until the next one starts, the last one until 1.
SEGMENTS = {
    "bon": (("sft", 0.0), ("prefs", 0.05), ("proxies", 0.1), ("samples", 0.4),
            ("scores", 0.6), ("curves", 0.95)),
    "ppo": (("sft", 0.0), ("prefs", 0.05), ("proxies", 0.1), ("ppo_norm", 0.4), ("ppo", 0.45)),
    "dpo": (("sft", 0.0), ("prefs", 0.05), ("proxies", 0.1), ("dpo_ref", 0.45), ("dpo", 0.5)),
}  # fmt: skip


@dataclass(frozen=True)
class StageCost:
    stage: str  # a SEGMENTS name
    what: str  # e.g. "3 of 5 proxies to train (2 reused)"
    reused: bool  # everything of this stage is in the cache
    seconds: float  # rough, from RATES


def _rounds(n: int, workers: int) -> int:
    """Rounds of `n` pieces run `workers` at a time (members and prompts go side by side)."""
    return math.ceil(n / max(1, workers)) if n else 0


def _reuse(cached: list[bool], noun: str, verb: str) -> tuple[str, bool]:
    """("2 of 5 proxies to train (3 reused)", all cached?) for per-member artifacts."""
    todo, n = cached.count(False), len(cached)
    if not todo:
        return f"{n} {noun}: reused", True
    kept = f" ({n - todo} reused)" if todo < n else ""
    return f"{todo} of {n} {noun} to {verb}{kept}", False


def stage_costs(cfg: ExperimentConfig, plan: dict, workers: int = 1) -> list[StageCost]:
    """The stages of `cfg` with rough seconds. `plan` (experiment.plan_run): {"sft": bool,
    "prefs": bool, "proxies": [bool] * K, "samples": bool, "samples_early": bool (sampled beside
    the pairs, in a forked child), "scores": [bool] * K,
    "ppo_norm": [bool] * K, and optionally "member_prefs", "member_sft": [bool] for the members
    an "independent" or "pretrain" ensemble still trains} (True: cached); `workers`: pieces that
    run side by side."""
    r, load, out = RATES, RATES["load"], []
    own_sft = plan.get("member_sft", [])  # a "pretrain" ensemble's members' own SFT runs
    own = ""
    if own_sft:
        todo = own_sft.count(False)
        own = f"; {_reuse(own_sft, 'members’ own SFT runs', 'train')[0]}"
        own += " (not estimated)" if todo else ""
    if plan["sft"] and not own_sft.count(False):
        seconds = load * (1 + len(own_sft))
        out.append(StageCost("sft", f"initial policy: reused{own}", True, seconds))
    elif plan["sft"]:  # a member's own SFT run: trained once, minutes (not estimated)
        out.append(StageCost("sft", f"initial policy: reused{own}", False, math.nan))
    else:  # a changed SFT config: trained once, minutes (not estimated)
        what = f"initial policy: to train (not estimated){own}"
        out.append(StageCost("sft", what, False, math.nan))
    pairs = cfg.preferences.pairs + cfg.preferences.eval_pairs
    what = f"{pairs:,} preference pairs: " + ("reused" if plan["prefs"] else "to sample and label")
    prefs = load if plan["prefs"] else pairs * r["prefs_pair"]
    out.append(StageCost("prefs", what, plan["prefs"], prefs))
    P, N = cfg.bon.num_prompts, cfg.bon.samples
    # Best-of-n answers sampled early run on a core of their own beside the pairs (one core's
    # work); what outlasts the pairs shares the cores with the proxies' training.
    early = plan.get("samples_early", False)  # best-of-n only (Runner.samples_early)
    spill = max(0.0, P * N * r["sample"] - prefs) / max(1, workers) if early else 0.0
    if plan["proxies"]:
        what, done = _reuse(plan["proxies"], "proxies", "train")
        each = cfg.preferences.pairs * cfg.reward_models.epochs * r["proxy_pair_epoch"]
        # Members train in forked processes, spread over the cores (backend/forked.py).
        seconds = span(plan["proxies"].count(False), workers) * each + len(plan["proxies"]) * load
        seconds += spill
        # An "independent" ensemble's members sample and label their own pairs first (in this
        # stage, in the same forked processes as their training).
        own = plan.get("member_prefs", [])
        if own.count(False):
            what += f"; {own.count(False)} of them first sample and label their own {pairs:,} pairs"
            seconds += span(own.count(False), workers) * pairs * r["prefs_pair"]
        out.append(StageCost("proxies", what, done, seconds))
    if cfg.method == "bon":
        if early:
            what, seconds = f"{P} x {N:,} answers: to sample beside the pairs and proxies", load
        else:
            what = f"{P} x {N:,} answers: " + ("reused" if plan["samples"] else "to sample")
            seconds = load if plan["samples"] else P * N * r["sample"] / max(1, workers)
        out.append(StageCost("samples", what, plan["samples"], seconds))
        what, done = _reuse(plan["scores"], "members' scores", "compute")
        rounds = _rounds(plan["scores"].count(False), workers)
        out.append(StageCost("scores", what, done, rounds * P * N * r["score"] + load))
        out.append(StageCost("curves", "curves from the score matrix", False, MIN_SECONDS))
    elif cfg.method == "ppo":
        pc = cfg.ppo
        what, done = _reuse(plan["ppo_norm"], "proxies' standardizations", "compute")
        seconds = plan["ppo_norm"].count(False) * pc.norm_samples * (r["sample"] + r["score"])
        out.append(StageCost("ppo_norm", what, done, seconds))
        per_step = r["ppo_step"] * (pc.batch_size / 64) * (1 + pc.epochs) / 5
        out.append(StageCost("ppo", f"{pc.steps} PPO steps to run", False, pc.steps * per_step))
    else:
        dc = cfg.dpo
        steps = math.ceil(cfg.preferences.pairs / dc.batch_size) * dc.epochs
        ref = cfg.preferences.pairs * r["dpo_ref_pair"]
        out.append(StageCost("dpo_ref", "reference log-probs of every pair", False, ref))
        seconds = steps * r["dpo_step"] * dc.batch_size / 64
        out.append(StageCost("dpo", f"{steps} {dc.loss.upper()} steps to run", False, seconds))
    return out


def pace(runs: list[tuple[dict, dict]]) -> float | None:
    """How much slower (> 1) or faster this machine ran than RATES say: the median over recent
    runs of actual / estimated seconds, over the stages estimated at PACE_MIN_S or more. `runs`:
    (result timings, result estimate {stage: seconds}) pairs. None without such a run."""
    ratios = []
    for timings, estimated in runs:
        stages = [k for k, v in (estimated or {}).items() if v >= PACE_MIN_S and k in STAGE_TIMINGS]
        want = sum(estimated[k] for k in stages)
        got = sum((timings or {}).get(t, 0.0) for k in stages for t in STAGE_TIMINGS[k])
        if want > 0 and got > 0:
            ratios.append(got / want)
    if not ratios:
        return None
    ratios.sort()
    mid = len(ratios) // 2
    median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
    return min(10.0, max(0.1, median))


def paced(costs: list[StageCost], factor: float | None) -> list[StageCost]:
    """The costs with their seconds times `factor` (unchanged for None)."""
    if factor is None:
        return costs
    return [StageCost(c.stage, c.what, c.reused, c.seconds * factor) for c in costs]


def total_seconds(costs: list[StageCost]) -> float:
    """The sum of the stages' seconds (nan when one is not known)."""
    return float(sum(c.seconds for c in costs))


class ProgressScale:
    """Maps the engine's progress fractions (SEGMENTS) to fractions of the estimated time, piece
    by piece (monotone, 0 -> 0, 1 -> 1)."""

    def __init__(self, method: str, costs: list[StageCost]) -> None:
        segments = SEGMENTS[method]
        seconds = {c.stage: c.seconds for c in costs}
        self.starts = [s for _, s in segments]
        self.ends = [*self.starts[1:], 1.0]
        w = [seconds.get(name, 0.0) for name, _ in segments]
        # A stage counts at its estimate, a reused one at its load (0.2 s): floored at
        # MIN_SECONDS, a cached initial policy took 6% of a short run's bar in its first 0.1 s,
        # and the pace it set said "about 2 s left" of 8. MIN_SECONDS stands in for a stage
        # with no estimate; none counts for nothing (FLOOR_SECONDS).
        w = [max(FLOOR_SECONDS, x if math.isfinite(x) else MIN_SECONDS) for x in w]
        total = sum(w)
        self.weights = [x / total for x in w]
        self.before = [sum(self.weights[:i]) for i in range(len(w))]

    def __call__(self, frac: float) -> float:
        if frac >= 1.0:
            return 1.0
        frac = max(0.0, frac)
        i = max(0, bisect.bisect_right(self.starts, frac) - 1)
        lo, hi = self.starts[i], self.ends[i]
        local = (frac - lo) / (hi - lo) if hi > lo else 1.0
        return min(1.0, self.before[i] + self.weights[i] * local)


def time_left(elapsed_s: float, fraction: float) -> float | None:
    """Seconds left if the run keeps its pace so far (progress is a fraction of the estimated
    time, ProgressScale); None before there is enough progress to tell."""
    if fraction < 0.02 or elapsed_s <= 0:
        return None
    return elapsed_s * (1.0 - fraction) / fraction


def duration_text(seconds: float | None) -> str:
    """ "45 s", "3 min 20 s", "1 h 05 min"; "" for None or nan."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
