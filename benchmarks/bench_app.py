"""The app's speed, measured in a real browser against a real Streamlit server.

    .venv/bin/python benchmarks/bench_app.py [--repeats 7] [--users 5]
    .venv/bin/python benchmarks/bench_app.py --viewers 1,2,4,8,16 [--postgres]

Targets (issue 5): the Result page of a finished default run is ready (its chart drawn with every
curve) at most 2 s after it is opened; a lambda change is redrawn at most 0.5 s after the key
press; the server holds at most 1 GB with five users on the Result page. Prints medians; exits 1
when a target is missed.

--viewers (how many viewers one app server holds, issue 16): at each level, new browser tabs
(each a server session) open the Result page at the same moment, up to that many tabs, while the
tabs of the earlier levels stay open. It prints the time until each new page's chart is drawn
(median and slowest), the server's memory with every session open, and the server's CPU seconds
per page opened. Bounded: it stops after the level whose slowest page took over STOP_S. The
browser runs on the same cores as the server, so page times are an upper bound for a server with
remote viewers; the CPU seconds per page are the server's alone. --postgres stores the run in a
private PostgreSQL server (tests/servers.py; arrays in the database), as with several machines.

The finished default run is computed in this process with the artifact cache of the data folder
(GOODHART_DATA_DIR, default ./data: minutes the first time on a CPU, seconds after), then stored
in a temporary database exactly as a worker stores it. Needs /usr/bin/chromium and playwright.
`measure()` returns the timings (benchmarks/run.py collects them with the other scripts').
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_e2e_browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    PLOT,
    StreamlitServer,
    knob,
)

TARGET_READY_S = 2.0
TARGET_REDRAW_S = 0.5
TARGET_MEMORY_MB = 1024
STOP_S = 30.0  # --viewers stops after a level whose slowest page took longer than this
UWO = f"() => {PLOT}.data.map(t => t.name).find(n => n.startsWith('uwo') && !n.includes('·'))"


def finished_default_run(cache_root: Path, cfg=None) -> str:
    """Run (or fetch from the cache) the default experiment (or `cfg`) and store it as done; its
    id."""
    from backend.cache import ArtifactCache
    from backend.config import ExperimentConfig
    from backend.experiment import run_experiment
    from db import api, jobs

    cfg = cfg or ExperimentConfig()
    t0 = time.perf_counter()
    out = run_experiment(cfg, cache=ArtifactCache(root=cache_root))
    print(f"default run: {time.perf_counter() - t0:.1f} s (cache {cache_root})")
    eid = api.submit(cfg, name="default toy-bon (benchmark)")
    assert jobs.claim(eid, "bench:1") is not None
    assert jobs.finish(eid, "bench:1", out.result, out.arrays)
    return eid


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20


def open_result(page, url: str) -> float:
    """Seconds from navigation to the chart drawn with all 16 traces (5 members + 3 ensemble
    objectives, gold and proxy each)."""
    t0 = time.perf_counter()
    page.goto(url)
    wait_drawn(page, 60)
    return time.perf_counter() - t0


def wait_drawn(page, timeout_s: float = 120) -> None:
    page.wait_for_function(
        f"() => {PLOT} && {PLOT}.data && {PLOT}.data.length >= 10", timeout=timeout_s * 1000
    )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    import psutil

    proc = psutil.Process(pid)
    times = [p.cpu_times() for p in (proc, *proc.children(recursive=True)) if p.is_running()]
    return sum(t.user + t.system for t in times)


def move_lambda(page, key: str = "ArrowRight") -> float:
    """Seconds from one key press on the chart's λ knob to the chart showing the new UWO curve.
    ArrowRight is one step (0.05: the server has sent the neighbouring lambdas, the browser
    redraws), PageUp a jump of ten steps (a lambda nobody asked for before: a full recompute on
    the server)."""
    before = page.evaluate(UWO)
    knob(page, "UWO λ").focus()
    t0 = time.perf_counter()
    page.keyboard.press(key)
    page.wait_for_function(f"() => ({UWO})() !== {json.dumps(before)}", timeout=30_000)
    return time.perf_counter() - t0


def start_server(cfg=None, db_url: str | None = None) -> tuple[StreamlitServer, str]:
    """A Streamlit server on a temporary data folder (and `db_url`, else a SQLite file there)
    holding one finished default run; (server, the run's page address). Sets GOODHART_* in this
    process."""
    from backend.cache import data_dir

    cache_root = data_dir() / "cache"
    tmp = Path(tempfile.mkdtemp(prefix="goodhart-bench-"))
    db_url = db_url or f"sqlite:///{tmp / 'goodhart.sqlite3'}"
    os.environ.update(GOODHART_DATA_DIR=str(tmp / "data"), GOODHART_DB_URL=db_url)
    eid = finished_default_run(cache_root, cfg)

    env = {**os.environ, "GOODHART_DATA_DIR": str(tmp / "data"), "GOODHART_DB_URL": db_url}
    server = StreamlitServer(env, tmp / "streamlit.log")
    deadline = time.monotonic() + 120
    while not server.healthy():
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError("the Streamlit server did not start")
        time.sleep(0.2)
    return server, f"{server.url}/?run={eid}"


def measure_viewers(levels: list[int], cfg=None, db_url: str | None = None) -> list[dict]:
    """One row per level: viewers (sessions open), new (opened at once), median_s and max_s
    (until drawn), memory_mb (server, every session open), cpu_per_page_s (server)."""
    from playwright.sync_api import sync_playwright

    server, url = start_server(cfg, db_url)
    rows, pages = [], []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            # One context, one tab per viewer: each tab is its own server session, and they
            # share the browser's cache, as viewers on their own machines each have theirs.
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            warm = context.new_page()
            open_result(warm, url)  # the first session imports torch: not a viewer's time
            warm.close()
            for level in levels:
                new = [context.new_page() for _ in range(level - len(pages))]
                cpu0, t0 = cpu_s(server.proc.pid), time.perf_counter()
                for p in new:
                    p.goto(url, wait_until="commit")
                drawn = []
                for p in new:  # in the order they were opened; each is drawn by its own session
                    wait_drawn(p)
                    drawn.append(time.perf_counter() - t0)
                time.sleep(1.0)  # let the sessions settle (fragments, background curves)
                cpu = cpu_s(server.proc.pid) - cpu0
                pages += new
                rows.append(
                    {
                        "viewers": len(pages),
                        "new": len(new),
                        "median_s": statistics.median(drawn),
                        "max_s": max(drawn),
                        "memory_mb": rss_mb(server.proc.pid),
                        "cpu_per_page_s": cpu / len(new),
                    }
                )
                r = rows[-1]
                print(
                    f"{r['viewers']:3d} viewers ({r['new']} opened at once): drawn after "
                    f"{r['median_s']:.2f} s median, {r['max_s']:.2f} s slowest; server "
                    f"{r['memory_mb']:.0f} MB, {r['cpu_per_page_s']:.2f} CPU s per page",
                    flush=True,
                )
                if r["max_s"] > STOP_S:
                    break
            browser.close()
    finally:
        server.stop()
    return rows


def measure(repeats: int = 7, users: int = 5, cfg=None) -> dict[str, list[float]]:
    """Seconds: cold (first open), ready (each open), step and jump (each lambda change); server
    memory_mb before and after each user joins. `cfg`: a smaller run than the default (quick
    checks). Sets GOODHART_* in this process: run it in its own process."""
    from playwright.sync_api import sync_playwright

    server, url = start_server(cfg)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            cold = open_result(page, url)  # the server's first session imports torch
            ready = [open_result(page, url) for _ in range(repeats)]
            step, jump = [], []
            for key, times in (("ArrowRight", step), ("PageUp", jump)):
                for _ in range(repeats):
                    page.wait_for_timeout(300)  # a person does not press keys back to back
                    times.append(move_lambda(page, key))
            page.close()

            pages = []
            memory = [rss_mb(server.proc.pid)]
            for _ in range(users):
                p = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
                open_result(p, url)
                move_lambda(p)
                pages.append(p)
                memory.append(rss_mb(server.proc.pid))
            browser.close()
    finally:
        server.stop()
    return {"cold": [cold], "ready": ready, "step": step, "jump": jump, "memory_mb": memory}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="opens and lambda changes")
    parser.add_argument("--users", type=int, default=5, help="concurrent sessions for memory")
    parser.add_argument("--viewers", help="levels of concurrent viewers, e.g. 1,2,4,8,16")
    parser.add_argument("--postgres", action="store_true", help="--viewers on PostgreSQL")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"needs {CHROMIUM}", file=sys.stderr)
        return 2
    if args.viewers:
        return viewers(sorted({int(v) for v in args.viewers.split(",")}), args.postgres)
    m = measure(args.repeats, args.users)
    cold, ready, step, jump, memory = (m[k] for k in ("cold", "ready", "step", "jump", "memory_mb"))
    cold = cold[0]

    med_ready, med_step = statistics.median(ready), statistics.median(step)
    med_jump = statistics.median(jump)
    peak = max(memory)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"result page, first open on a fresh server: {cold:.2f} s")
    print(f"result page ready, median of {len(ready)}: {med_ready:.2f} s  (target <= 2 s)")
    print(f"  all: {' '.join(f'{t:.2f}' for t in ready)}")
    for name, times, med in (("step (0.05)", step, med_step), ("jump (0.5)", jump, med_jump)):
        print(f"lambda {name} redrawn, median of {len(times)}: {med:.3f} s  (target <= 0.5 s)")
        print(f"  all: {' '.join(f'{t:.3f}' for t in times)}")
    print(
        f"server memory with {args.users} users on the result page: {peak:.0f} MB peak "
        f"(target <= 1024 MB); by users 0..{args.users}: " + " ".join(f"{m:.0f}" for m in memory)
    )
    ok = med_ready <= TARGET_READY_S and max(med_step, med_jump) <= TARGET_REDRAW_S
    ok = ok and peak <= TARGET_MEMORY_MB
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def viewers(levels: list[int], postgres: bool) -> int:
    """--viewers: print the rows of measure_viewers with the machine's load beside them."""
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    pg = None
    if postgres:
        sys.path.insert(0, str(REPO / "tests"))
        from servers import PostgresServer

        pg = PostgresServer(fast=False)
    try:
        measure_viewers(levels, db_url=pg.create() if pg else None)
    finally:
        if pg is not None:
            pg.stop()
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
