"""Database and queue speed: store a full default best-of-n result, load one for plotting, and
the time from submit to the job starting on an idle worker. Medians (min, max) of --runs runs.

    .venv/bin/python benchmarks/bench_db.py [--runs 5] [--compare]

--compare adds where the arrays live (db/artifacts.py) on both databases: SQLite with files (the
default) or in the database, PostgreSQL in the database (its default) or files, each with the
bytes it takes; a 4x larger result in PostgreSQL; and submit-to-start with PostgreSQL and Redis
(the several-machines set-up). PostgreSQL is a private server (tests/servers.py) with its default
settings (fsync on), on loopback.

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


def bench_store_and_load(runs: int, output=None, label: str = "") -> dict[str, list[float]]:
    from backend.config import ExperimentConfig
    from db import api, jobs

    result, arrays = output or default_sized_output()
    mb = sum(a.nbytes for a in arrays.values()) / 1e6
    print(f"{label}result: {len(result['curves'])} curves, {mb:.1f} MB of arrays", flush=True)
    store, ids = [], []
    for _ in range(runs):
        eid = api.submit(ExperimentConfig())
        jobs.claim(eid, "bench:0")
        t0 = time.perf_counter()
        assert jobs.finish(eid, "bench:0", result, arrays)
        store.append(time.perf_counter() - t0)
        ids.append(eid)
    report(f"{label}store a full best-of-n result", store, TARGETS["store"])
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
    report(f"{label}load one for plotting (get_experiment)", curves, TARGETS["load"])
    report(f"{label}load its arrays (load_arrays, {mb:.0f} MB)", arrs)
    report(f"{label}both", both)
    return {"store": store, "load": curves, "load_arrays": arrs}


def bench_latency(runs: int, db_url: str, data: Path, redis_url: str | None = None) -> list[float]:
    from backend.config import ExperimentConfig
    from db import api

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODHART_")}
    env.update(GOODHART_DATA_DIR=str(data), OMP_NUM_THREADS="1")
    if redis_url:
        env["GOODHART_REDIS_URL"] = redis_url
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
        queue = "Redis queue" if redis_url else "SQLite queue"
        report(f"submit to job start, idle worker ({queue})", latencies, TARGETS["latency"])
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
        for name in ("GOODHART_DB_URL", "GOODHART_REDIS_URL", "GOODHART_ARTIFACTS"):
            os.environ.pop(name, None)
        out = bench_store_and_load(runs)
        out["latency"] = bench_latency(runs, db_url, data)
    return out


def stored_bytes(db_url: str, data: Path) -> tuple[int, int]:
    """(bytes of the database, bytes of artifact files under the data folder)."""
    from sqlalchemy import text

    from db.engine import get_engine, sqlite_path

    files = sum(p.stat().st_size for p in (data / "artifacts").glob("*.npz"))
    path = sqlite_path(db_url)
    if path is not None:
        wal = Path(f"{path}-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0), files
    with get_engine().connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar(), files


def compare(runs: int) -> None:
    """Where the arrays live, on both databases; a larger result; PostgreSQL + Redis latency."""
    sys.path.insert(0, str(REPO / "tests"))
    from servers import PostgresServer, RedisServer

    from db import artifacts

    default_chunk = artifacts.CHUNK_BYTES
    output = default_sized_output()
    result, arrays = output
    P = result["config"]["bon"]["num_prompts"]
    big = (result, {k: np.concatenate([a] * 4) if len(a) == P else a for k, a in arrays.items()})
    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
        tmp = Path(tmp)
        pg = PostgresServer(fast=False)
        redis = RedisServer(tmp / "redis")
        try:
            setups = [
                ("SQLite, files (default)", f"sqlite:///{tmp / 'a.sqlite3'}", "folder", output),
                ("SQLite, in the database", f"sqlite:///{tmp / 'b.sqlite3'}", "database", output),
                ("PostgreSQL, in the database (default)", pg.create(), "database", output),
                ("PostgreSQL, files (a shared folder)", pg.create(), "folder", output),
                ("PostgreSQL, in the database, 4x larger", pg.create(), "database", big),
                ("PostgreSQL, in the database, 8 MiB chunks", pg.create(), "database", output),
            ]
            for i, (label, url, place, out) in enumerate(setups):
                artifacts.CHUNK_BYTES = 8 * 2**20 if "8 MiB" in label else default_chunk
                data = tmp / f"data{i}"
                os.environ.update(
                    GOODHART_DATA_DIR=str(data), GOODHART_DB_URL=url, GOODHART_ARTIFACTS=place
                )
                print(f"\n== {label}", flush=True)
                bench_store_and_load(runs, out)
                db_bytes, file_bytes = stored_bytes(url, data)
                print(
                    f"after {runs} results: database {db_bytes / 1e6:.0f} MB, "
                    f"files {file_bytes / 1e6:.0f} MB",
                    flush=True,
                )
            os.environ.pop("GOODHART_ARTIFACTS")
            url, data = pg.create(), tmp / "data-latency"
            data.mkdir()
            os.environ.update(GOODHART_DATA_DIR=str(data), GOODHART_DB_URL=url)
            os.environ["GOODHART_REDIS_URL"] = redis.url
            print("\n== PostgreSQL and Redis (several machines)", flush=True)
            bench_latency(runs, url, data, redis.url)
        finally:
            redis.stop()
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", action="store_true", help="both databases, both places")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    measure(args.runs)
    if args.compare:
        compare(args.runs)
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)


if __name__ == "__main__":
    main()
