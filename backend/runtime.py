"""What the code of one run shares: its config, world, device, progress, cancellation and timings.

`RunContext` is the one object a method (best-of-n in backend/experiment.py, PPO in backend/ppo.py)
is handed; backend/experiment.py's Runner is a RunContext that also runs the shared stages (SFT
policy, preference pairs, proxies). Keeping it here lets every method module depend on it without
depending on the engine that calls it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from backend.cache import ArtifactCache
from backend.config import ConfigError, ExperimentConfig
from backend.seeding import stage_seed
from backend.worlds.base import World

Progress = Callable[[float, str], None]
TICK_S = 1.0  # progress within a stage is reported at most this often (each report is a write)
T = TypeVar("T")
R = TypeVar("R")


def cpu_workers() -> int:
    """How many independent pieces of a run (members, prompts) go at once: GOODHART_THREADS,
    else every core. Each piece runs torch on one thread (see RunContext.parallel)."""
    return max(1, int(os.environ.get("GOODHART_THREADS") or os.cpu_count() or 1))


class Cancelled(Exception):
    """Raised at a stage boundary (or PPO step) when should_stop() says so."""


def resolve_device(name: str) -> torch.device:
    """ "auto": cuda when torch sees a GPU, else cpu; "cuda" without one is a ConfigError
    naming --device (the CLI checks it before any work; a worker fails the run with it)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", "--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


class RunContext:
    """One run's config, cache, device, world and initial policy, progress callback,
    cancellation check and timings."""

    world: World
    policy: torch.nn.Module  # the initial policy, once loaded

    def __init__(
        self,
        cfg: ExperimentConfig,
        cache: ArtifactCache,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.cfg = cfg
        self.cache = cache
        self._report = progress or (lambda frac, msg: None)
        self.scale: Callable[[float], float] = lambda frac: frac  # backend.estimate.ProgressScale
        self._lock = threading.Lock()  # members and prompts report from several threads
        self._last_frac, self._last_t = 0.0, -float("inf")
        self.should_stop = should_stop or (lambda: False)
        self.device = resolve_device(cfg.device)
        self.timings: dict[str, float] = {}

    def stage(self, name: str, frac: float, message: str) -> None:
        """A stage boundary: stop here if asked to, else report progress."""
        if self.should_stop():
            raise Cancelled(f"cancelled before {name}")
        self.progress(frac, message)

    def progress(self, frac: float, message: str) -> None:
        """Report progress: `frac` is the engine's fraction (backend.estimate.SEGMENTS), stored
        as `scale(frac)`, roughly the fraction of the run's estimated time; never backwards
        (members running side by side report out of order)."""
        self.relay(self.scale(frac), message)

    def relay(self, frac: float, message: str) -> None:
        """Report a fraction already scaled (progress's, or one a forked child computed)."""
        with self._lock:
            self._last_frac = max(self._last_frac, frac)
            self._last_t = time.monotonic()
            self._report(self._last_frac, message)

    def tick(self, frac: float, message: str) -> None:
        """Progress within a stage (batches, prompts, steps), at most every TICK_S seconds."""
        if time.monotonic() - self._last_t >= TICK_S:
            self.progress(frac, message)

    def heldout_prompts(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(held-out, training) prompt indices, each sorted: k of the world's prompts chosen by
        the experiment seed only. PPO and DPO share the split, so runs of one seed are evaluated
        on the same prompts whichever method they use."""
        order = np.random.default_rng(stage_seed(self.cfg.seed, "ppo-prompts")).permutation(
            len(self.world.prompts())
        )
        return np.sort(order[:k]), np.sort(order[k:])

    def add_time(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def timed(self, name: str, fn, *args):
        """fn(*args), its wall time added to timings[name]."""
        t0 = time.perf_counter()
        out = fn(*args)
        self.add_time(name, time.perf_counter() - t0)
        return out

    def can_fork(self) -> bool:
        """Whether independent pieces may run in forked processes (backend/forked.py): a
        thread-safe world on the CPU with cores to spare, and a cache the children store into
        (GOODHART_FORK=0 turns it off)."""
        return (
            cpu_workers() > 1
            and self.device.type == "cpu"
            and self.world.thread_safe
            and self.cache.enabled
            and os.environ.get("GOODHART_FORK", "1") != "0"
            and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon  # a daemon may not have children
        )

    def parallel(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """[fn(x) for x in items], `cpu_workers()` at a time in threads of this process.

        The thread policy, by measurement (benchmarks/bench_threads.py, docs/benchmarks.md):
        torch runs every op on one thread, and independent pieces (members, prompts) run side by
        side, so a piece's numbers do not depend on how many run at once. Intra-op threads
        collapse on a busy machine (OpenMP threads spin-waiting for a core: over 440 s against
        27 s). Threads share the GIL between torch's ops: fine for ops of milliseconds (the
        sampler's prompts), not for the proxies' steps of 10-90 us calls, which train in forked
        processes instead where the run may fork (can_fork; Runner.train_forked)."""
        items = list(items)
        workers = min(cpu_workers(), len(items))
        if workers <= 1 or self.device.type != "cpu" or not self.world.thread_safe:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(workers, thread_name_prefix="run") as pool:
            return list(pool.map(fn, items))
