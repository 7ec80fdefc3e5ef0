"""Random streams: one independent, reproducible generator per (experiment seed, stage, extra...).

Nothing in the engine reads the global numpy or torch generators, so one seed gives one set of
numbers on the CPU whatever else ran in the process before.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def stage_seed(seed: int, stage: str, *extra: int) -> np.random.SeedSequence:
    """An independent, reproducible random stream per (experiment seed, stage, extra...)."""
    return np.random.SeedSequence([seed, zlib.crc32(stage.encode()), *extra])


def torch_generator(seq: np.random.SeedSequence, device: torch.device | str) -> torch.Generator:
    """A torch Generator on `device` seeded from a SeedSequence (for sampling and data order)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0] >> 1))
    return gen
