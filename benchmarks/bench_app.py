"""The app's speed, measured in a real browser against a real Streamlit server.

    .venv/bin/python benchmarks/bench_app.py [--repeats 7] [--users 5]

Targets (issue 5): the Result page of a finished default run is ready (its chart drawn with every
curve) at most 2 s after it is opened; a lambda change is redrawn at most 0.5 s after the key
press; the server holds at most 1 GB with five users on the Result page. Prints medians; exits 1
when a target is missed.

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

from tests.test_e2e_browser import CHROMIUM, CHROMIUM_ARGS, StreamlitServer  # noqa: E402

TARGET_READY_S = 2.0
TARGET_REDRAW_S = 0.5
TARGET_MEMORY_MB = 1024
PLOT = "document.querySelector('.js-plotly-plot')"
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
    page.wait_for_function(
        f"() => {PLOT} && {PLOT}.data && {PLOT}.data.length >= 16", timeout=60_000
    )
    return time.perf_counter() - t0


def move_lambda(page, key: str = "ArrowRight") -> float:
    """Seconds from one key press on the lambda slider to the chart showing the new UWO curve.
    ArrowRight is one step (0.05: the app computes the neighbouring lambdas ahead), PageUp a
    jump of ten steps (a lambda nobody asked for before: a full recompute)."""
    before = page.evaluate(UWO)
    page.locator("[data-testid=stSlider] input[type=range]").first.focus()
    t0 = time.perf_counter()
    page.keyboard.press(key)
    page.wait_for_function(f"() => ({UWO})() !== {json.dumps(before)}", timeout=30_000)
    return time.perf_counter() - t0


def measure(repeats: int = 7, users: int = 5, cfg=None) -> dict[str, list[float]]:
    """Seconds: cold (first open), ready (each open), step and jump (each lambda change); server
    memory_mb before and after each user joins. `cfg`: a smaller run than the default (quick
    checks). Sets GOODHART_* in this process: run it in its own process."""
    from playwright.sync_api import sync_playwright

    from backend.cache import data_dir

    cache_root = data_dir() / "cache"
    tmp = Path(tempfile.mkdtemp(prefix="goodhart-bench-"))
    db_url = f"sqlite:///{tmp / 'goodhart.sqlite3'}"
    os.environ.update(GOODHART_DATA_DIR=str(tmp / "data"), GOODHART_DB_URL=db_url)
    eid = finished_default_run(cache_root, cfg)

    env = {**os.environ, "GOODHART_DATA_DIR": str(tmp / "data"), "GOODHART_DB_URL": db_url}
    server = StreamlitServer(env, tmp / "streamlit.log")
    try:
        deadline = time.monotonic() + 120
        while not server.healthy():
            if time.monotonic() > deadline:
                raise TimeoutError("the Streamlit server did not start")
            time.sleep(0.2)
        url = f"{server.url}/?run={eid}"
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
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"needs {CHROMIUM}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
