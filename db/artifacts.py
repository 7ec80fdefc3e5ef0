"""Artifact files: an experiment's arrays as an uncompressed .npz under data_dir()/artifacts/.

Uncompressed on purpose: the default best-of-n matrix (P=64, N=4096, K=5, with the answers) is
about 34 MB and compresses poorly (standardized floats), while zlib would take about a second to
write it and a quarter of one to read it back. Files are written to a temporary name and renamed,
so a crash never leaves a half-written artifact behind a database row. Paths in the database are
relative to the data folder, so the folder can be moved or mounted elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from backend.cache import data_dir

FOLDER = "artifacts"


def save(experiment_id: str, kind: str, arrays: dict[str, np.ndarray]) -> tuple[str, int]:
    """Write arrays to <data>/artifacts/<id>.<kind>.npz; returns (relative path, bytes)."""
    rel = f"{FOLDER}/{experiment_id}.{kind}.npz"
    final = data_dir() / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return rel, final.stat().st_size


def load(rel: str) -> dict[str, np.ndarray]:
    """Every array of an artifact, read into memory."""
    path = data_dir() / rel
    if not path.exists():
        raise FileNotFoundError(
            f"artifact {path} is missing: is GOODHART_DATA_DIR ({data_dir()}) the data folder "
            "the worker wrote to?"
        )
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def remove(rel: str) -> None:
    Path(data_dir() / rel).unlink(missing_ok=True)
