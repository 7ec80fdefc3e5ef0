"""Measure the toy-ppo claims over seeds: per-seed and mean gold start / peak / final.

    .venv/bin/python -m benchmarks.ppo_claims                      # the README's table
    .venv/bin/python -m benchmarks.ppo_claims --seeds 0 --betas 0 --objectives single \\
        --set ppo.lr=3e-4 --set ppo.steps=400                     # one tuning run

Claims (issue 3), all averaged over seeds, beta = 0:
- single: gold rises then falls while the proxy keeps rising; the final gold is at least 20% of
  the peak gain below the peak (overoptimization = (peak - final) / (peak - start) >= 0.2);
- WCO and UWO end with higher gold than the single RM.
Each run is saved to --out as JSON (curve and training log), so tables can be redone offline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from backend.cache import ArtifactCache
from backend.experiment import run_experiment
from backend.presets import get_preset
from backend.summary import curve_stats


def parse_value(raw: str):
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def run_one(
    base, seed: int, objective: str, beta: float, out: Path, member: int, resume: bool
) -> dict:
    changes = {"seed": seed, "ppo.objective": objective, "ppo.kl_coef": beta, "ppo.member": member}
    cfg = base.replace(**changes)
    name = f"single{member}" if objective == "single" else objective
    path = out / f"{name}_beta{beta:g}_seed{seed}.json"
    if resume and path.exists():
        saved = json.loads(path.read_text())
        return {"points": saved["curve"]["points"], "seconds": saved["timings"]["total_s"]}
    t0 = time.perf_counter()
    res = run_experiment(cfg, cache=ArtifactCache()).result
    curve = res["curves"][0]
    keep = ("config", "timings", "training", "samples")
    path.write_text(json.dumps({"curve": curve, **{k: res[k] for k in keep}}))
    return {"points": curve["points"], "seconds": time.perf_counter() - t0}


def describe(points: list[dict]) -> str:
    s = curve_stats(points, "step")
    return (
        f"gold peak {s['gold_peak']:+.3f} @ step {s['step_at_peak']:>4} (kl {s['kl_at_peak']:5.2f})"
        f"  final {s['gold_final']:+.3f}  overopt {s['overoptimization']:5.2f}"
        f"  proxy final {s['proxy_final']:+.3f}  kl final {points[-1]['kl']:6.2f}"
    )


def mean_points(curves: list[list[dict]]) -> list[dict]:
    return [
        {
            "step": pts[0]["step"],
            **{k: float(np.mean([p[k] for p in pts])) for k in pts[0] if k != "step"},
        }
        for pts in zip(*curves, strict=True)
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--objectives", nargs="+", default=["single", "mean", "wco", "uwo"])
    p.add_argument("--betas", type=float, nargs="+", default=[0.0, 0.01])
    p.add_argument("--members", type=int, nargs="+", default=[0], help="single-RM members")
    p.add_argument("--preset", default="toy-ppo")
    p.add_argument("--set", action="append", default=[], help="dotted.field=value override")
    p.add_argument("--out", default="data/ppo_claims")
    p.add_argument("--resume", action="store_true", help="reuse runs already saved in --out")
    args = p.parse_args()
    base = get_preset(args.preset)
    base = base.replace(**{k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"ppo config: {base.ppo}", flush=True)
    rows = []
    for beta in args.betas:
        finals = {}
        for objective in args.objectives:
            runs = []
            members = args.members if objective == "single" else [0]
            for seed, member in itertools.product(args.seeds, members):
                run = run_one(base, seed, objective, beta, out, member, args.resume)
                runs.append(run["points"])
                tag = f"seed {seed}" + (f" member {member}" if objective == "single" else "")
                print(
                    f"beta {beta:g} {objective:6s} {tag}  {describe(run['points'])}"
                    f"  ({run['seconds']:.0f} s)",
                    flush=True,
                )
            avg = mean_points(runs)
            finals[objective] = avg[-1]["gold"]
            print(f"beta {beta:g} {objective:6s} MEAN    {describe(avg)}", flush=True)
            rows.append(table_row(beta, objective, members, runs, avg, len(args.seeds)))
        if "single" in finals:
            for objective, final in finals.items():
                print(
                    f"beta {beta:g} final gold {objective}: {final:+.3f} "
                    f"({final - finals['single']:+.3f} vs single)"
                )
    print(
        "\n| beta | objective | final gold per seed | mean curve: peak @ step / final "
        "| overopt. | proxy final | KL final |\n|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


def table_row(beta: float, objective: str, members: list[int], runs, avg, seeds: int) -> str:
    """One markdown row; a single objective's per-seed value is the mean over its members."""
    per_seed = [mean_points(runs[i * len(members) : (i + 1) * len(members)]) for i in range(seeds)]
    s = curve_stats(avg, "step")
    name = objective if objective != "single" else f"single (avg of {len(members)})"
    finals = " / ".join(f"{pts[-1]['gold']:+.2f}" for pts in per_seed)
    return (
        f"| {beta:g} | {name} | {finals} | {s['gold_peak']:+.2f} @ {s['step_at_peak']} / "
        f"{s['gold_final']:+.2f} | {s['overoptimization']:.1f} | {s['proxy_final']:+.2f} "
        f"| {avg[-1]['kl']:.1f} |"
    )


if __name__ == "__main__":
    main()
