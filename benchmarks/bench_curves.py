"""What the ensemble diagnostics and the exact KL cost when best-of-n curves are recomputed from
a stored score matrix (the app does this on every lambda or member change).

    .venv/bin/python benchmarks/bench_curves.py [--repeats 15] [--scores S.npz] [--json]

Both sides run on the same engine (backend/best_of_n.py best_of_n_columns), interleaved, on the
shipped toy-bon score matrix (assets/examples/toy-bon.npz) or --scores:
  plain   what a curve needs without the diagnostics: the objective, one sort, 3 columns
          (selection, gold, mean of the members), the fit and the points; no exact KL
  full    bon_curves as results and the app use it: 6 columns (+ member std, shared and total
          squared error) and kl_exact from the tie runs
Times are CPU seconds of this process (time.process_time, so other processes on the machine
do not count), medians of --repeats, every objective of standard_objectives at lambda 0.5.
`measure()` returns the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.best_of_n import best_of_n_columns, bon_curves, bon_kl, bon_ns  # noqa: E402
from backend.fits import fit_curve  # noqa: E402
from backend.objectives import standard_objectives  # noqa: E402

SCORES = ROOT / "assets" / "examples" / "toy-bon.npz"


def plain_curves(gold: np.ndarray, proxy: np.ndarray, objectives) -> list[dict]:
    """The curves without diagnostics or exact KL: the baseline of the comparison."""
    ns = bon_ns(gold.shape[1])
    mean_k = proxy.mean(-1)
    out = []
    for obj in objectives:
        sel = obj(proxy)
        per_prompt, _ = best_of_n_columns(sel, np.stack([sel, gold, mean_k]), ns, with_kl=False)
        avg = per_prompt.mean(axis=1)
        se = per_prompt[..., 1].std(axis=1, ddof=1) / np.sqrt(gold.shape[0])
        points = [
            dict(n=int(n), kl=float(k), gold=float(a[1]), proxy=float(a[0]),
                 proxy_mean=float(a[2]), gold_se=float(s))
            for n, k, a, s in zip(ns, bon_kl(ns), avg, se, strict=True)
        ]  # fmt: skip
        curve = {"method": "bon", **obj.to_dict(), "label": obj.label, "points": points}
        curve["fit"] = fit_curve(curve)
        out.append(curve)
    return out


def measure(repeats: int = 15, scores: Path = SCORES) -> dict:
    z = np.load(scores)
    gold, proxy = z["gold"].astype(np.float64), z["proxy"].astype(np.float64)
    objectives = standard_objectives(proxy.shape[-1], 0.5)
    plain, full = [], []
    for _ in range(repeats):  # interleaved: both sides see the same machine
        t0 = time.process_time()
        plain_curves(gold, proxy, objectives)
        t1 = time.process_time()
        bon_curves(gold, proxy, objectives)
        t2 = time.process_time()
        plain.append(t1 - t0)
        full.append(t2 - t1)
    ratios = [f / p for f, p in zip(full, plain, strict=True)]
    return {
        "matrix": {"P": gold.shape[0], "N": gold.shape[1], "K": proxy.shape[-1]},
        "objectives": len(objectives),
        "plain_s": float(np.median(plain)),
        "full_s": float(np.median(full)),
        "full_over_plain": float(np.median(ratios)),
        "load_1min": os.getloadavg()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--scores", type=Path, default=SCORES)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fig = measure(args.repeats, args.scores)
    if args.json:
        print(json.dumps(fig, indent=1))
        return 0
    m = fig["matrix"]
    print(f"score matrix P={m['P']} N={m['N']} K={m['K']}, {fig['objectives']} objectives, "
          f"load {fig['load_1min']:.2f}; CPU seconds, medians of {args.repeats}")  # fmt: skip
    print(f"plain curves (no diagnostics, no exact KL) {fig['plain_s']:.4f} s")
    print(f"full curves (diagnostics + exact KL)       {fig['full_s']:.4f} s")
    print(f"full / plain                               {fig['full_over_plain']:.2f}x  [<= 1.10]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
