"""A result's curves as one CSV: one row per curve point (long format). The CLI's
`export --format csv` and the app's "CSV (curves)" download write this same file.

Columns: the curve's label, method, objective, member and lambda; the point's n (best-of-n) or
step (PPO), kl, sqrt_kl (= sqrt(max(kl, 0)), the axis of Gao et al.'s forms), gold, proxy,
proxy_mean and gold_se; then any other number a point carries, in the order first seen.
"""

from __future__ import annotations

import csv
import io
import math

CURVE_COLUMNS = ("label", "method", "objective", "member", "lambda")
POINT_COLUMNS = ("n", "step", "kl", "sqrt_kl", "gold", "proxy", "proxy_mean", "gold_se")


def curve_rows(curves: list[dict]) -> tuple[list[str], list[dict]]:
    """(columns, rows) of every point of every curve."""
    columns = [*CURVE_COLUMNS, *POINT_COLUMNS]
    rows = []
    for c in curves:
        head = {k: c.get(k) for k in CURVE_COLUMNS}
        for p in c["points"]:
            row = {**head, "sqrt_kl": math.sqrt(max(p["kl"], 0.0))}
            for k, v in p.items():
                if isinstance(v, bool) or not isinstance(v, int | float):
                    continue
                if k not in columns:
                    columns.append(k)
                row[k] = v
            rows.append(row)
    return columns, rows


def curves_csv(curves: list[dict]) -> str:
    """The CSV text (header, then one line per point; empty cells where a value is absent)."""
    columns, rows = curve_rows(curves)
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
