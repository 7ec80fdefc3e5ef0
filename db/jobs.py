"""The life of an experiment row, as the worker drives it (docs/database.md has the picture).

Every change is one short transaction, and every change a worker makes is guarded by
`status = 'running' AND worker = <its id>`, so a worker that lost its run (cancelled, deleted, or
declared dead after missing heartbeats) cannot overwrite what happened since.

    claim     queued  -> running        finish    running -> done (result rows, one transaction)
    fail      running -> failed         stopped   running -> cancelled (cancel seen)
    requeue   running -> queued         mark_lost running -> failed (its worker is dead)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import and_, select, update

from db import artifacts
from db.engine import database_url, reading, writing
from db.models import Experiment
from db.results import plain, split_result, store_rows

E = Experiment
ARRAYS = "bon_scores"  # the artifact kind of an experiment's arrays (best-of-n and PPO alike)


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(dt: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; they were stored in UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _owned(eid: str, worker: str):
    return and_(E.id == eid, E.status == "running", E.worker == worker)


def claim(eid: str, worker: str) -> dict | None:
    """Take a queued experiment: it becomes running on this worker. Returns its config, or None
    when it is not queued any more (cancelled, deleted, or already taken by another worker)."""
    t = now()
    with writing() as conn:
        res = conn.execute(
            update(E)
            .where(E.id == eid, E.status == "queued")
            .values(status="running", worker=worker, started_at=t, heartbeat_at=t, progress=0.0)
            .values(stage="starting")
        )
        if res.rowcount != 1:
            return None
        return conn.execute(select(E.config).where(E.id == eid)).scalar_one()


def progress(eid: str, worker: str, fraction: float, stage: str) -> bool:
    """Record progress (and a heartbeat). False when this worker no longer owns the run."""
    with writing() as conn:
        res = conn.execute(
            update(E)
            .where(_owned(eid, worker))
            .values(progress=float(fraction), stage=stage[:200], heartbeat_at=now())
        )
        return res.rowcount == 1


def heartbeat(eid: str, worker: str) -> bool:
    with writing() as conn:
        res = conn.execute(update(E).where(_owned(eid, worker)).values(heartbeat_at=now()))
        return res.rowcount == 1


def stop_reason(eid: str, worker: str) -> str | None:
    """ "cancel" when a cancel was asked for, "lost" when this worker no longer owns the run
    (deleted, or declared dead by another worker), else None."""
    with reading() as conn:
        row = conn.execute(
            select(E.status, E.worker, E.cancel_requested).where(E.id == eid)
        ).one_or_none()
    if row is None or row.status != "running" or row.worker != worker:
        return "lost"
    return "cancel" if row.cancel_requested else None


class _Lost(Exception):
    """This worker no longer owns the run."""


def finish(eid: str, worker: str, result: dict, arrays: dict) -> bool:
    """Store a finished run in one transaction: the row, its curves, members, samples, and its
    arrays (in the database, or in a file written first: db/artifacts.py). False (and nothing
    stored) when this worker no longer owns the run."""
    result = plain(result)
    columns, meta = split_result(result)
    payload = artifacts.encode(arrays) if arrays else None
    rel = None
    if payload is not None and artifacts.place(database_url()) == "folder":
        rel, _ = artifacts.save_file(eid, ARRAYS, payload)
    try:
        t = now()
        with writing() as conn:
            res = conn.execute(
                update(E)
                .where(_owned(eid, worker))
                .values(status="done", progress=1.0, stage="done", finished_at=t, heartbeat_at=t)
                .values(result_meta=meta, error=None, **columns)
            )
            if res.rowcount != 1:
                raise _Lost  # rolls the transaction back
            store_rows(conn, eid, result)
            if payload is not None:
                artifacts.insert_row(conn, eid, ARRAYS, payload, rel, t)
    except BaseException as e:
        if rel is not None:
            artifacts.remove(rel)
        if isinstance(e, _Lost):
            return False
        raise
    return True


def _end(eid: str, worker: str, status: str, stage: str | None, error: str | None) -> bool:
    values = {"status": status, "finished_at": now(), "error": error}
    if stage is not None:
        values["stage"] = stage[:200]
    with writing() as conn:
        return conn.execute(update(E).where(_owned(eid, worker)).values(**values)).rowcount == 1


def fail(eid: str, worker: str, error: str) -> bool:
    """The run raised: failed, with the traceback; the stage says where it was."""
    return _end(eid, worker, "failed", None, error)


def stopped(eid: str, worker: str, message: str) -> bool:
    """The run saw its cancel at a boundary and stopped."""
    return _end(eid, worker, "cancelled", message, None)


def requeue(eid: str, worker: str, message: str) -> bool:
    """The worker is shutting down: put the run back to queued (the caller enqueues it)."""
    with writing() as conn:
        res = conn.execute(
            update(E)
            .where(_owned(eid, worker))
            .values(status="queued", worker=None, started_at=None, heartbeat_at=None)
            .values(progress=0.0, stage=message[:200])
        )
        return res.rowcount == 1


class Running(NamedTuple):
    id: str
    worker: str | None
    heartbeat_at: datetime | None
    stage: str | None


def running() -> list[Running]:
    """Every running experiment, with who runs it and its last heartbeat."""
    with reading() as conn:
        rows = conn.execute(
            select(E.id, E.worker, E.heartbeat_at, E.stage).where(E.status == "running")
        ).all()
    return [Running(r.id, r.worker, as_utc(r.heartbeat_at), r.stage) for r in rows]


def mark_lost(eid: str, worker: str, heartbeat_at: datetime | None, error: str) -> bool:
    """Fail a run whose worker is gone, unless it changed since it was judged (a new heartbeat)."""
    with writing() as conn:
        res = conn.execute(
            update(E)
            .where(_owned(eid, worker), E.heartbeat_at == heartbeat_at)
            .values(status="failed", finished_at=now(), error=error)
        )
        return res.rowcount == 1


def queued_ids() -> list[str]:
    with reading() as conn:
        return list(conn.execute(select(E.id).where(E.status == "queued")).scalars())


def device_of(eid: str) -> str | None:
    """The device an experiment's config asks for (cpu, cuda, auto), or None when it is gone."""
    with reading() as conn:
        config = conn.execute(select(E.config).where(E.id == eid)).scalar_one_or_none()
    return None if config is None else config.get("device", "auto")
