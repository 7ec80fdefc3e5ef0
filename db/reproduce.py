"""The reproduction suite (backend/reproduce/) in the database, and the reports kept for the app:
the one place that stores reproductions.

- `run_here(specs)` (the CLI): each experiment reuses a finished one with the same config, or is
  created and run in this process, claimed and stored exactly as a worker does it
  (db.worker.Worker.run_here), so its result page and share link work as for any run.
- `submit_suite(specs)` (the app's button): each reuses a finished one, or is submitted to the
  queue for the workers; the page follows their progress.
- `status(runs)`, `build(manifest)`: the state of a reproduction's runs, and, once all are done,
  its analysis, claims and report.md (written next to its manifest).
- Reports: <data>/reproductions/<id>/ holds manifest.json (which runs, which size and seeds), and
  once built analysis.json, claims.json and report.md; `latest_manifest()` is what the app shows.
- `cancel(manifest)`: stop a reproduction's queued and running experiments (finished ones stay,
  and a new reproduction reuses them).
- `shipped_report()`: the full suite's claims as measured when it was written
  (docs/reproduction/), what the app shows before a reproduction of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from backend.cache import data_dir
from backend.reproduce.analysis import analyze
from backend.reproduce.claims import evaluate
from backend.reproduce.plan import Spec, plan, specs_of
from backend.reproduce.report import report_markdown
from db import api
from db.engine import reading
from db.models import Experiment as E

WAIT_POLL_S = 1.0
SHIPPED = Path(__file__).resolve().parent.parent / "docs" / "reproduction" / "shipped.json"


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
    """{spec key: {id, status, progress, stage, error, created_at, started_at, finished_at}} of
    a reproduction's runs (a run that was deleted has status "missing")."""
    cols = (E.id, E.status, E.progress, E.stage, E.error, E.created_at, E.started_at,
            E.finished_at)  # fmt: skip
    with reading() as conn:
        q = select(*cols).where(E.id.in_(runs.values()))
        rows = {r.id: api.row_dict(r) for r in conn.execute(q)}
    missing = {"status": "missing", "progress": 0.0, "stage": "", "error": None,
               "created_at": None, "started_at": None, "finished_at": None}  # fmt: skip
    return {key: rows.get(eid) or {"id": eid, **missing} for key, eid in runs.items()}


def build(manifest: dict, app_url: str) -> dict:
    """The analysis, claims and report.md of a reproduction whose runs are all done; also written
    to its folder (analysis.json, claims.json, report.md) so the app reads them back."""
    specs = specs_of(manifest)
    runs = manifest["runs"]
    results, arrays = {}, {}
    for s in specs:
        exp = api.get_experiment(runs[s.key])
        if exp is None or exp["result"] is None:
            raise RuntimeError(f"{s.key}: run {runs[s.key]} has no result")
        results[s.key] = exp["result"]
        if s.method == "bon":
            arrays[s.key] = api.load_arrays(runs[s.key])
    analysis = analyze(specs, results, arrays)
    claims = evaluate(analysis)
    markdown = report_markdown(manifest, claims, analysis, runs, app_url)
    folder = registry() / manifest["id"]
    save_json(folder / "analysis.json", analysis)
    save_json(folder / "claims.json", claims)
    (folder / "report.md").write_text(markdown)
    return {"analysis": analysis, "claims": claims, "markdown": markdown}


def report_of(manifest: dict, app_url: str) -> dict:
    """{analysis, claims} of a reproduction whose runs are done: read from its folder, or built
    once (a few seconds: every curve from the stored score matrices) and saved there."""
    folder = registry() / manifest["id"]
    try:
        return {
            "analysis": json.loads((folder / "analysis.json").read_text()),
            "claims": json.loads((folder / "claims.json").read_text()),
        }
    except (OSError, json.JSONDecodeError):
        return build(manifest, app_url)


def start(seeds: int, size: str, source: str) -> dict:
    """Queue the suite's experiments for the workers (finished ones with the same config are
    reused) and record the new reproduction. Returns its manifest."""
    manifest = new_manifest(size, seeds, submit_suite(plan(seeds, size)), source=source)
    save_manifest(manifest)
    return manifest


# ---- the reports on disk: where the app finds reproductions ------------------------------------


def registry() -> Path:
    """<data>/reproductions/: one folder per reproduction (manifest.json, then the report)."""
    return data_dir() / "reproductions"


def new_manifest(size: str, seeds: int, runs: dict[str, str], **extra) -> dict:
    """A new reproduction's manifest: its id (a timestamp), size, seeds and {spec key: run id}."""
    t = datetime.now(UTC)
    rid = t.strftime("%Y%m%d-%H%M%S-%f")
    return {
        "id": rid,
        "created_at": t.isoformat(timespec="seconds"),
        "size": size,
        "seeds": list(range(seeds)),
        "runs": runs,  # spec key -> experiment id
        **extra,
    }


def save_json(path: Path, obj) -> None:
    """Write JSON through a temporary file and a rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=True))
    tmp.replace(path)


def save_manifest(manifest: dict) -> Path:
    folder = registry() / manifest["id"]
    save_json(folder / "manifest.json", manifest)
    return folder


def latest_manifest() -> dict | None:
    """The newest reproduction's manifest (by creation time), or None."""
    root = registry()
    if not root.exists():
        return None
    found = []
    for p in root.glob("*/manifest.json"):
        try:
            found.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return max(found, key=lambda m: m["created_at"] + m["id"]) if found else None


def cancel(manifest: dict) -> int:
    """Cancel a reproduction: its queued experiments at once, its running ones at their next
    stage or step (db.api.cancel: they end "cancelled", not "failed"). Finished ones are kept, and
    a new reproduction reuses them. Records `cancelled_at` in the manifest. Returns how many
    experiments were cancelled."""
    n = sum(api.cancel(eid) for eid in manifest["runs"].values())
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    save_manifest({**manifest, "cancelled_at": stamp})
    return n


def shipped_report(path: Path = SHIPPED) -> dict | None:
    """The report that ships with the code: {claims, date, size, seeds, experiments, took,
    command, note} (docs/reproduction/shipped.json and the claims file it names), or None when
    it is missing or unreadable."""
    try:
        meta = json.loads(path.read_text())
        claims = json.loads((path.parent / meta["claims"]).read_text())
    except (OSError, KeyError, json.JSONDecodeError):
        return None
    return {**meta, "claims": claims}
