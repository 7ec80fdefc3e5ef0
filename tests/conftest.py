"""Servers the database and queue tests share (tests/servers.py): one private PostgreSQL for the
whole session (each test makes its own database in it) and a private redis-server per test, both
on free loopback ports. Skipped with a reason when the Debian package is missing
(scripts/setup.sh installs both)."""

from __future__ import annotations

import shutil

import pytest
from servers import PostgresServer, RedisServer, postgres_bin


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL server; `pg_server.create()` is the URL of a new database in it."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    server = PostgresServer(fast=True)
    yield server
    server.stop()


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on a free loopback port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(tmp_path / "redis")
    yield server.url
    server.stop()


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test, as run_ppo and run_dpo do: intra-op threads only slow
    the tiny models down on a busy CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
