"""Private servers for the tests and benchmarks, on free loopback ports, stopped at the end:
redis-server (Debian's redis-server), and PostgreSQL (Debian's postgresql: a new cluster made
with initdb in a temporary folder, then postgres).

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to, and the
server runs as, the `postgres` user the Debian package creates (else `nobody`). The folder is made
under /tmp (not pytest's private tmp_path) so that user can reach it. `fast=True` (the tests)
turns fsync off: a crash of the test machine may lose the test database, which is thrown away
anyway; the benchmarks keep PostgreSQL's defaults.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "lab"  # the database superuser of the test cluster (trust authentication on loopback)


def postgres_bin() -> Path | None:
    """The folder of initdb and postgres: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(versions[-1]).parent if versions else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, without persistence; `url` for Huey."""

    def __init__(self, folder: Path) -> None:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (Debian package redis-server)")
        port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
        args += ["--save", "", "--appendonly", "no"]
        with open(folder / "redis.log", "w") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        while not _pings(client):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not answer:\n{(folder / 'redis.log').read_text()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


def _run_as() -> str | None:
    """The unprivileged user to run the server as when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and there is no postgres or nobody user to run as")


class PostgresServer:
    """initdb + postgres on 127.0.0.1:<free port>; `url(name)` for a database in it."""

    def __init__(self, fast: bool = True, max_connections: int = 300) -> None:
        binaries = postgres_bin()
        if binaries is None:
            raise FileNotFoundError("PostgreSQL is not installed (Debian package postgresql)")
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="goodhart-pg-"))
        self.data = self.root / "cluster"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        if self.user is not None:
            os.chown(self.root, pwd.getpwnam(self.user).pw_uid, -1)
        self._run(
            binaries / "initdb",
            *("-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"),
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": str(max_connections),
        }
        if fast:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        args = [str(binaries / "postgres"), "-D", str(self.data)]
        for k, v in settings.items():
            args += ["-c", f"{k}={v}"]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, user=self.user, cwd=self.root
            )
        if self.user is not None:
            os.chown(self.log, pwd.getpwnam(self.user).pw_uid, -1)
        self._wait_ready(60)
        self._count = 0

    def _run(self, *args) -> None:
        out = subprocess.run(
            [str(a) for a in args],
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({out.returncode}):\n{out.stdout}{out.stderr}")

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited:\n{self.log.read_text()}")
            try:
                psycopg.connect(self._dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _dsn(self, name: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of database `name` (see create)."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def create(self, prefix: str = "lab") -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        self._count += 1
        name = f"{prefix}_{os.getpid()}_{self._count}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: clients are disconnected
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
