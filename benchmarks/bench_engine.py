"""Engine speed and memory for the default toy-bon run (issue targets in brackets).

    .venv/bin/python benchmarks/bench_engine.py [--repeats 3] [--json]

`measure()` returns the figures (benchmarks/run.py collects them with the other scripts').

- cold: a whole `python -m backend run --preset toy-bon` with an empty cache      [<= 60 s]
- warm: the same run again, every artifact cached                                [<= 10 s]
- objectives: every objective's curves recomputed from the score matrix           [<= 0.5 s]
- peak memory of the cold run (max RSS of the child process)                      [<= 2 GB]
- the unbiased estimator against Monte Carlo resampling that reaches the same standard error:
  for each n, MC must draw D_n subsets per prompt so that its resampling error of the prompt
  average equals the estimator's own standard error over prompts; D_n comes from the exact
  variance of the best-of-n gold. Both compute the gold curve of one objective (member 0) at
  every n; the figure is MC time / estimator time, measured in the same run.
Figures are medians of the repeats, with min and max.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.best_of_n import bon_curves, bon_ns, bon_weights, expected_best_of_n  # noqa: E402
from backend.objectives import standard_objectives  # noqa: E402


def stats(xs: list[float]) -> dict:
    values = [float(x) for x in xs]
    med = float(np.median(values))
    return {"median": med, "min": min(values), "max": max(values), "values": values}


def run_cli(data_dir: Path, out: Path, scores: Path | None = None, extra: tuple = ()) -> float:
    cmd = [sys.executable, "-m", "backend", "run", "--preset", "toy-bon", "--seed", "0",
           "--out", str(out), "--quiet", *extra]  # fmt: skip
    if scores:
        cmd += ["--scores", str(scores)]
    env = {**os.environ, "GOODHART_DATA_DIR": str(data_dir)}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


# Monte Carlo needs millions of draws at equal error; it is timed on at most this many draws per
# (prompt, n) and its time scaled linearly to the draws it needs (the loop is linear in draws).
MC_DRAW_CAP = 2000


def monte_carlo_curve(sel, gold, ns, draws, rng) -> np.ndarray:
    """Resampling estimate of E[gold of best-of-n] per n, prompt-averaged: subsets of n drawn
    without replacement by the n smallest of N random keys (argpartition, O(N) per draw)."""
    P, N = sel.shape
    out = np.zeros(len(ns))
    for j, n in enumerate(ns):
        D = int(min(draws[j], MC_DRAW_CAP))
        total = 0.0
        for p in range(P):
            for start in range(0, D, 256):
                d = min(256, D - start)
                keys = rng.random((d, N))
                idx = (
                    np.argpartition(keys, n - 1, axis=1)[:, :n]
                    if n < N
                    else np.tile(np.arange(N), (d, 1))
                )
                pick = idx[np.arange(d), np.argmax(sel[p][idx], axis=1)]
                total += gold[p][pick].sum()
        out[j] = total / (D * P)
    return out


def measure(repeats: int = 3, extra: tuple = ()) -> dict:
    """Every figure of this script; `extra` are CLI options for smaller runs (--pairs 400 ...)."""
    fig: dict = {}
    cold, warm, rss = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for r in range(repeats):
            data = tmp / f"cold{r}"
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            print(f"cold run {r}...", file=sys.stderr, flush=True)
            cold.append(run_cli(data, tmp / "r.json", tmp / "s.npz", extra))
            rss.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
            warm.append(run_cli(data, tmp / "r.json", extra=extra))
        fig["cold_s"] = stats(cold)
        fig["warm_s"] = stats(warm)
        fig["peak_rss_gb"] = max(rss) / 1024**2  # ru_maxrss is in KiB on Linux
        z = np.load(tmp / "s.npz")
        gold, proxy = z["gold"], z["proxy"]

    objectives = standard_objectives(proxy.shape[-1], 0.5)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bon_curves(gold, proxy, objectives)
        times.append(time.perf_counter() - t0)
    fig["all_objectives_s"] = stats(times)

    # Estimator vs Monte Carlo at equal standard error, one objective (member 0), every n.
    sel = proxy[..., 0]
    ns = bon_ns(gold.shape[1])
    P = gold.shape[0]
    t_est = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        per_prompt = expected_best_of_n(sel, gold[..., None], ns)[..., 0]  # (J, P)
        t_est.append(time.perf_counter() - t0)
    se = per_prompt.std(axis=1, ddof=1) / np.sqrt(P)  # (J,) the estimator's own error
    order = np.argsort(sel, axis=1)
    g_sorted = np.take_along_axis(gold, order, axis=1)
    W = bon_weights(gold.shape[1], ns)
    var_pick = W @ (g_sorted**2).T - (W @ g_sorted.T) ** 2  # (J, P) variance of one draw
    draws = np.maximum(1, np.ceil(var_pick.sum(axis=1) / (P**2 * se**2)))
    rng = np.random.default_rng(0)
    t_mc_capped = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        monte_carlo_curve(sel, gold, ns, draws, rng)
        t_mc_capped.append(time.perf_counter() - t0)
    # scale each n's share of the time by its needed/capped draws (equal share per n assumed
    # only for the split; the total over n is what is scaled)
    scale = float(draws.sum() / np.minimum(draws, MC_DRAW_CAP).sum())
    t_mc = [t * scale for t in t_mc_capped]
    fig["estimator_s"] = stats(t_est)
    fig["monte_carlo_s"] = stats(t_mc)
    fig["monte_carlo_draws_per_prompt"] = [int(d) for d in draws]
    fig["monte_carlo_over_estimator"] = stats([m / e for m, e in zip(t_mc, t_est)])
    fig["monte_carlo_timed_s"] = stats(t_mc_capped)
    return fig


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fig = measure(args.repeats)
    t_mc = fig["monte_carlo_s"]["median"]

    if args.json:
        print(json.dumps(fig, indent=1))
        return 0

    def line(label: str, key: str, target: str) -> None:
        f = fig[key]
        low, high = f["min"], f["max"]
        print(f"{label:22s}{f['median']:9.3f} s  (min {low:.3f}, max {high:.3f})  {target}")

    line("toy-bon cold run", "cold_s", "[<= 60 s]")
    line("toy-bon warm run", "warm_s", "[<= 10 s]")
    line("every objective", "all_objectives_s", "[<= 0.5 s]")
    print(f"{'peak memory (cold)':22s}{fig['peak_rss_gb']:9.3f} GB  [<= 2 GB]")
    line("estimator, 1 curve", "estimator_s", "")
    draws_txt = fig["monte_carlo_draws_per_prompt"]
    print(f"{'Monte Carlo, equal SE':22s}{t_mc:9.3f} s  (draws per prompt for each n: {draws_txt})")
    print(f"{'MC / estimator':22s}{fig['monte_carlo_over_estimator']['median']:9.0f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
