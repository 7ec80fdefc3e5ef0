"""The reproduction suite's experiments (backend/reproduce.py) in the database, like any others.

- `run_here(specs)` (the CLI): each experiment reuses a finished one with the same config, or is
  created and run in this process, claimed and stored exactly as a worker does it
  (db.worker.Worker.run_here), so its result page and share link work as for any run.
- `submit_suite(specs)` (the app's button): each reuses a finished one, or is submitted to the
  queue for the workers; the page follows their progress.
- `status(runs)`, `build(manifest)`: the state of a reproduction's runs, and, once all are done,
  its analysis, claims and report.md (written next to its manifest).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from backend import reproduce
from backend.reproduce import Spec
from db import api
from db.engine import reading
from db.models import Experiment as E

WAIT_POLL_S = 1.0


def run_here(
    specs: list[Spec], reuse: bool = True, say: Callable[[str], None] = lambda msg: None
) -> dict[str, str]:
    """Every spec as a finished experiment: reused (same config, done) or run now in this
    process. Returns {spec key: experiment id}. Raises RuntimeError when one fails."""
    from db.worker import Worker

    worker = Worker()
    runs = {}
    for i, spec in enumerate(specs, start=1):
        eid = api.find_done(spec.config) if reuse else None
        if eid is not None:
            say(f"[{i}/{len(specs)}] {spec.key}: reusing {eid}")
            runs[spec.key] = eid
            continue
        t0 = time.perf_counter()
        eid = api.submit(spec.config, name=spec.name, enqueue=False)
        say(f"[{i}/{len(specs)}] {spec.key}: running {eid}")
        worker.run_here(eid)
        exp = _wait_finished(eid)  # a worker's sweep may have taken it first: then wait for it
        if exp["status"] != "done":
            raise RuntimeError(f"{spec.key} ({eid}) {exp['status']}: {exp['error'] or ''}")
        say(f"[{i}/{len(specs)}] {spec.key}: done in {time.perf_counter() - t0:.1f} s")
        runs[spec.key] = eid
    return runs


def _wait_finished(eid: str) -> dict:
    while True:
        exp = api.get_experiment(eid)
        if exp is None:
            raise RuntimeError(f"experiment {eid} was deleted while the suite ran")
        if exp["status"] not in ("queued", "running"):
            return exp
        time.sleep(WAIT_POLL_S)


def submit_suite(specs: list[Spec]) -> dict[str, str]:
    """Every spec reused (done, same config) or submitted to the queue: {spec key: id}."""
    return {s.key: api.find_done(s.config) or api.submit(s.config, name=s.name) for s in specs}


def status(runs: dict[str, str]) -> dict[str, dict]:
    """{spec key: {id, status, progress, stage, error}} of a reproduction's runs (a run that was
    deleted has status "missing")."""
    with reading() as conn:
        q = select(E.id, E.status, E.progress, E.stage, E.error).where(E.id.in_(runs.values()))
        rows = {r.id: r._asdict() for r in conn.execute(q)}
    missing = {"status": "missing", "progress": 0.0, "stage": "", "error": None}
    return {key: rows.get(eid) or {"id": eid, **missing} for key, eid in runs.items()}


def build(manifest: dict, app_url: str) -> dict:
    """The analysis, claims and report.md of a reproduction whose runs are all done; also written
    to its folder (analysis.json, claims.json, report.md) so the app reads them back."""
    specs = reproduce.specs_of(manifest)
    runs = manifest["runs"]
    results, arrays = {}, {}
    for s in specs:
        exp = api.get_experiment(runs[s.key])
        if exp is None or exp["result"] is None:
            raise RuntimeError(f"{s.key}: run {runs[s.key]} has no result")
        results[s.key] = exp["result"]
        if s.method == "bon":
            arrays[s.key] = api.load_arrays(runs[s.key])
    analysis = reproduce.analyze(specs, results, arrays)
    claims = reproduce.evaluate(analysis)
    markdown = reproduce.report_markdown(manifest, claims, analysis, runs, app_url)
    folder = reproduce.registry() / manifest["id"]
    reproduce.save_json(folder / "analysis.json", analysis)
    reproduce.save_json(folder / "claims.json", claims)
    (folder / "report.md").write_text(markdown)
    return {"analysis": analysis, "claims": claims, "markdown": markdown}
