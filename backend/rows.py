"""Equal rows of an integer array, found in one sort: answers repeat a lot in a toy world, so the
engine scores each distinct (prompt, answer) once and best-of-n's exact KL merges equal answers."""

from __future__ import annotations

import numpy as np


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse) for rows (B, W): the index of one row of each distinct value, and for
    every row which of those it equals, so rows[first][inverse] == rows. Each row is compared as
    one opaque byte string (a 1-D sort instead of np.unique(axis=0)'s column-by-column one)."""
    rows = np.ascontiguousarray(rows)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)
