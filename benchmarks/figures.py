"""One measured quantity as a plain dict, so that benchmarks/run.py can put every script's numbers
in one table (and one JSON document).

A figure keeps its raw values (one per repeat) and their median, min and max; a target, when it
has one, is an upper bound on the median (every target of issue 7 is "at most").
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def figure(
    key: str,
    what: str,
    values: float | Iterable[float],
    unit: str = "s",
    target: float | None = None,
    note: str = "",
) -> dict:
    """A figure from one value or one value per repeat. `pass` is None when there is no target.

    >>> f = figure("db.store_s", "store a result", [0.3, 0.1, 0.2], target=0.25)
    >>> f["median"], f["min"], f["max"], f["pass"]
    (0.2, 0.1, 0.3, True)
    """
    vals = [float(values)] if isinstance(values, int | float) else [float(v) for v in values]
    if not vals:
        raise ValueError(f"{key}: no values")
    med = statistics.median(vals)
    return {
        "key": key,
        "what": what,
        "unit": unit,
        "values": vals,
        "median": med,
        "min": min(vals),
        "max": max(vals),
        "target": target,
        "pass": None if target is None else med <= target,
        "note": note,
    }


def format_value(x: float, unit: str) -> str:
    """3 significant figures, small numbers in full: 0.00712 s, 49.1 s, 1234 MB."""
    if unit == "x" or abs(x) >= 100:
        return f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}"
    return f"{x:.3g}"


def table(figures: list[dict]) -> str:
    """What, median, min, max, target, pass/fail: one line per figure, aligned."""
    rows = [("what", "median", "min", "max", "target", "")]
    for f in figures:
        u = f["unit"]
        target = "" if f["target"] is None else f"<= {format_value(f['target'], u)} {u}"
        verdict = {None: "", True: "pass", False: "FAIL"}[f["pass"]]
        rows.append(
            (
                f["what"],
                f"{format_value(f['median'], u)} {u}",
                format_value(f["min"], u),
                format_value(f["max"], u),
                target,
                verdict,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = []
    for j, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:5], widths[1:5])]
        lines.append("  ".join([*cells, r[5]]).rstrip())
        if j == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def markdown(figures: list[dict]) -> str:
    """The README's layout: | what | median (min, max) | target |."""
    lines = ["| what | median (min, max) | target |", "|---|---|---|"]
    for f in figures:
        u = f["unit"]
        spread = f"{format_value(f['median'], u)} {u} ({format_value(f['min'], u)}, "
        spread += f"{format_value(f['max'], u)})"
        target = "" if f["target"] is None else f"<= {format_value(f['target'], u)} {u}"
        lines.append(f"| {f['what'].strip()} | {spread} | {target} |")
    return "\n".join(lines)
