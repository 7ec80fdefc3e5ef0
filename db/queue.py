"""The job queue: Huey. A message carries only an experiment id; the database is the truth about
every experiment, and a worker claims the row before it runs anything, so a message delivered
twice (or re-sent by recovery) never runs an experiment twice.

SqliteHuey in <data>/queue.sqlite3 by default (one machine: the web server and its workers);
RedisHuey when GOODHART_REDIS_URL is set, so workers on several machines consume one queue. They
must then share the database (GOODHART_DB_URL, e.g. PostgreSQL) and the data folder (artifacts).
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
def _queue(redis_url: str | None, sqlite_file: str | None) -> tuple[Huey, TaskWrapper]:
    if redis_url:
        huey = RedisHuey(QUEUE_NAME, url=redis_url, results=False, blocking=True, read_timeout=1)
    else:
        os.makedirs(os.path.dirname(sqlite_file), exist_ok=True)
        huey = SqliteHuey(QUEUE_NAME, filename=sqlite_file, results=False, timeout=30)
    return huey, huey.task(name=TASK_NAME)(_run_experiment)


def _settings() -> tuple[str | None, str | None]:
    redis_url = os.environ.get("GOODHART_REDIS_URL") or None
    return redis_url, None if redis_url else str(data_dir() / QUEUE_FILE)


def get_huey() -> Huey:
    """The queue of this process's settings (GOODHART_REDIS_URL, else the data folder)."""
    return _queue(*_settings())[0]


def describe() -> str:
    """Where the queue is, for logs (passwords hidden)."""
    redis_url, sqlite_file = _settings()
    if redis_url:
        return "redis " + make_url(redis_url).render_as_string(hide_password=True)
    return f"sqlite {sqlite_file}"


def enqueue(experiment_id: str) -> None:
    """Send one experiment to the workers."""
    _queue(*_settings())[1](experiment_id)


def pending_ids() -> set[str]:
    """Experiment ids of the messages waiting in the queue."""
    return {t.args[0] for t in get_huey().pending() if t.args}
