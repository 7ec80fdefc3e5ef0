"""Servers the database and queue tests share: one private PostgreSQL for the whole session (each
test makes its own database in it) and a private redis-server per test, both on free loopback
ports. Skipped with a reason when the Debian package is missing (scripts/setup.sh installs both)."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
from jobs_support import wait_for
from pg_support import PostgresServer, postgres_bin


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL server (tests/pg_support.py); `pg_server.create()` is a new database."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    server = PostgresServer(fast=True)
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    import redis

    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    args += ["--save", "", "--appendonly", "no"]
    with open(folder / "redis.log", "w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(lambda: _pings(redis.Redis.from_url(url)), 30, "redis-server to answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
