"""Batches that adapt to memory: `AdaptiveBatch` halves a batch on CUDA out-of-memory and retries.

Shapes: B rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


class AdaptiveBatch:
    """A batch size that halves on torch.cuda.OutOfMemoryError and remembers it.

    `map(fn, n)` calls fn(start, stop) over [0, n) in consecutive batches and returns the
    results in order; a batch that runs out of memory is retried at half the size (down to 1,
    after which the error propagates). The smaller size is kept for later calls."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self.backoffs = 0

    def map(self, fn: Callable[[int, int], T], n: int) -> list[T]:
        out, start = [], 0
        while start < n:
            stop = min(n, start + self.size)
            try:
                out.append(fn(start, stop))
            except torch.cuda.OutOfMemoryError:
                if self.size == 1:
                    raise
                self.size = max(1, (stop - start) // 2)
                self.backoffs += 1
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            start = stop
        return out
