"""The engine's thread policy, measured: training an ensemble's proxies (the largest stage of a
cold toy-bon run) with each way of using this machine's cores, on the idle machine and with the
machine busy (two other processes spinning on the CPU), medians of --repeats.

    .venv/bin/python benchmarks/bench_threads.py [--repeats 3] [--members 4] [--json]
        [--ways processes,threads,"one by one",intra-op] [--loads idle,busy]

(intra-op on the busy machine takes minutes: OpenMP threads wait for cores the spinners hold)

Ways (Runner.proxies, backend/experiment.py, takes the first on a machine with 2 cores):
  processes      members in `cores` forked processes at once, torch on one thread each (the
                 policy: Runner.train_forked, backend/forked.py)
  threads        members in `cores` threads of one process, torch on one thread each
                 (RunContext.parallel; the policy before, and where a run cannot fork)
  one by one     members one after another, torch on one thread
  intra-op       members one after another, torch on `cores` threads per op
`measure()` returns {way: {idle: stats, busy: stats}}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WAYS = ("processes", "threads", "one by one", "intra-op")


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def train_members(way: str, members: int) -> float:
    """Seconds to train `members` fresh proxies of the toy-bon preset (pairs from the cache)."""
    import torch

    from backend.cache import ArtifactCache
    from backend.experiment import Runner
    from backend.presets import get_preset

    cores = os.cpu_count() or 1
    os.environ["GOODHART_THREADS"] = str(cores if way in ("processes", "threads") else 1)
    os.environ["GOODHART_FORK"] = "1" if way == "processes" else "0"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = get_preset("toy-bon").replace(**{"reward_models.members": members})
        r = Runner(cfg, ArtifactCache(Path(tmp)), None, None)
        r.policy, sft_key = r.sft()
        prefs_key, train, heldout = r.preferences(sft_key)
        torch.set_num_threads(cores if way == "intra-op" else 1)
        t0 = time.perf_counter()
        r.proxies(sft_key, prefs_key, train, heldout)
        return time.perf_counter() - t0


def measure(repeats: int = 3, members: int = 4, ways=WAYS, loads=("idle", "busy")) -> dict:
    out: dict = {}
    ctx = mp.get_context("spawn")
    for load in loads:
        stop = ctx.Event()
        hogs = [ctx.Process(target=_spin, args=(stop,)) for _ in range(2 if load == "busy" else 0)]
        for h in hogs:
            h.start()
        try:
            for way in ways:
                times = []
                for _ in range(repeats):
                    # A fresh process (its own torch thread pool), not a daemon: it may fork.
                    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                        times.append(pool.submit(train_members, way, members).result())
                print(f"{load:5s} {way:13s} {np.median(times):7.2f} s", file=sys.stderr)
                out.setdefault(way, {})[load] = {
                    "median": float(np.median(times)), "values": times,
                }  # fmt: skip
        finally:
            stop.set()
            for h in hogs:
                h.join()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--ways", default=",".join(WAYS), help="comma-separated, of " + ", ".join(WAYS))
    ap.add_argument("--loads", default="idle,busy")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ways, loads = args.ways.split(","), args.loads.split(",")
    f = measure(args.repeats, args.members, ways, loads)
    if args.json:
        print(json.dumps(f, indent=1))
        return 0
    print(f"load before: {os.getloadavg()[0]:.2f}; {args.members} toy-bon proxies, medians")
    print(f"{'way':14s}" + "".join(f"{load + ' s':>8s}" for load in loads))
    for way in ways:
        print(f"{way:14s}" + "".join(f"{f[way][load]['median']:8.2f}" for load in loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
