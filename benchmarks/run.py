"""Every speed figure of the issues in one table: medians of --repeats runs, with min and max.

    .venv/bin/python benchmarks/run.py                      # everything (tens of minutes, idle CPU)
    .venv/bin/python benchmarks/run.py --only db,ppo --repeats 5
    .venv/bin/python benchmarks/run.py --quick              # reduced sizes: checks the script
    .venv/bin/python benchmarks/run.py --json > speed.json
    .venv/bin/python benchmarks/run.py --markdown          # the table in the README's layout

Sections (docs/benchmarks.md explains each figure):
  engine  toy-bon cold and warm, every objective's curves, peak memory, estimator vs Monte Carlo
          (benchmarks/bench_engine.py)
  db      store a default result, load it for plotting, submit to job start (bench_db.py)
  app     result page ready, lambda redraw, server memory with 5 users (bench_app.py; needs
          /usr/bin/chromium)
  ppo     PPO steps/s and answers/s, one whole toy-ppo curve (bench_ppo.py)
  dpo     one whole toy-dpo curve, its updates and evaluations (bench_dpo.py)
  trl     our reward-model training and PPO step against TRL's RewardTrainer and RLOOTrainer
          (bench_trl.py; only when trl is installed: pip install -r requirements-bench.txt)

Each section runs in its own Python process (the scripts set GOODHART_* variables, torch threads
and temporary data folders; a fresh process also keeps one section's memory out of the next
one's figures). The section's progress goes to stderr; stdout carries only the table or JSON.
Targets are upper bounds on the median; a --quick run checks none of them (smaller sizes).
Exit status: 1 when a section failed or, in a full run, a target was missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figures import figure, markdown, table  # noqa: E402

SECTIONS = ("engine", "db", "app", "ppo", "dpo", "trl")
TRL_SKIP = "skipped: pip install -r requirements-bench.txt"


# ---- one function per section: run the script's measure(), turn its numbers into figures -------


def engine(repeats: int, quick: bool) -> list[dict]:
    from benchmarks import bench_engine

    small = ("--pairs", "400", "--samples", "256")
    f = bench_engine.measure(repeats, small if quick else ())
    draws = f["monte_carlo_draws_per_prompt"]
    return [
        figure("engine.cold_s", "toy-bon cold (nothing cached)", f["cold_s"]["values"], target=60),
        figure("engine.warm_s", "toy-bon warm (all cached)", f["warm_s"]["values"], target=10),
        figure(
            "engine.objectives_s",
            "every objective's curves, recomputed",
            f["all_objectives_s"]["values"],
            target=0.5,
        ),
        figure(
            "engine.peak_rss_gb",
            "peak memory of a cold run",
            f["peak_rss_gb"],
            unit="GB",
            target=2,
            note="max over the cold runs",
        ),
        figure("engine.estimator_s", "unbiased estimator, 1 curve", f["estimator_s"]["values"]),
        figure(
            "engine.monte_carlo_s",
            "Monte Carlo at the estimator's SE",
            f["monte_carlo_s"]["values"],
            note=f"draws per prompt for each n: {draws}",
        ),
        figure(
            "engine.mc_over_estimator",
            "Monte Carlo / estimator",
            f["monte_carlo_over_estimator"]["values"],
            unit="x",
        ),
    ]


def db(repeats: int, quick: bool) -> list[dict]:
    from benchmarks import bench_db

    t = bench_db.measure(repeats)  # full size even when quick: storing is fast
    return [
        figure("db.store_s", "store a full default result", t["store"], target=0.2),
        figure("db.load_s", "load it for plotting", t["load"], target=0.1),
        figure("db.load_arrays_s", "load its arrays (scores, answers)", t["load_arrays"]),
        figure("db.submit_to_start_s", "submit to job start (idle worker)", t["latency"], target=1),
    ]


def app(repeats: int, quick: bool) -> list[dict] | str:
    from benchmarks import bench_app

    if not bench_app.CHROMIUM.exists():
        return f"skipped: needs {bench_app.CHROMIUM}"
    cfg = None
    if quick:  # a smaller finished run to display: its cache builds in seconds
        from backend.config import ExperimentConfig

        cfg = ExperimentConfig().replace(**{"preferences.pairs": 400, "bon.samples": 256})
    users = 2 if quick else 5
    t = bench_app.measure(repeats, users, cfg)
    return [
        figure("app.first_open_s", "result page, first open (fresh server)", t["cold"]),
        figure("app.page_ready_s", "result page ready", t["ready"], target=2),
        figure("app.lambda_step_s", "lambda step (0.05) redrawn", t["step"], target=0.5),
        figure("app.lambda_jump_s", "lambda jump (0.5) redrawn", t["jump"], target=0.5),
        figure(
            "app.memory_mb",
            f"server memory, {users} users",
            max(t["memory_mb"]),
            unit="MB",
            target=1024,
            note="peak; by users 0..: " + " ".join(f"{m:.0f}" for m in t["memory_mb"]),
        ),
    ]


def ppo(repeats: int, quick: bool) -> list[dict]:
    from backend.presets import get_preset
    from benchmarks import bench_ppo

    cfg = get_preset("toy-ppo")
    steps, threads = 20, (1, 2)
    if quick:  # small proxies (trained into the cache in seconds) and a 10-step curve
        small = {"preferences.pairs": 1000, "ppo.steps": 10, "ppo.norm_samples": 512}
        cfg, steps, threads = cfg.replace(**small), 3, (1,)
    t = bench_ppo.measure(cfg, steps, repeats, threads, curves=repeats)
    B = t["batch"]
    out = []
    for n, secs in t["step_s"].items():
        out += [
            figure(f"ppo.step_s.threads{n}", f"PPO step ({B} answers), {n} thread(s)", secs),
            figure(
                f"ppo.steps_per_s.threads{n}",
                f"PPO steps/s, {n} thread(s)",
                [1 / s for s in secs],
                unit="/s",
            ),
            figure(
                f"ppo.answers_per_s.threads{n}",
                f"rollout answers/s, {n} thread(s)",
                [B / s for s in secs],
                unit="/s",
            ),
        ]
    out += [
        figure(
            "ppo.curve_s",
            f"one toy-ppo curve ({t['steps']} steps, all stages)",
            t["curve_s"],
            target=300,
            note="proxies from the cache",
        ),
        figure("ppo.curve_ppo_s", "  of which PPO updates", t["curve_ppo_s"]),
    ]
    return out


def dpo(repeats: int, quick: bool) -> list[dict]:
    from backend.presets import get_preset
    from benchmarks import bench_dpo

    cfg = get_preset("toy-dpo")
    if quick:  # fewer pairs (sampled into the cache in seconds) and one epoch
        cfg = cfg.replace(**{"preferences.pairs": 1000, "dpo.epochs": 1})
    t = bench_dpo.measure(cfg, repeats)
    note = f"{t['steps']} steps, {t['evals']} evaluations; load " + " ".join(map(str, t["load"]))
    return [
        figure(
            "dpo.curve_s",
            "one toy-dpo curve (all stages, pairs cached)",
            t["curve_s"],
            target=180,
            note=note,
        ),
        figure("dpo.train_s", "  of which DPO updates", t["train_s"]),
        figure("dpo.eval_s", "  of which evaluations", t["eval_s"]),
    ]


def trl(repeats: int, quick: bool) -> list[dict] | str:
    if importlib.util.find_spec("trl") is None:
        return TRL_SKIP
    from benchmarks import bench_trl

    if quick:
        return bench_trl.measure(repeats, pairs=1000, epochs=1, steps=3)
    return bench_trl.measure(repeats)


# ---- the driver --------------------------------------------------------------------------------


def run_section(name: str, repeats: int, quick: bool) -> dict:
    """Run one section in a child process; {"status", "seconds", "figures", "message"}."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        emit = Path(tmp) / "figures.json"
        cmd = [sys.executable, __file__, "--section", name, "--repeats", str(repeats)]
        cmd += ["--emit", str(emit)] + (["--quick"] if quick else [])
        print(f"== {name} ==", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT, stdout=sys.stderr, stderr=sys.stderr).returncode
        seconds = time.perf_counter() - t0
        if rc != 0 or not emit.exists():
            return {"status": "failed", "seconds": seconds, "figures": [], "message": f"exit {rc}"}
        got = json.loads(emit.read_text())
    if isinstance(got, str):
        return {"status": "skipped", "seconds": seconds, "figures": [], "message": got}
    return {"status": "ok", "seconds": seconds, "figures": got, "message": ""}


def machine() -> dict:
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS)
    )
    p.add_argument("--repeats", type=int, default=None, help="runs per figure (3; quick: 1)")
    p.add_argument("--quick", action="store_true", help="reduced sizes; checks no target")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--markdown", action="store_true", help="the table in the README's layout")
    p.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)  # child process
    p.add_argument("--emit", help=argparse.SUPPRESS)
    args = p.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    if args.section:  # in the child: measure one section, write its figures (or skip message)
        got = globals()[args.section](repeats, args.quick)
        Path(args.emit).write_text(json.dumps(got))
        return 0

    names = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := sorted(set(names) - set(SECTIONS)):
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    doc = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "repeats": repeats,
        "machine_at_start": machine(),
        "sections": {},
        "figures": [],
    }
    for name in names:
        res = run_section(name, repeats, args.quick)
        doc["sections"][name] = {k: res[k] for k in ("status", "seconds", "message")}
        doc["figures"] += res["figures"]
    if args.quick:
        for f in doc["figures"]:
            f["pass"] = None  # reduced sizes: the targets do not apply
    doc["machine_at_end"] = machine()
    failed = [n for n, s in doc["sections"].items() if s["status"] == "failed"]
    missed = [f["key"] for f in doc["figures"] if f["pass"] is False]
    doc["failed_sections"], doc["missed_targets"] = failed, missed

    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        m0, m1 = doc["machine_at_start"], doc["machine_at_end"]
        print(
            f"Goodhart Lab speed, {doc['started']}, {m0['cpus']} CPUs, load average "
            f"{m0['load_average'][0]:.1f} at start, {m1['load_average'][0]:.1f} at end; "
            f"medians of {repeats} run(s)"
        )
        if args.quick:
            print("QUICK RUN: reduced sizes and repeats; the targets are not checked")
        print(markdown(doc["figures"]) if args.markdown else table(doc["figures"]))
        for f in doc["figures"]:
            if f["note"]:
                print(f"  {f['key']}: {f['note']}")
        for n, s in doc["sections"].items():
            if s["status"] == "skipped":
                print(f"{n}: {s['message']}")
            elif s["status"] == "failed":
                print(f"{n}: FAILED ({s['message']}; its output is on stderr)")
        if missed:
            print("targets missed: " + ", ".join(missed))
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
