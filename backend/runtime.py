"""What the code of one run shares: its config, world, device, progress, cancellation and timings.

`RunContext` is the one object a method (best-of-n in backend/experiment.py, PPO in backend/ppo.py)
is handed; backend/experiment.py's Runner is a RunContext that also runs the shared stages (SFT
policy, preference pairs, proxies). Keeping it here lets every method module depend on it without
depending on the engine that calls it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from backend.cache import ArtifactCache
from backend.config import ExperimentConfig
from backend.seeding import stage_seed
from backend.worlds.base import World

Progress = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised at a stage boundary (or PPO step) when should_stop() says so."""


def resolve_device(name: str) -> torch.device:
    """ "auto": cuda when torch sees a GPU, else cpu; "cuda" without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """On the CPU, torch on one intra-op thread inside the block (restored afterwards): the toy
    models are far too small for intra-op parallelism, and on a busy machine two threads made a
    PPO step up to 15x slower (benchmarks/bench_ppo.py). Other devices: unchanged."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
        self.progress = progress or (lambda frac, msg: None)
        self.should_stop = should_stop or (lambda: False)
        self.device = resolve_device(cfg.device)
        self.timings: dict[str, float] = {}

    def stage(self, name: str, frac: float, message: str) -> None:
        """A stage boundary: stop here if asked to, else report progress."""
        if self.should_stop():
            raise Cancelled(f"cancelled before {name}")
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
