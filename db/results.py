"""RESULT.json to rows and back. `load_result(conn, ...)` gives back what `store_result` got.

Top-level keys that are columns (config, summary, timings, versions) or rows (curves,
reward_models, samples) are kept as null placeholders in experiments.result_meta, which keeps
every other key and the key order; known keys of curves, points, members and samples are columns,
unknown ones go to the row's `extra`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, select

from db.models import Curve, CurvePoint, RewardModel, Sample

COLUMN_KEYS = ("config", "summary", "timings", "versions")
ROW_KEYS = ("curves", "reward_models", "samples")
CURVE_KEYS = ("method", "objective", "member", "lambda", "label", "points")
POINT_X = ("n", "step")
POINT_KEYS = (*POINT_X, "kl", "gold", "proxy", "proxy_mean", "gold_se")
MEMBER_KEYS = ("member", "heldout_acc_gold", "train_loss", "standardization")
SAMPLE_KEYS = ("step", "prompt", "answer", "gold", "proxy")


def plain(x: Any) -> Any:
    """JSON-ready copy: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray | np.generic):
        return x.tolist()
    return x


def _extra(d: dict, known: tuple[str, ...]) -> dict | None:
    return {k: v for k, v in d.items() if k not in known} or None


def split_result(result: dict) -> tuple[dict, dict]:
    """(column values for the experiment row, result_meta)."""
    columns = {k: result.get(k) for k in COLUMN_KEYS}
    meta = {k: (None if k in COLUMN_KEYS or k in ROW_KEYS else v) for k, v in result.items()}
    return columns, meta


def store_rows(conn: Connection, eid: str, result: dict) -> None:
    """Insert the curves, their points, the members and the samples of one result."""
    curves, points = [], []
    for c, curve in enumerate(result.get("curves", [])):
        curves.append(
            {
                "experiment_id": eid,
                "position": c,
                "method": curve["method"],
                "objective": curve["objective"],
                "member": curve.get("member"),
                "lam": curve.get("lambda"),
                "label": curve["label"],
                "extra": _extra(curve, CURVE_KEYS),
            }
        )
        for i, p in enumerate(curve["points"]):
            row = {k: p.get(k) for k in POINT_KEYS}
            points.append(
                {
                    "experiment_id": eid,
                    "curve": c,
                    "position": i,
                    **row,
                    "extra": _extra(p, POINT_KEYS),
                }
            )
    members = [
        {
            "experiment_id": eid,
            "member": m["member"],
            "heldout_acc_gold": m.get("heldout_acc_gold"),
            "train_loss": m.get("train_loss"),
            "standardization": m.get("standardization"),
            "extra": _extra(m, MEMBER_KEYS),
        }
        for m in result.get("reward_models", [])
    ]
    samples = [
        {
            "experiment_id": eid,
            "position": i,
            **{k: s.get(k) for k in SAMPLE_KEYS},
            "extra": _extra(s, SAMPLE_KEYS),
        }
        for i, s in enumerate(result.get("samples", []))
    ]
    for model, rows in (
        (Curve, curves),
        (CurvePoint, points),
        (RewardModel, members),
        (Sample, samples),
    ):
        if rows:
            conn.execute(insert(model.__table__), rows)


def _point(r) -> dict:
    p = {k: getattr(r, k) for k in POINT_X if getattr(r, k) is not None}
    p.update(kl=r.kl, gold=r.gold, proxy=r.proxy, proxy_mean=r.proxy_mean)
    if r.gold_se is not None:
        p["gold_se"] = r.gold_se
    return {**p, **(r.extra or {})}


def _curves(conn: Connection, eid: str) -> list[dict]:
    pts: dict[int, list[dict]] = {}
    q = select(CurvePoint.__table__).where(CurvePoint.experiment_id == eid)
    for r in conn.execute(q.order_by(CurvePoint.curve, CurvePoint.position)):
        pts.setdefault(r.curve, []).append(_point(r))
    out = []
    q = select(Curve.__table__).where(Curve.experiment_id == eid).order_by(Curve.position)
    for r in conn.execute(q):
        c = {"method": r.method, "objective": r.objective}
        if r.member is not None:
            c["member"] = r.member
        if r.lam is not None:
            c["lambda"] = r.lam
        c.update(label=r.label, points=pts.get(r.position, []))
        out.append({**c, **(r.extra or {})})
    return out


def _members(conn: Connection, eid: str) -> list[dict]:
    q = select(RewardModel.__table__).where(RewardModel.experiment_id == eid)
    out = []
    for r in conn.execute(q.order_by(RewardModel.member)):
        m = {k: getattr(r, k) for k in MEMBER_KEYS if getattr(r, k) is not None}
        out.append({**m, **(r.extra or {})})
    return out


def _samples(conn: Connection, eid: str) -> list[dict]:
    q = select(Sample.__table__).where(Sample.experiment_id == eid).order_by(Sample.position)
    out = []
    for r in conn.execute(q):
        s = {k: getattr(r, k) for k in SAMPLE_KEYS if getattr(r, k) is not None}
        out.append({**s, **(r.extra or {})})
    return out


def load_result(conn: Connection, eid: str, row) -> dict:
    """The RESULT.json layout of a finished experiment, from its row and its child rows."""
    loaders = {"curves": _curves, "reward_models": _members, "samples": _samples}
    out = {}
    for k, v in (row.result_meta or {}).items():
        if k in COLUMN_KEYS:
            out[k] = getattr(row, k)
        elif k in loaders:
            out[k] = loaders[k](conn, eid)
        else:
            out[k] = v
    return out
