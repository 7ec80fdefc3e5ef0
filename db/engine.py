"""Where the database is, one engine per process, and the schema brought to the newest version.

The URL comes from (first that is set): `set_url()` (the CLI's --db), GOODHART_DB_URL, or a SQLite
file under the data folder. A plain path is taken as a SQLite file. Any SQLAlchemy URL works
(PostgreSQL included); SQLite gets WAL (readers never wait for the writer), foreign keys and a busy
timeout, and SQLAlchemy emits BEGIN itself so that a read sees one snapshot and a write takes the
write lock at its start (BEGIN IMMEDIATE): a transaction that read first and wrote second could
otherwise fail at once with "database is locked" instead of waiting its turn.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from backend.cache import can_create_in, data_dir

DB_FILE = "goodhart.sqlite3"
BUSY_TIMEOUT_MS = 30_000
SCHEMA_VERSION = "0003"  # the newest migration under db/migrations/versions (a test checks this)
MIGRATIONS_INI = Path(__file__).with_name("alembic.ini")

_url_override: str | None = None


def set_url(url: str | None) -> None:
    """Use this database for the rest of the process (the CLI's --db)."""
    global _url_override
    _url_override = url


def normalize_url(url: str) -> str:
    """A URL as given, or a plain file path turned into a SQLite URL."""
    if "://" in url:
        return url
    return f"sqlite:///{Path(url).expanduser().resolve()}"


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_url(url: str, create: bool = True) -> None:
    """Why `url` cannot be this process's database, as a ValueError with a message a user can
    act on, found before anything opens it: a URL SQLAlchemy cannot parse, a driver that is not
    installed, an in-memory SQLite database (each process gets its own, so a submit there is
    lost), a folder, a file that is not SQLite, a file that cannot be written, and, unless
    `create`, a file that does not exist yet (a mistyped path would otherwise be a new, empty
    database)."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        u = make_url(normalize_url(url))
        dialect = u.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise ValueError(f"not a database URL or file path: {e}") from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        raise ValueError(
            f"the driver of {u.drivername} URLs is not installed (no module {e.name!r})"
        ) from None
    if u.get_backend_name() != "sqlite":
        return
    if u.database in (None, "", ":memory:") or u.query.get("mode") == "memory":
        raise ValueError(
            "an in-memory SQLite database (sqlite:// or sqlite:///) is lost when the process "
            "exits, and workers cannot see it; give a file, e.g. sqlite:///data/lab.sqlite3"
        )
    _check_sqlite_file(Path(u.database), create)


def _check_sqlite_file(path: Path, create: bool) -> None:
    try:
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not a database file")
        if path.exists():
            with open(path, "rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
            if head and head != SQLITE_MAGIC:
                raise ValueError(f"{path} is not a SQLite database")
            if head:
                _check_schema(path)
            with open(path, "ab"):  # appends nothing: only asks whether it could
                pass
            if not can_create_in(path.parent):  # SQLite's -wal and -shm files go beside it
                raise ValueError(f"{path} cannot be written: its folder is not writable")
            return
        if not create:
            raise ValueError(
                f"there is no database at {path} (a mistyped path? only submit and worker "
                "create a new one)"
            )
        if not can_create_in(path.parent):
            raise ValueError(f"cannot create {path}: the folder is not writable")
    except PermissionError:
        raise ValueError(f"{path} cannot be written (permission denied)") from None
    except OSError as e:  # a path too long, a read-only file system
        raise ValueError(f"{path}: {e.strerror or e}") from None


def _check_schema(path: Path) -> None:
    """A SQLite file that holds tables must hold ours (an alembic_version this code knows):
    another program's database is not taken over, nor a newer schema written to."""
    import sqlite3

    try:
        con = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            row = None
            if "alembic_version" in tables:
                row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.Error as e:
        raise ValueError(f"{path} is not a readable SQLite database ({e})") from None
    if tables and row is None:
        raise ValueError(f"{path} holds another program's tables, not a Goodhart Lab database")
    versions = MIGRATIONS_INI.parent / "migrations" / "versions"
    if row is not None and not list(versions.glob(f"{row[0]}_*.py")):
        raise ValueError(f"{path} has schema version {row[0]!r}, which this version does not know")


def database_url() -> str:
    """The database of this process: set_url(), GOODHART_DB_URL, or data_dir()/goodhart.sqlite3."""
    url = _url_override or os.environ.get("GOODHART_DB_URL")
    return normalize_url(url) if url else f"sqlite:///{data_dir() / DB_FILE}"


def display_url(url: str | None = None) -> str:
    """The URL with any password hidden, for logs and messages."""
    return make_url(url or database_url()).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a file-based SQLite URL, else None."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    return Path(u.database)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys = ON")
    # Switching a new file to WAL needs the write lock for a moment; wait for it like a write.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            break
        except Exception as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    cur.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; commits skip an fsync
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("goodhart_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """A new engine for `url` with the settings above (no migration; see get_engine)."""
    path = sqlite_path(url)
    if path is None:
        return create_engine(url, pool_pre_ping=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


@cache
def _engine(url: str) -> Engine:
    engine = make_engine(url)
    _migrate(engine, sqlite_path(url))
    return engine


def get_engine() -> Engine:
    """The engine of database_url(), created (and the schema migrated) once per process."""
    return _engine(database_url())


@contextmanager
def reading() -> Iterator[Connection]:
    """A read transaction: every query inside sees the same snapshot."""
    with get_engine().connect() as conn, conn.begin():
        yield conn


@contextmanager
def writing() -> Iterator[Connection]:
    """A write transaction (SQLite: BEGIN IMMEDIATE), committed at the end, rolled back on error."""
    with get_engine().connect() as conn:
        conn.execution_options(goodhart_write=True)
        with conn.begin():
            yield conn


# ---- migrations ---------------------------------------------------------------------------------


def _current_version(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):  # no alembic_version table yet
        return None


def alembic_config(url: str | None = None):
    """The Alembic config of db/migrations (for the alembic CLI, tests and upgrade())."""
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS_INI))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` on this engine's database."""
    from alembic import command

    cfg = alembic_config()
    with engine.connect() as conn:
        conn.execution_options(goodhart_write=True)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def _migrate(engine: Engine, path: Path | None) -> None:
    """Bring the schema to SCHEMA_VERSION. The fast path (already there) is one SELECT and does
    not import Alembic. Processes starting together on a new SQLite file take turns (file lock);
    on other databases a loser of the race finds the schema done by the winner."""
    if _current_version(engine) == SCHEMA_VERSION:
        return
    if path is not None:
        with open(f"{path}.migrate-lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _current_version(engine) != SCHEMA_VERSION:
                upgrade(engine)
        return
    try:
        upgrade(engine)
    except Exception:
        if _current_version(engine) != SCHEMA_VERSION:
            raise
