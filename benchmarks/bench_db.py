"""Database and queue speed: store a full default best-of-n result, load one for plotting, and
the time from submit to the job starting on an idle worker. Medians (min, max) of --runs runs.

    .venv/bin/python benchmarks/bench_db.py [--runs 5]

The result is the default toy-bon's size (P=20 prompts, N=4096 answers, K=5 members, T=10
tokens): a real result dict from a tiny K=5 run, with its curves and summary recomputed on
synthetic score matrices of the default shape, so the stored rows and the artifact file are
exactly as large as a default run's. Everything lives in a temporary data folder.
`measure()` returns the timings (benchmarks/run.py collects them with the other scripts').
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere
TARGETS = {"store": 0.2, "load": 0.1, "latency": 1.0}


def report(what: str, seconds: list[float], target: float | None = None) -> None:
    med, lo, hi = statistics.median(seconds), min(seconds), max(seconds)
    line = f"{what:48s} {med:7.3f} s  ({lo:.3f}, {hi:.3f}) over {len(seconds)} runs"
    if target is not None:
        line += f"  target <= {target} s: {'ok' if med <= target else 'MISSED'}"
    print(line, flush=True)


def default_sized_output():
    """(result, arrays) of the default toy-bon's size."""
    from backend.best_of_n import bon_curves
    from backend.config import ExperimentConfig
    from backend.experiment import run_experiment
    from backend.objectives import standard_objectives
    from backend.summary import summarize_curves

    cfg = ExperimentConfig()
    P, N, K, T = cfg.bon.num_prompts, cfg.bon.samples, cfg.reward_models.members, 10
    tiny = cfg.replace(**{"preferences.pairs": 200, "preferences.eval_pairs": 50})
    tiny = tiny.replace(**{"bon.num_prompts": 4, "bon.samples": 64})
    out = run_experiment(tiny)  # a real result dict (K=5 members) and real prompts, vocab
    rng = np.random.default_rng(0)
    gold = rng.standard_normal((P, N))  # (P, N)
    proxy = 0.6 * gold[..., None] + 0.8 * rng.standard_normal((P, N, K))  # (P, N, K)
    vocab = out.arrays["vocab"]
    arrays = {
        "gold": gold,
        "proxy": proxy,
        "prompt_idx": rng.integers(0, P, P),
        "answers": rng.integers(0, len(vocab), (P, N, T)),  # (P, N, T) int64, as sampled
        "prompts": np.resize(out.arrays["prompts"], P),
        "vocab": vocab,
    }
    curves = bon_curves(gold, proxy, standard_objectives(K, cfg.bon.uwo_lambda))
    result = {**out.result, "config": cfg.to_dict(), "curves": curves}
    result["summary"] = summarize_curves(curves)
    return result, arrays


def bench_store_and_load(runs: int) -> dict[str, list[float]]:
    from backend.config import ExperimentConfig
    from db import api, jobs

    result, arrays = default_sized_output()
    mb = sum(a.nbytes for a in arrays.values()) / 1e6
    print(f"result: {len(result['curves'])} curves, {mb:.1f} MB of arrays", flush=True)
    store, ids = [], []
    for _ in range(runs):
        eid = api.submit(ExperimentConfig())
        jobs.claim(eid, "bench:0")
        t0 = time.perf_counter()
        assert jobs.finish(eid, "bench:0", result, arrays)
        store.append(time.perf_counter() - t0)
        ids.append(eid)
    report("store a full default best-of-n result", store, TARGETS["store"])
    curves, arrs, both = [], [], []
    for eid in ids:
        t0 = time.perf_counter()
        exp = api.get_experiment(eid)
        t1 = time.perf_counter()
        loaded = api.load_arrays(eid)
        t2 = time.perf_counter()
        assert len(exp["result"]["curves"]) == len(result["curves"])
        assert loaded["proxy"].shape == arrays["proxy"].shape
        curves.append(t1 - t0)
        arrs.append(t2 - t1)
        both.append(t2 - t0)
    report("load one for plotting (get_experiment)", curves, TARGETS["load"])
    report("load its arrays (load_arrays, 34 MB)", arrs)
    report("both", both)
    return {"store": store, "load": curves, "load_arrays": arrs}


def bench_latency(runs: int, db_url: str, data: Path) -> list[float]:
    from backend.config import ExperimentConfig
    from db import api

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODHART_")}
    env.update(GOODHART_DATA_DIR=str(data), OMP_NUM_THREADS="1")
    with open(data / "worker.log", "w") as log:  # the worker keeps its own copy
        worker = subprocess.Popen(
            [sys.executable, "-m", "backend", "worker", "--db", db_url],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while " ready: " not in (data / "worker.log").read_text():
            assert worker.poll() is None and time.monotonic() < deadline, "worker did not start"
            time.sleep(0.05)
        cfg = ExperimentConfig().replace(**{"preferences.pairs": 200, "bon.samples": 64})
        latencies = []
        for _ in range(runs):
            time.sleep(0.5)  # the worker is idle and polling
            eid = api.submit(cfg)
            while (exp := api.get_experiment(eid))["started_at"] is None:
                time.sleep(0.01)
            started = datetime.fromisoformat(exp["started_at"])
            latencies.append((started - datetime.fromisoformat(exp["created_at"])).total_seconds())
            api.cancel(eid)
            while api.get_experiment(eid)["status"] == "running":
                time.sleep(0.02)
        report("submit to job start, idle worker (SQLite queue)", latencies, TARGETS["latency"])
    finally:
        worker.terminate()
        worker.wait(60)
    return latencies


def measure(runs: int = 5) -> dict[str, list[float]]:
    """Seconds of each run: store, load, load_arrays, latency; in a temporary data folder (this
    process's GOODHART_* variables point there afterwards: run it in its own process)."""
    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
        data = Path(tmp) / "data"
        db_url = f"sqlite:///{data / 'goodhart.sqlite3'}"
        os.environ["GOODHART_DATA_DIR"] = str(data)
        os.environ.pop("GOODHART_DB_URL", None)
        os.environ.pop("GOODHART_REDIS_URL", None)
        out = bench_store_and_load(runs)
        out["latency"] = bench_latency(runs, db_url, data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    measure(args.runs)


if __name__ == "__main__":
    main()
