"""The workers that are up (table workers): each says what it runs (its lanes: "cuda cpu" for a
GPU worker, "cpu" for a CPU one) and what it runs now. A worker writes its row when it starts and
at every heartbeat, and deletes it when it stops; a row whose heartbeat is older than the stale
limit is a dead worker's (the sweep deletes it, and readers ignore it meanwhile).

`waiting_for(device)` is the sentence the run page and `show` print for a queued experiment: which
workers it needs and whether any is up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, insert, select, update

from db.engine import reading, writing
from db.jobs import as_utc, now
from db.models import WorkerRow
from db.queue import lane_of

W = WorkerRow
STALE_S = 60.0  # no heartbeat for this long: the worker is dead (db/worker.py fails its run)


class Live(NamedTuple):
    id: str
    lanes: tuple[str, ...]
    current: str | None


def register(worker: str, lanes: tuple[str, ...]) -> None:
    """This worker is up and serves `lanes` (a row left by an earlier process with the same id
    is replaced)."""
    t = now()
    with writing() as conn:
        conn.execute(delete(W).where(W.id == worker))
        conn.execute(
            insert(W.__table__).values(
                id=worker, devices=" ".join(lanes), started_at=t, heartbeat_at=t, current=None
            )
        )


def beat(worker: str, lanes: tuple[str, ...], current: str | None) -> None:
    """A heartbeat: alive, and running `current` (or idle). Re-registers a row a sweep deleted."""
    with writing() as conn:
        res = conn.execute(
            update(W).where(W.id == worker).values(heartbeat_at=now(), current=current)
        )
    if res.rowcount == 0:
        register(worker, lanes)


def leave(worker: str) -> None:
    with writing() as conn:
        conn.execute(delete(W).where(W.id == worker))


def rows() -> list[tuple[str, datetime]]:
    """(id, last heartbeat) of every worker row, live or not (the sweep judges them)."""
    with reading() as conn:
        return [(r.id, as_utc(r.heartbeat_at)) for r in conn.execute(select(W.id, W.heartbeat_at))]


def live(at: datetime | None = None) -> list[Live]:
    """The workers whose heartbeat is at most STALE_S old."""
    since = (at or now()) - timedelta(seconds=STALE_S)
    with reading() as conn:
        q = select(W.id, W.devices, W.current, W.heartbeat_at)
        found = [r for r in conn.execute(q) if as_utc(r.heartbeat_at) >= since]
    return [Live(r.id, tuple(r.devices.split()), r.current) for r in found]


def waiting_for(device: str | None) -> str:
    """What a queued experiment that asks for `device` waits for, in one sentence."""
    lane = lane_of(device)
    workers = live()
    able = [w for w in workers if lane in w.lanes]
    idle = [w for w in able if w.current is None]
    if lane == "cuda" and not able:
        up = "is" if len(workers) == 1 else "are"
        cpu = f" ({_count(len(workers), 'CPU worker')} {up} up, and CPU workers leave it)"
        cpu = cpu if workers else ""
        return (
            "It asks for device cuda and waits for a worker with a GPU: none is running"
            f"{cpu}. Start one on a machine with a GPU: `python -m backend worker --device cuda`."
        )
    if not able:
        return "It waits for a worker: none is running. Start one: `python -m backend worker`."
    kind = "GPU worker" if lane == "cuda" else "worker"
    if idle:
        return f"{_count(len(idle), 'idle ' + kind)} up: it starts in a moment."
    if len(able) == 1:
        return f"It waits for the only {kind}, busy with another run now."
    return f"It waits for one of the {len(able)} {kind}s, all busy with other runs now."


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"
