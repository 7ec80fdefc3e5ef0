"""The report command of `python -m backend` (app/'s own, beside the HTML it writes; backend/
__main__.py adds it): `python -m backend reproduce --seeds S --out DIR [--quick]`.

Runs the suite of backend/reproduce/ (reusing finished experiments with the same config from
the database, and the artifact cache for the rest), stores every experiment in the database like
any other run, and writes DIR/claims.json, DIR/report.md, DIR/report.html (standalone),
DIR/analysis.json and DIR/manifest.json. The app's Reproduction page shows the newest report.

With `--workers N` the experiments go through the job queue to N local worker processes
started for the suite (each with cores / N torch threads), so independent runs overlap: PPO runs
on one thread, and a 2-core machine finishes the full suite in about half the time.

Exit codes: 0 written; 2 bad input; 1 an experiment of the suite failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from backend.cli import check_writable
from backend.config import ConfigError

DEFAULT_APP_URL = "http://localhost:8501"


def cmd_reproduce(args: argparse.Namespace) -> int:
    from app.report import report_html
    from backend.reproduce.plan import SIZES, plan
    from db.cli import use_db
    from db.reproduce import build, new_manifest, run_here, save_json, save_manifest

    use_db(args)
    try:
        seeds = int(args.seeds)
    except ValueError:
        raise ConfigError("--seeds", f"expected a whole number, got {args.seeds!r}") from None
    if not 1 <= seeds <= 100:
        raise ConfigError("--seeds", f"seeds must be between 1 and 100; got {seeds}")
    if not 0 <= args.workers <= 64:
        raise ConfigError("--workers", f"workers must be between 0 and 64; got {args.workers}")
    size = "quick" if args.quick else args.size
    if size not in SIZES:
        raise ConfigError("--size", f"size must be one of {', '.join(SIZES)}")
    check_writable("--out", args.out, folder=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    specs = plan(seeds, size)
    say(f"reproduce: {len(specs)} experiments, size {size}, seeds 0..{seeds - 1}")
    try:
        if args.workers:
            runs = run_on_workers(specs, args.workers, args.db, fresh=args.fresh, say=say)
        else:
            runs = run_here(specs, reuse=not args.fresh, say=say)
    except RuntimeError as e:
        say(f"error: {e}")
        return 1
    manifest = new_manifest(size, seeds, runs, source="cli", out=str(out))
    save_manifest(manifest)
    report = build(manifest, args.app_url)
    save_json(out / "manifest.json", manifest)
    save_json(out / "analysis.json", report["analysis"])
    (out / "claims.json").write_text(json.dumps(report["claims"], indent=1))
    (out / "report.md").write_text(report["markdown"])
    (out / "report.html").write_text(
        report_html(manifest, report["claims"], report["analysis"], args.app_url)
    )
    for c in report["claims"]:
        say(f"  {c['verdict']:6s}  {c['id']:3s} {c['claim']}")
    say(f"wrote {out}/claims.json, report.md, report.html in {time.perf_counter() - t0:.0f} s")
    return 0


def run_on_workers(specs: list, workers: int, db: str | None, fresh: bool, say) -> dict[str, str]:
    """Submit the suite to the queue (reusing finished runs unless fresh), serve it with
    `workers` local worker processes, wait until every run has finished; {key: id}."""
    from db import api
    from db.reproduce import status, submit_suite

    if fresh:
        runs = {s.key: api.submit(s.config, name=s.name) for s in specs}
    else:
        runs = submit_suite(specs)
    threads = max(1, (os.cpu_count() or 1) // workers)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "backend", "worker", *(["--db", db] if db else [])]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL) for _ in range(workers)]
    say(f"reproduce: {workers} workers ({threads} torch thread(s) each)")
    try:
        seen: dict[str, str] = {}
        while True:
            st = status(runs)
            for key, row in st.items():
                if seen.get(key) != row["status"] and row["status"] != "queued":
                    say(f"  {key}: {row['status']}")
                seen[key] = row["status"]
            bad = {k: r for k, r in st.items() if r["status"] in ("failed", "cancelled", "missing")}
            if bad:
                key, row = next(iter(bad.items()))
                raise RuntimeError(f"{key} ({runs[key]}) {row['status']}: {row['error'] or ''}")
            if all(r["status"] == "done" for r in st.values()):
                return runs
            if all(p.poll() is not None for p in procs):
                raise RuntimeError("every worker exited before the suite finished")
            time.sleep(2.0)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def register(sub: argparse._SubParsersAction) -> None:
    """Add `reproduce` to `python -m backend`'s subcommands."""
    p = sub.add_parser("reproduce", help="measure the papers' claims; write claims and a report")
    p.add_argument("--seeds", default="3", help="number of seeds (0 .. S-1), default 3")
    p.add_argument("--out", required=True, help="folder for claims.json, report.md, report.html")
    p.add_argument("--quick", action="store_true", help="smaller runs: <= 10 min on 2 CPU cores")
    p.add_argument("--size", default="full", help=argparse.SUPPRESS)  # tiny: the tests' size
    p.add_argument("--fresh", action="store_true", help="run every experiment again")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run the experiments on N local worker processes (0: in this process)",
    )
    p.add_argument("--app-url", default=DEFAULT_APP_URL, help="app address for the run links")
    p.add_argument("--db", metavar="URL", help="database URL or SQLite file")
    p.set_defaults(func=cmd_reproduce)
