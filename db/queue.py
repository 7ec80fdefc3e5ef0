"""The job queue: Huey. A message carries only an experiment id; the database is the truth about
every experiment, and a worker claims the row before it runs anything, so a message delivered
twice (or re-sent by recovery) never runs an experiment twice.

SqliteHuey in <data>/queue.sqlite3 by default (one machine: the web server and its workers);
RedisHuey when GOODHART_REDIS_URL is set, so workers on several machines consume one queue. They
must then share the database (GOODHART_DB_URL, e.g. PostgreSQL), which also holds the results.

Lanes: an experiment that asks for `--device cuda` goes to the "cuda" lane (Huey queue
goodhart-cuda), every other one (cpu, auto) to the "cpu" lane (goodhart, as before lanes). A
worker serves the lanes of its devices (db/worker.py): a CPU worker never sees a cuda job, which
waits in its lane for a worker with a GPU instead of failing on a machine without one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

from huey import Huey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from sqlalchemy import make_url

from backend.cache import data_dir

QUEUE_NAME = "goodhart"
TASK_NAME = "run_experiment"
QUEUE_FILE = "queue.sqlite3"
LANES = ("cuda", "cpu")  # a GPU worker serves both, cuda first; a CPU worker only "cpu"


def lane_of(device: str | None) -> str:
    """The lane of an experiment whose config asks for `device` (cpu, cuda or auto)."""
    return "cuda" if device == "cuda" else "cpu"


def _queue_name(lane: str) -> str:
    return QUEUE_NAME if lane == "cpu" else f"{QUEUE_NAME}-{lane}"


_handler: Callable[[str], None] | None = None


def set_handler(handler: Callable[[str], None] | None) -> None:
    """What runs a dequeued experiment in this process: the worker sets its own (db/worker.py),
    so this module does not need to know about workers."""
    global _handler
    _handler = handler


def _run_experiment(experiment_id: str) -> None:
    """The Huey task: hand the id to this process's worker."""
    if _handler is None:
        raise RuntimeError("experiments run inside a worker: python -m backend worker")
    _handler(experiment_id)


@cache
def _queue(
    redis_url: str | None, sqlite_file: str | None, lane: str = "cpu", blocking: bool = True
) -> tuple[Huey, TaskWrapper]:
    name = _queue_name(lane)
    if redis_url:
        huey = RedisHuey(name, url=redis_url, results=False, blocking=blocking, read_timeout=1)
    else:
        os.makedirs(os.path.dirname(sqlite_file), exist_ok=True)
        huey = SqliteHuey(name, filename=sqlite_file, results=False, timeout=30)
    return huey, huey.task(name=TASK_NAME)(_run_experiment)


def _settings() -> tuple[str | None, str | None]:
    redis_url = os.environ.get("GOODHART_REDIS_URL") or None
    return redis_url, None if redis_url else str(data_dir() / QUEUE_FILE)


def get_huey(lane: str = "cpu") -> Huey:
    """The queue of one lane, for this process's settings (GOODHART_REDIS_URL, else the data
    folder)."""
    return _queue(*_settings(), lane)[0]


def consumers(lanes: tuple[str, ...]) -> list[Huey]:
    """The queues a worker reads, in order. One lane: a blocking read (Redis), as before lanes;
    several: non-blocking reads, polled in turn."""
    return [_queue(*_settings(), lane, len(lanes) == 1)[0] for lane in lanes]


def describe(lanes: tuple[str, ...] = ("cpu",)) -> str:
    """Where the queue is and which of its queues, for logs (passwords hidden)."""
    redis_url, sqlite_file = _settings()
    names = ", ".join(_queue_name(lane) for lane in lanes)
    if redis_url:
        return f"redis {make_url(redis_url).render_as_string(hide_password=True)} ({names})"
    return f"sqlite {sqlite_file} ({names})"


def enqueue(experiment_id: str, device: str | None = None) -> None:
    """Send one experiment to the workers of its lane (`device`: its config's device)."""
    _queue(*_settings(), lane_of(device))[1](experiment_id)


def pending_ids() -> set[str]:
    """Experiment ids of the messages waiting in the queue, every lane."""
    return {t.args[0] for lane in LANES for t in get_huey(lane).pending() if t.args}
