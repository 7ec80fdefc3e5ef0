"""What the pages read: db.api (cached where a stored result cannot change), the shipped example,
share links and the ids in query parameters. The only module of app/ that calls db/."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import streamlit as st

from app import access
from app.nav import PAGES
from app.tables import as_float

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLE_NAME = "toy-bon"
DEFAULT_ROOT = "http://localhost:8501"
ACTIVE = ("queued", "running")
AHEAD = 2  # a λ knob's steps each way computed ahead (curves_around)
AHEAD_DELAY_S = 1.0  # background curve work starts after the page is drawn
log = logging.getLogger("goodhart.app")


# ---- experiments -------------------------------------------------------------------------------


def get_experiment(eid: str) -> dict | None:
    from db import api

    return api.get_experiment(eid)


def list_experiments(limit: int = 200) -> list[dict]:
    from db import api

    return api.list_experiments(limit=limit)


def submit(cfg, name: str | None = None) -> str:
    """Queue a config (PermissionError on a read-only server; on a shared one the hf world's
    files must lie under the allowed folders)."""
    from db import api

    access.require_change("submitting")
    return api.submit(cfg, name=name or None, allowed_dirs=access.allowed_dirs())


def waiting_for(eid: str) -> str | None:
    """What a queued run waits for (a worker, a GPU worker) and whether one is up; else None."""
    from db import api

    return api.waiting_for(eid)


def cancel(eid: str) -> bool:
    from db import api

    access.require_change("cancelling")
    return api.cancel(eid)


def delete(eid: str) -> bool:
    from db import api

    access.require_change("deleting")
    gone = api.delete(eid)
    arrays_of.clear()
    return gone


def is_valid_id(text: str) -> bool:
    from db import api

    return api.is_valid_id(text)


@st.cache_resource(max_entries=4, show_spinner=False)
def arrays_of(eid: str) -> dict[str, np.ndarray] | None:
    """The stored score matrix of a finished run, shared read-only by every session (a default
    best-of-n run is ~35 MB, so five viewers hold one copy, not five)."""
    from db import api

    try:
        arrays = api.load_arrays(eid)
    except FileNotFoundError:
        return None
    return as_float(arrays) if arrays else None


def score_matrix(eid: str, result: dict) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """(the stored score matrix, None), or (None, what is wrong with it) when it is missing,
    unreadable or not the layout of this result. Never raises: the page then shows the stored
    curves and says what is missing."""
    try:
        arrays = arrays_of(eid)
    except Exception:
        log.exception("the score matrix of %s cannot be read", eid)
        return None, "cannot be read (its file is corrupt or cut short)"
    if arrays is None:
        return None, "is missing (its file is not in the data folder)"
    problem = _layout_problem(arrays, len(result.get("reward_models") or []))
    if problem:
        log.warning("the score matrix of %s is not usable: %s", eid, problem)
        return None, f"is not usable ({problem})"
    return arrays, None


def _layout_problem(arrays: dict, members: int) -> str | None:
    """What does not match the arrays layout (docs/contracts.md): gold (P,N), proxy (P,N,K),
    answers (P,N,T), prompt_idx and prompts (P,), and a vocab."""
    need = ("gold", "proxy", "answers", "prompt_idx", "prompts", "vocab")
    missing = [k for k in need if k not in arrays]
    if missing:
        return "no " + ", ".join(missing)
    gold, proxy, answers = arrays["gold"], arrays["proxy"], arrays["answers"]
    if gold.ndim != 2 or proxy.shape[:2] != gold.shape or proxy.ndim != 3:
        return f"gold {gold.shape} and proxy {proxy.shape} do not match"
    if answers.ndim != 3 or answers.shape[:2] != gold.shape:
        return f"answers {answers.shape} do not match gold {gold.shape}"
    P = gold.shape[0]
    if arrays["prompt_idx"].shape != (P,) or arrays["prompts"].shape != (P,):
        return "prompts do not match gold"
    if members and proxy.shape[2] != members:
        return f"{proxy.shape[2]} members, the result has {members}"
    return None


def _bon_curve(objective: str, lam: float | None, members: tuple[int, ...], arrays) -> dict:
    from backend.best_of_n import bon_curves
    from backend.objectives import Objective

    K = arrays["proxy"].shape[-1]
    subset = None if members == tuple(range(K)) else list(members)
    return bon_curves(arrays["gold"], arrays["proxy"], [Objective(objective, lam=lam)], subset)[0]


class CurveCache:
    """Recomputed best-of-n curves by (run, objective, lambda, members), shared by every session
    of the server. `ahead` computes curves in one background thread before they are asked for
    (every lambda of the slider, nearest first), so moving the slider does not wait for them."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._curves: OrderedDict[tuple, dict] = OrderedDict()
        self._busy: set[tuple] = set()
        self._lock = threading.Condition()
        self._asked = 0  # curves a page is waiting for right now: background work pauses

    def get(self, key: tuple, arrays: dict, asked: bool = True) -> dict:
        with self._lock:
            if key in self._curves:
                self._curves.move_to_end(key)
                return self._curves[key]
            self._asked += asked
        try:
            curve = _bon_curve(*key[1:], arrays)
        finally:
            with self._lock:
                self._asked -= asked
                self._lock.notify_all()
        with self._lock:
            self._curves[key] = curve
            while len(self._curves) > self.size:
                self._curves.popitem(last=False)
        return curve

    def peek(self, key: tuple) -> dict | None:
        """The curve if it is computed already, else None (nothing is computed)."""
        with self._lock:
            return self._curves.get(key)

    def put(self, key: tuple, curve: dict) -> None:
        """Store a curve computed elsewhere (a shipped example's precomputed lambda grid)."""
        with self._lock:
            self._curves[key] = curve
            while len(self._curves) > self.size:
                self._curves.popitem(last=False)

    def ahead(self, keys: list[tuple], arrays: dict, delay_s: float = 0.0) -> None:
        """Compute keys in this order in a background thread, after delay_s (the page that
        asked is sent first)."""
        with self._lock:
            todo = [k for k in keys if k not in self._curves and k not in self._busy]
            self._busy.update(todo)
        if not todo:
            return

        def work() -> None:
            time.sleep(delay_s)
            for k in todo:
                try:
                    with self._lock:
                        self._lock.wait_for(lambda: self._asked == 0)
                    self.get(k, arrays, asked=False)
                finally:
                    with self._lock:
                        self._busy.discard(k)

        threading.Thread(target=work, name="curves-ahead", daemon=True).start()


@st.cache_resource(show_spinner=False)
def curve_cache() -> CurveCache:
    return CurveCache()


def bon_curves_for(
    key: str, lam: float, members: tuple[int, ...], stored: list[dict], arrays: dict
) -> list[dict]:
    """The curves of a best-of-n run with UWO at lam and the ensemble over `members`. A lambda
    change recomputes UWO only, and going back to a lambda is free. Single members depend on
    neither: their stored curves stay."""
    cache = curve_cache()
    singles = [c for c in stored if c["objective"] == "single" and c.get("member") in members]
    every = members == tuple(range(arrays["proxy"].shape[-1]))
    kept = {c["objective"]: c for c in stored if every and c["objective"] in ("mean", "wco")}
    ensemble = [kept.get(o) or cache.get((key, o, None, members), arrays) for o in ("mean", "wco")]
    uwo = cache.get((key, "uwo", round(float(lam), 9), members), arrays)
    return [*singles, *ensemble, uwo]


def curves_ahead(key: str, lams: list[float], members: tuple[int, ...], arrays) -> None:
    """Compute UWO at these lambdas (in this order) in the background: the slider's values.
    About 0.1 s of one core each for a default run, once per run and member subset."""
    keys = [(key, "uwo", round(float(a), 9), members) for a in lams]
    curve_cache().ahead(keys, arrays, delay_s=AHEAD_DELAY_S)


def curves_now(key: str, lams: list[float], members: tuple[int, ...], arrays) -> None:
    """Compute UWO at these lambdas now (the λ knob's next steps, so the browser has them)."""
    for a in lams:
        curve_cache().get((key, "uwo", round(float(a), 9), members), arrays)


def curves_around(key: str, grid: list, lam: float, members: tuple, arrays, moved: bool) -> None:
    """A λ knob's neighbours on `grid`: the next step each way now when the knob has moved (so
    the browser gets their frames), AHEAD more each way in the background."""
    near = sorted(grid, key=lambda a: abs(a - lam))[1 : 2 * AHEAD + 1]
    if moved:
        curves_now(key, near[:2], members, arrays)
    curves_ahead(key, near, members, arrays)


def cached_curve(key: str, objective: str, lam: float, members: tuple[int, ...]) -> dict | None:
    """A recomputed curve of run `key` if the server has it, else None."""
    return curve_cache().peek((key, objective, round(float(lam), 9), members))


# ---- reproductions (backend/reproduce/, db/reproduce.py) ---------------------------------------


def latest_reproduction() -> dict | None:
    """The newest reproduction's manifest (made by the CLI or by this app), or None."""
    from db.reproduce import latest_manifest

    return latest_manifest()


def start_reproduction(seeds: int, size: str) -> dict:
    """Queue the suite's experiments (finished ones with the same config are reused) and record
    the new reproduction. Returns its manifest."""
    from db.reproduce import start

    access.require_change("starting a reproduction")
    return start(seeds, size, source="app")


def reproduction_status(runs: dict[str, str]) -> dict[str, dict]:
    from db.reproduce import status

    return status(runs)


def reproduction_report(manifest: dict) -> dict:
    """{analysis, claims} of a reproduction whose runs are done (computed once, then read)."""
    from db.reproduce import report_of

    return report_of(manifest, app_root())


# ---- the shipped example -----------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def example() -> tuple[dict | None, dict | None]:
    """(result, arrays) of the real run shipped in assets/examples/ (arrays may be None)."""
    path = EXAMPLES / f"{EXAMPLE_NAME}.json"
    if not path.exists():
        return None, None
    result = json.loads(path.read_text())
    arrays_path = EXAMPLES / f"{EXAMPLE_NAME}.npz"
    arrays = None
    if arrays_path.exists():
        with np.load(arrays_path, allow_pickle=False) as z:
            arrays = as_float({k: z[k] for k in z.files})
    return result, arrays


# ---- links and query parameters ----------------------------------------------------------------


def app_root() -> str:
    """The app's root address as the browser sees it (page path and query removed)."""
    url = st.context.url  # None outside a browser session (AppTest)
    if not url:
        return DEFAULT_ROOT
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    for spec in PAGES.values():
        if path.endswith("/" + spec.url_path):
            path = path[: -len(spec.url_path) - 1]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")).rstrip("/")


def share_link(eid: str) -> str:
    """A run's link in the app's tables: its Result page's own address (the short root form,
    /?run=ID, opens it too, one page switch later)."""
    return f"{app_root()}/{PAGES['result'].url_path}?run={eid}"


def compare_link(ids: list[str]) -> str:
    return f"{app_root()}/{PAGES['compare'].url_path}?compare={','.join(ids)}"


def parse_ids(text: str | None) -> tuple[list[str], list[str]]:
    """(well-formed ids in order without repeats, malformed pieces) of "ID1,ID2,..."."""
    good, bad = [], []
    for piece in (text or "").replace(" ", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        if is_valid_id(piece):
            if piece not in good:
                good.append(piece)
        else:
            bad.append(piece)
    return good, bad


# ---- the Learn page's shipped examples (app/examples.py) ---------------------------------------


@st.cache_resource(show_spinner=False)
def shipped(name: str):
    """The shipped example NAME (app.examples.Example), or None; its precomputed UWO curves are
    put in the curve cache under the key `example_key(name)`, so the lambda slider of a page
    showing it finds every slider value computed."""
    from app.examples import load

    ex = load(name)
    if ex is not None and ex.arrays is not None:
        K = ex.arrays["proxy"].shape[-1]
        cache = curve_cache()
        for lam, curve in ex.uwo.items():
            cache.put((example_key(name), "uwo", lam, tuple(range(K))), curve)
    return ex


def example_key(name: str) -> str:
    """The curve cache's key of a shipped example (a run's key is its page key)."""
    return f"example_{name}"


# ---- the shipped reproduction report, cancelling a suite -----------------------------


def shipped_reproduction() -> dict | None:
    """The full suite's claims as shipped in docs/reproduction/ (with its date and config)."""
    from db.reproduce import shipped_report

    return shipped_report()


def cancel_reproduction(manifest: dict) -> int:
    """Cancel a reproduction's queued and running experiments; finished ones are kept."""
    from db.reproduce import cancel

    access.require_change("cancelling a reproduction")
    return cancel(manifest)


# ---- the form's cost estimate ------------------------------------------------------------------


@st.cache_data(ttl=5, show_spinner=False, max_entries=64)
def _estimate(config: str) -> list:
    from backend.config import ExperimentConfig
    from backend.experiment import plan_run  # torch: only once the form has a config

    return plan_run(ExperimentConfig.from_dict(json.loads(config)))


@st.cache_data(ttl=30, show_spinner=False)
def machine_pace() -> float | None:
    """How much slower (> 1) this machine's recent runs went than the estimate's fixed rates
    (backend.estimate.pace over db.api.recent_timings), or None before any such run."""
    from backend.estimate import pace
    from db import api

    return pace(api.recent_timings())


def estimate(cfg) -> list:
    """What `cfg` reuses from the cache and what it must compute, with rough seconds per stage
    (backend.estimate.StageCost; nothing is trained), at this machine's recent pace. Cached a
    few seconds: the form reruns on every change, and the cache changes only as runs finish."""
    from backend.estimate import paced

    return paced(_estimate(json.dumps(cfg.to_dict(), sort_keys=True)), machine_pace())
