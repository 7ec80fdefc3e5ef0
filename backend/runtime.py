"""What the code of one run shares: its config, world, device, progress, cancellation and timings.

`RunContext` is the one object a method (best-of-n in backend/experiment.py, PPO in backend/ppo.py)
is handed; backend/experiment.py's Runner is a RunContext that also runs the shared stages (SFT
policy, preference pairs, proxies). Keeping it here lets every method module depend on it without
depending on the engine that calls it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from backend.cache import ArtifactCache
from backend.config import ConfigError, ExperimentConfig
from backend.worlds.base import World

Progress = Callable[[float, str], None]


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
        self.progress = progress or (lambda frac, msg: None)
        self.should_stop = should_stop or (lambda: False)
        self.device = resolve_device(cfg.device)
        self.timings: dict[str, float] = {}

    def stage(self, name: str, frac: float, message: str) -> None:
        """A stage boundary: stop here if asked to, else report progress."""
        if self.should_stop():
            raise Cancelled(f"cancelled before {name}")
        self.progress(frac, message)

    def add_time(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def timed(self, name: str, fn, *args):
        """fn(*args), its wall time added to timings[name]."""
        t0 = time.perf_counter()
        out = fn(*args)
        self.add_time(name, time.perf_counter() - t0)
        return out
