"""An experiment's arrays (the best-of-n score matrix and answers), stored as one uncompressed
.npz: in the database, or as a file under the data folder.

Where (GOODHART_ARTIFACTS, else by the database): a server database (PostgreSQL) keeps them in
its artifact_chunks table, so every machine that reaches the database reaches the results and no
folder is shared; SQLite (one machine) keeps them as files under <data>/artifacts/, which is
faster there and keeps the database file small (docs/database.md has the figures). Rows written
either way load either way: an artifact row with a path is a file, one without is in chunks, so
an install that switches (or an old one, from before chunks) keeps reading what it has.

In the database an artifact is cut into CHUNK_BYTES pieces: no single value comes near
PostgreSQL's 1 GB limit on a bytea, and the driver never holds one huge parameter. Pieces are
written in the same transaction as the rest of the result, so a reader sees all of a result or
none of it.

Uncompressed on purpose: the default best-of-n matrix (P=20, N=4096, K=5, with the answers) is
about 34 MB and compresses poorly (standardized floats), while zlib would take about a second to
write it and a quarter of one to read it back. Files are written to a temporary name and renamed,
so a crash never leaves a half-written artifact behind a database row. Paths in the database are
relative to the data folder, so the folder can be moved or mounted elsewhere.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, insert, select

from backend.cache import data_dir
from db.models import Artifact, ArtifactChunk

FOLDER = "artifacts"
CHUNK_BYTES = 2**20  # as fast as 8 MiB or faster (bench_db.py --compare), and less held at once
PLACES = ("database", "folder")
SETTING = "GOODHART_ARTIFACTS"


def place(url: str) -> str:
    """Where new artifacts go for the database at `url`: GOODHART_ARTIFACTS (database or
    folder), else "folder" for SQLite and "database" for any other. ValueError naming the
    variable for another value."""
    from sqlalchemy import make_url

    chosen = os.environ.get(SETTING, "").strip().lower()
    if chosen and chosen not in PLACES:
        raise ValueError(f"{SETTING}: 'database' or 'folder', got {chosen!r}")
    return chosen or ("folder" if make_url(url).get_backend_name() == "sqlite" else "database")


def encode(arrays: dict[str, np.ndarray]) -> bytes:
    """The .npz bytes of arrays (uncompressed)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def decode(payload: bytes | io.IOBase | Path) -> dict[str, np.ndarray]:
    """Every array of an .npz (bytes, a file object or a path), read into memory."""
    source = io.BytesIO(payload) if isinstance(payload, bytes | bytearray) else payload
    with np.load(source, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ---- files under the data folder -----------------------------------------------------------------


def save(experiment_id: str, kind: str, arrays: dict[str, np.ndarray]) -> tuple[str, int]:
    """Write arrays to <data>/artifacts/<id>.<kind>.npz; returns (relative path, bytes)."""
    return save_file(experiment_id, kind, encode(arrays))


def save_file(experiment_id: str, kind: str, payload: bytes) -> tuple[str, int]:
    """Write .npz bytes to <data>/artifacts/<id>.<kind>.npz; returns (relative path, bytes)."""
    rel = f"{FOLDER}/{experiment_id}.{kind}.npz"
    final = data_dir() / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(payload)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return rel, final.stat().st_size


def load(rel: str) -> dict[str, np.ndarray]:
    """Every array of an artifact file, read into memory."""
    path = data_dir() / rel
    if not path.exists():
        raise FileNotFoundError(
            f"artifact {path} is missing: is GOODHART_DATA_DIR ({data_dir()}) the data folder "
            "the worker wrote to? (With PostgreSQL, results are kept in the database unless "
            f"{SETTING}=folder.)"
        )
    return decode(path)


def remove(rel: str) -> None:
    Path(data_dir() / rel).unlink(missing_ok=True)


# ---- rows --------------------------------------------------------------------------------------


def insert_row(
    conn: Connection, eid: str, kind: str, payload: bytes, path: str | None, at: datetime
) -> None:
    """The artifact's row, and (path None) its bytes as chunks, in the caller's transaction."""
    conn.execute(
        insert(Artifact.__table__).values(
            experiment_id=eid, kind=kind, path=path, bytes=len(payload), created_at=at
        )
    )
    if path is None:
        view = memoryview(payload)
        for seq, start in enumerate(range(0, len(payload), CHUNK_BYTES)):
            piece = bytes(view[start : start + CHUNK_BYTES])  # one piece in flight at a time
            conn.execute(
                insert(ArtifactChunk.__table__).values(
                    experiment_id=eid, kind=kind, seq=seq, data=piece
                )
            )


def _chunks(conn: Connection, eid: str, kind: str) -> Iterator[bytes]:
    """The pieces of an artifact in order, in this transaction. With psycopg they come in
    PostgreSQL's binary format: the default (hex text, twice the bytes) made reading a default
    result 5 to 8 times slower."""
    if conn.dialect.driver == "psycopg":
        sql = f"SELECT data FROM {ArtifactChunk.__tablename__} WHERE experiment_id = %s "
        sql += "AND kind = %s ORDER BY seq"
        with conn.connection.driver_connection.cursor(binary=True) as cur:
            cur.execute(sql, (eid, kind))
            for (data,) in cur:
                yield data
        return
    q = select(ArtifactChunk.data).where(
        ArtifactChunk.experiment_id == eid, ArtifactChunk.kind == kind
    )
    for (data,) in conn.execute(q.order_by(ArtifactChunk.seq)):
        yield data


def read(conn: Connection, eid: str, kind: str) -> dict[str, np.ndarray] | None:
    """The arrays of an artifact (from its chunks or its file), or None when there is none."""
    row = conn.execute(
        select(Artifact.path, Artifact.bytes).where(
            Artifact.experiment_id == eid, Artifact.kind == kind
        )
    ).one_or_none()
    if row is None:
        return None
    if row.path is not None:
        return load(row.path)
    buf = bytearray()
    for data in _chunks(conn, eid, kind):
        buf += data
    if len(buf) != row.bytes:
        raise OSError(f"artifact {kind} of {eid}: {len(buf)} bytes stored, {row.bytes} expected")
    return decode(buf)
