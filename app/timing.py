"""How long a run has taken and has left, in words, from its stored times and progress (the
Result page's running view and the Runs table). Progress is roughly the fraction of the run's
estimated time (backend/estimate.py ProgressScale), so elapsed / progress estimates the whole."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.estimate import duration_text, time_left

TIME_HELP = "how long it took; while running, elapsed and about how long is left"


def _seconds_between(start: str | None, end: str | None = None) -> float | None:
    if not start:
        return None
    t0 = datetime.fromisoformat(start)
    t1 = datetime.fromisoformat(end) if end else datetime.now(UTC)
    return max(0.0, (t1 - t0).total_seconds())


def elapsed_s(exp: dict) -> float | None:
    """Seconds since a running run started; a finished run's duration; None before it starts."""
    if exp["status"] == "queued":
        return None
    return _seconds_between(exp.get("started_at"), exp.get("finished_at"))


def left_s(exp: dict) -> float | None:
    """Estimated seconds left of a running run (None when too early to tell or not running)."""
    if exp["status"] != "running":
        return None
    elapsed = elapsed_s(exp)
    return None if elapsed is None else time_left(elapsed, float(exp["progress"] or 0.0))


def time_text(exp: dict) -> str:
    """ "1 min 20 s, about 2 min 35 s left" (running), "3 min 02 s" (finished), "waiting 40 s"
    (queued)."""
    if exp["status"] == "queued":
        waited = _seconds_between(exp.get("created_at"))
        return f"waiting {duration_text(waited)}" if waited is not None else "waiting"
    elapsed = elapsed_s(exp)
    text = duration_text(elapsed)
    if exp["status"] == "running":
        left = left_s(exp)
        text += f", about {duration_text(left)} left" if left is not None else ", estimating…"
    return text
