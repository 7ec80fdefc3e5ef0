"""The tables. One experiment row per run; its curves, curve points, reward-model members,
sampled answers and artifact files are rows keyed by (experiment id, position), deleted with it.

What lives where in a stored RESULT.json:
  experiments.config / summary / timings / versions    those keys, as JSON
  experiments.result_meta                              every other top-level key (normalization,
                                                       world, device, cache_hits, ...) in order,
                                                       with null where a key is stored as rows
  curves, curve_points                                 result["curves"]
  reward_models                                        result["reward_models"]
  samples                                              result["samples"] (PPO)
  artifacts, artifact_chunks                           the arrays (best-of-n score matrix) as
                                                       one .npz: in the database in chunks, or a
                                                       file under the data folder (db/artifacts.py)
  workers                                              the workers that are up, and what they run
Keys a future engine adds to a curve, point, member or sample land in that row's `extra` JSON, so
nothing is lost before a migration gives them a column.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


def _experiment_fk() -> Mapped[str]:
    return mapped_column(
        String(16), ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200))  # "host:pid" of the running worker
    progress: Mapped[float] = mapped_column(Double, default=0.0)  # 0..1
    stage: Mapped[str | None] = mapped_column(String(200))  # what the run is doing (or did last)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any] | None]
    timings: Mapped[dict[str, Any] | None]
    versions: Mapped[dict[str, Any] | None]
    result_meta: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class Curve(Base):
    """One objective's curve: gold and proxy against n (best-of-n) or step (PPO)."""

    __tablename__ = "curves"

    experiment_id: Mapped[str] = _experiment_fk()
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    method: Mapped[str] = mapped_column(String(16))
    objective: Mapped[str] = mapped_column(String(16))
    member: Mapped[int | None]
    lam: Mapped[float | None] = mapped_column(Double)  # the curve's "lambda" (UWO)
    label: Mapped[str] = mapped_column(String(100))
    extra: Mapped[dict[str, Any] | None]  # fit, members, ... (any other key of the curve)


class CurvePoint(Base):
    __tablename__ = "curve_points"
    __table_args__ = (
        ForeignKeyConstraint(
            ["experiment_id", "curve"],
            ["curves.experiment_id", "curves.position"],
            ondelete="CASCADE",
            name="fk_curve_points_curve",
        ),
    )

    experiment_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    curve: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int | None]
    step: Mapped[int | None]
    kl: Mapped[float | None]
    gold: Mapped[float | None]
    proxy: Mapped[float | None]
    proxy_mean: Mapped[float | None]
    gold_se: Mapped[float | None]
    extra: Mapped[dict[str, Any] | None]


class RewardModel(Base):
    """One proxy of the ensemble: held-out accuracy against gold, standardization, losses."""

    __tablename__ = "reward_models"

    experiment_id: Mapped[str] = _experiment_fk()
    member: Mapped[int] = mapped_column(Integer, primary_key=True)
    heldout_acc_gold: Mapped[float | None]
    standardization: Mapped[dict[str, Any] | None]  # {mean, std}
    train_loss: Mapped[list[Any] | None]  # one per epoch
    extra: Mapped[dict[str, Any] | None]


class Sample(Base):
    """One sampled answer logged during a run (PPO), with its gold and proxy scores."""

    __tablename__ = "samples"

    experiment_id: Mapped[str] = _experiment_fk()
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[int | None]
    prompt: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    gold: Mapped[float | None]
    proxy: Mapped[float | None]
    extra: Mapped[dict[str, Any] | None]


class Artifact(Base):
    """An experiment's arrays (kind "bon_scores"), one .npz: in artifact_chunks (path None), or a
    file under the data folder (path relative to it; see db/artifacts.py for which)."""

    __tablename__ = "artifacts"

    experiment_id: Mapped[str] = _experiment_fk()
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str | None] = mapped_column(String(500))  # None: in artifact_chunks
    bytes: Mapped[int]
    created_at: Mapped[datetime]


class ArtifactChunk(Base):
    """One piece of an artifact stored in the database, in order of seq (db/artifacts.py says
    why pieces)."""

    __tablename__ = "artifact_chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["experiment_id", "kind"],
            ["artifacts.experiment_id", "artifacts.kind"],
            ondelete="CASCADE",
            name="fk_artifact_chunks_artifact",
        ),
    )

    experiment_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class WorkerRow(Base):
    """A worker that is up: what it runs and what it runs now. Written when it starts, at each
    heartbeat, deleted when it stops; a row whose heartbeat is old belongs to a dead worker (the
    sweep deletes it). The run page reads it to say what a queued run waits for."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # "host:pid"
    devices: Mapped[str] = mapped_column(String(50))  # the lanes it serves, e.g. "cuda cpu"
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    current: Mapped[str | None] = mapped_column(String(16))  # the experiment it runs now
