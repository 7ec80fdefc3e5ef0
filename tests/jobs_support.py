"""Helpers for the database, queue and CLI tests: real worker and CLI subprocesses on a real
SQLite file, with timeouts so that nothing hangs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A tiny experiment: a few seconds on a CPU. As CLI options, and as config changes.
TINY = ["--pairs", "200", "--eval-pairs", "50", "--members", "2", "--num-prompts", "4"]
TINY += ["--samples", "64"]


def tiny_config(seed: int = 0):
    from backend.cli import OVERRIDES
    from backend.config import ExperimentConfig

    changes = {OVERRIDES[opt]: int(value) for opt, value in zip(TINY[::2], TINY[1::2])}
    return ExperimentConfig().replace(seed=seed, **changes)


def job_env(data: Path, redis_url: str | None = None) -> dict[str, str]:
    """The environment of a worker or CLI process: its own data folder, one thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODHART_")}
    env.update(GOODHART_DATA_DIR=str(data), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    if redis_url:
        env["GOODHART_REDIS_URL"] = redis_url
    return env


def cli(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m backend ARGS`, to completion."""
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class WorkerProcess:
    """`python -m backend worker --db URL [ARGS]` with its log in a file."""

    def __init__(self, db_url: str, env: dict, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "w") as out:  # the child keeps its own copy of the file
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "backend", "worker", "--db", db_url, *args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid

    def text(self) -> str:
        return self.log.read_text()

    def events(self, kind: str) -> list[str]:
        """Experiment ids of the log lines "<time> <kind> <id>" (start, done, skip, ...)."""
        return re.findall(rf"^\S+ \S+ {kind} ([a-z0-9]{{12}})\b", self.text(), re.M)

    def wait_ready(self, timeout: float = 120) -> None:
        wait_for(lambda: " ready: " in self.text(), timeout, f"worker {self.pid} ready", self)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def wait_for(pred: Callable[[], object], timeout: float, what: str, worker=None):
    """Poll pred() until it is truthy; fail the test with `what` (and the worker log) if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        if worker is not None and worker.proc.poll() is not None:
            raise AssertionError(f"worker exited ({worker.proc.returncode}):\n{worker.text()}")
        time.sleep(0.05)
    log = f"\nworker log:\n{worker.text()}" if worker is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{log}")


def wait_status(eid: str, statuses: tuple[str, ...], timeout: float = 120, worker=None) -> dict:
    from db import api

    def status():
        exp = api.get_experiment(eid)
        return exp if exp["status"] in statuses else None

    return wait_for(status, timeout, f"{eid} to be {' or '.join(statuses)}", worker)
