"""What the app and the CLI call: submit, list, read, cancel and delete experiments.

Dicts out, JSON-ready: times are ISO-8601 strings in UTC, e.g. "2025-01-31T12:00:00.123456+00:00".
Every function opens the process's one engine (db.engine.get_engine) and one short transaction.
Malformed or unknown ids give None or False, never an exception, so a share link with a typo is a
"not found" page and not a crash.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert, select, update

from backend import same_arithmetic
from backend.admission import check_admission
from backend.config import ExperimentConfig, validate
from db import artifacts, fleet, queue
from db.engine import reading, writing
from db.jobs import as_utc, now
from db.models import Artifact, Experiment
from db.results import load_result

E = Experiment
ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols: no 0/o, 1/l
ID_LENGTH = 12  # 60 random bits
_ID_RE = re.compile(f"[{ID_ALPHABET}]{{{ID_LENGTH}}}")
NAME_MAX = 200


def new_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def is_valid_id(text) -> bool:
    """Whether text has the form of an experiment id (12 of a-z without l, o and 2-9)."""
    return isinstance(text, str) and _ID_RE.fullmatch(text) is not None


def _iso(dt: datetime | None) -> str | None:
    return as_utc(dt).isoformat() if dt is not None else None


def submit(
    cfg: ExperimentConfig | dict,
    name: str | None = None,
    enqueue: bool = True,
    allowed_dirs: Sequence[Path] | None = None,
) -> str:
    """Validate, store as queued, and enqueue. Returns the new id. Raises ConfigError for a bad
    config or one over the admission limits (backend.admission), ValueError for a name over 200
    characters; if the queue cannot be reached the experiment is marked failed with that error
    and the error is raised. enqueue=False: the caller runs it itself at once
    (db.worker.Worker.run_here). The world's checks (its files, the hub, its prompts) run here,
    once per submission; `allowed_dirs` (a server shared with others): the only folders whose
    files the config may name."""
    from backend.worlds.registry import check_world  # the worlds import torch

    if isinstance(cfg, dict):
        cfg = ExperimentConfig.from_dict(cfg)
    cfg = check_world(check_admission(validate(cfg)), allowed_dirs)
    if name is not None and len(name) > NAME_MAX:
        raise ValueError(f"name: at most {NAME_MAX} characters, got {len(name)}")
    eid = new_id()
    gpu = queue.lane_of(cfg.device) == "cuda"
    with writing() as conn:
        conn.execute(
            insert(E.__table__).values(
                id=eid,
                name=name,
                status="queued",
                created_at=now(),
                progress=0.0,
                stage="waits for a GPU worker (device cuda)" if gpu else "queued",
                cancel_requested=False,
                config=cfg.to_dict(),
            )
        )
    if not enqueue:
        return eid
    try:
        queue.enqueue(eid, cfg.device)
    except Exception as e:
        with writing() as conn:
            conn.execute(
                update(E)
                .where(E.id == eid)
                .values(status="failed", finished_at=now(), error=f"could not enqueue: {e!r}")
            )
        raise
    return eid


LIST_COLUMNS = (
    E.id,
    E.name,
    E.created_at,
    E.started_at,
    E.finished_at,
    E.status,
    E.progress,
    E.stage,
    E.error,
    E.config,
    E.summary,
)


def row_dict(row) -> dict:
    """A row as a dict, its times as ISO strings (what app/timing.py reads)."""
    d = dict(row._mapping)
    for k in ("created_at", "started_at", "finished_at", "heartbeat_at"):
        if k in d:
            d[k] = _iso(d[k])
    return d


def list_experiments(limit: int = 200) -> list[dict]:
    """The newest experiments first: id, name, created_at, started_at, finished_at, status,
    progress, stage, error, config, summary (no curves: see get_experiment)."""
    with reading() as conn:
        rows = conn.execute(select(*LIST_COLUMNS).order_by(E.created_at.desc()).limit(limit))
        return [row_dict(r) for r in rows]


def find_done(cfg: ExperimentConfig | dict) -> str | None:
    """The newest finished experiment with exactly this config whose numbers today's code would
    give (backend.ARITHMETIC), or None (the reproduction suite reuses it instead of
    running the same experiment again)."""
    want = cfg.to_dict() if isinstance(cfg, ExperimentConfig) else cfg
    with reading() as conn:
        rows = conn.execute(
            select(E.id, E.config, E.versions)
            .where(E.status == "done")
            .order_by(E.finished_at.desc())
        )
        return next(
            (r.id for r in rows if r.config == want and same_arithmetic(r.versions, want)), None
        )


def recent_timings(limit: int = 10) -> list[tuple[dict, dict]]:
    """(timings, estimate) of the newest finished experiments that carry an estimate (what the
    run's stages took, and what backend.estimate said they would): the machine's pace."""
    with reading() as conn:
        rows = conn.execute(
            select(E.timings, E.result_meta)
            .where(E.status == "done")
            .order_by(E.finished_at.desc())
            .limit(limit)
        )
        return [
            (r.timings or {}, (r.result_meta or {}).get("estimate"))
            for r in rows
            if (r.result_meta or {}).get("estimate")
        ]


def get_experiment(eid: str) -> dict | None:
    """Everything about one experiment, or None (malformed or unknown id): id, name, created_at,
    started_at, finished_at, heartbeat_at, worker, status, progress, stage, cancel_requested,
    config, summary, timings, versions, error, and result: the RESULT.json layout once done
    (else None)."""
    if not is_valid_id(eid):
        return None
    with reading() as conn:
        row = conn.execute(select(E).where(E.id == eid)).one_or_none()
        if row is None:
            return None
        out = row_dict(row)
        meta = out.pop("result_meta")
        out["result"] = load_result(conn, eid, row) if row.status == "done" and meta else None
    return out


def load_arrays(eid: str, kind: str = "bon_scores") -> dict[str, np.ndarray] | None:
    """The stored arrays of a finished experiment (best-of-n: gold (P,N), proxy (P,N,K),
    prompt_idx (P,), answers (P,N,T), prompts (P,), vocab (V,)), or None when it has none.
    Raises FileNotFoundError when the database names a file the data folder lacks."""
    if not is_valid_id(eid):
        return None
    with reading() as conn:
        return artifacts.read(conn, eid, kind)


def waiting_for(eid: str) -> str | None:
    """What a queued experiment waits for, in one sentence (the workers it needs and whether any
    is up: a cuda run waits for a GPU worker), or None when it is not queued."""
    if not is_valid_id(eid):
        return None
    with reading() as conn:
        row = conn.execute(select(E.status, E.config).where(E.id == eid)).one_or_none()
    if row is None or row.status != "queued":
        return None
    return fleet.waiting_for(row.config.get("device", "auto"))


def cancel(eid: str) -> bool:
    """Cancel: a queued experiment at once; a running one at its next stage or step boundary
    (it stays "running" until its worker gets there). False when there is nothing to cancel
    (malformed or unknown id, or already finished)."""
    if not is_valid_id(eid):
        return False
    with writing() as conn:
        queued = conn.execute(
            update(E)
            .where(E.id == eid, E.status == "queued")
            .values(status="cancelled", cancel_requested=True, finished_at=now())
            .values(stage="cancelled before it started")
        )
        if queued.rowcount:
            return True
        running = conn.execute(
            update(E).where(E.id == eid, E.status == "running").values(cancel_requested=True)
        )
        return running.rowcount == 1


def delete(eid: str) -> bool:
    """Delete an experiment, its rows and its files. A running one stops at its next boundary
    (its worker finds the row gone). False for a malformed or unknown id."""
    if not is_valid_id(eid):
        return False
    with writing() as conn:
        in_files = Artifact.path.is_not(None)  # the other ones' chunks go with the cascade
        files = select(Artifact.path).where(Artifact.experiment_id == eid, in_files)
        paths = list(conn.execute(files).scalars())
        gone = conn.execute(sql_delete(E).where(E.id == eid)).rowcount == 1  # chunks cascade
    for rel in paths:
        artifacts.remove(rel)
    return gone
