"""DPO speed on the toy-dpo preset: one whole curve (medians), and where its time goes.

    .venv/bin/python -m benchmarks.bench_dpo                    # CPU (or cuda when present)
    .venv/bin/python -m benchmarks.bench_dpo --repeats 5 --set dpo.epochs=1

Each repeat is one whole toy-dpo curve through run_experiment, with the preference pairs from
the artifact cache (the first, uncounted run puts them there): the reference's log-probs of every
pair, the DPO updates, the evaluations (sampling, gold, KL, implicit accuracy). No proxies are
trained (toy-dpo does not ask for them). The load average is printed beside the figures.
`measure()` returns the timings (benchmarks/run.py collects them with the other scripts').
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from backend.cache import ArtifactCache
from backend.experiment import run_experiment
from backend.presets import get_preset
from benchmarks.ppo_claims import parse_value


def measure(cfg=None, repeats: int = 3) -> dict:
    """`repeats` whole curves: {curve_s, train_s, eval_s, ref_s: [repeats], steps, evals,
    load: [load average before each]}. `cfg`: toy-dpo by default."""
    cfg = cfg or get_preset("toy-dpo")
    run_experiment(cfg.replace(**{"dpo.epochs": 1}), cache=ArtifactCache())  # pairs cached
    out: dict = {"curve_s": [], "train_s": [], "eval_s": [], "ref_s": [], "load": []}
    for _ in range(repeats):
        out["load"].append(round(os.getloadavg()[0], 2))
        t0 = time.perf_counter()
        res = run_experiment(cfg, cache=ArtifactCache()).result
        total = time.perf_counter() - t0
        t = res["timings"]
        out["curve_s"].append(total)
        out["train_s"].append(t["dpo_s"])
        out["eval_s"].append(t["dpo_eval_s"])
        out["ref_s"].append(t["dpo_ref_s"])
        out["steps"] = res["pairs"]["steps"]
        out["evals"] = len(res["curves"][0]["points"])
        print(
            f"one toy-dpo curve ({out['steps']} steps, {out['evals']} evaluations): {total:.1f} s;"
            f" updates {t['dpo_s']:.1f} s ({out['steps'] / t['dpo_s']:.1f} steps/s), evaluation "
            f"{t['dpo_eval_s']:.1f} s, reference log-probs {t['dpo_ref_s']:.1f} s (load "
            f"{out['load'][-1]})",
            flush=True,
        )
    print(f"median {statistics.median(out['curve_s']):.1f} s over {repeats}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--set", action="append", default=[], help="FIELD=VALUE, e.g. dpo.beta=0.3")
    args = p.parse_args()
    changes = dict(kv.split("=", 1) for kv in args.set)
    cfg = get_preset("toy-dpo").replace(
        device=args.device, **{k: parse_value(v) for k, v in changes.items()}
    )
    measure(cfg, args.repeats)


if __name__ == "__main__":
    main()
