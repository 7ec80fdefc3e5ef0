"""The shipped examples (assets/examples/, built by app/make_example.py): one real run per preset
the Learn page teaches with, read back as the pages use them. No Streamlit here (store.shipped
caches them per server).

Each example: NAME.json (the run's RESULT.json), and for best-of-n NAME.npz (the score matrix,
float16 scores) and NAME.grid.npz (UWO over all members at every lambda of the slider, computed at
full precision when the example was built). Shape letters: L lambdas, J values of n.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.tables import as_float

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
GRID_FIELDS = (
    "kl_exact",
    "gold",
    "proxy",
    "proxy_mean",
    "gold_se",
    "shared_error",
    "member_sd",
    "shared_share",
)


@dataclass
class Example:
    name: str
    result: dict
    arrays: dict | None = None  # the score matrix (float64 in memory), best-of-n only
    uwo: dict[float, dict] = field(default_factory=dict)  # lambda -> UWO curve over all members

    def curve(self, objective: str, member: int | None = None) -> dict | None:
        """The stored curve of an objective (for "single", of one member)."""
        for c in self.result.get("curves") or []:
            if c["objective"] == objective and (member is None or c.get("member") == member):
                return c
        return None

    def singles(self) -> list[dict]:
        return [c for c in self.result.get("curves") or [] if c["objective"] == "single"]

    def uwo_at(self, lam: float) -> dict | None:
        """UWO at lambda: from the grid (the slider's values), else the stored curve if its
        lambda is this one, else None (the caller recomputes)."""
        got = self.uwo.get(round(float(lam), 9))
        if got is not None:
            return got
        stored = self.curve("uwo")
        if stored is not None and abs(float(stored.get("lambda", -1)) - lam) < 1e-9:
            return stored
        return None


def grid_curves(grid: dict[str, np.ndarray]) -> dict[float, dict]:
    """NAME.grid.npz's arrays as curves, the layout backend.best_of_n.bon_curve writes (with
    kl from the formula and Gao et al.'s best-of-n fit)."""
    from backend.best_of_n import bon_kl
    from backend.fits import fit_curve
    from backend.objectives import Objective

    ns = [int(n) for n in grid["n"]]
    kls = bon_kl(ns)
    out = {}
    for i, lam in enumerate(grid["lam"]):
        obj = Objective("uwo", lam=float(lam))
        points = []
        for j, (n, kl) in enumerate(zip(ns, kls, strict=True)):
            point = {"n": n, "kl": float(kl)}
            point.update({f: float(grid[f][i, j]) for f in GRID_FIELDS if f in grid})
            points.append(point)
        curve = {"method": "bon", **obj.to_dict(), "label": obj.label, "points": points}
        curve["fit"] = fit_curve(curve)
        out[round(float(lam), 9)] = curve
    return out


def load(name: str, root: Path = EXAMPLES) -> Example | None:
    """The shipped example NAME, or None when its result file is missing."""
    path = root / f"{name}.json"
    if not path.exists():
        return None
    ex = Example(name, json.loads(path.read_text()))
    arrays_path, grid_path = root / f"{name}.npz", root / f"{name}.grid.npz"
    if arrays_path.exists():
        with np.load(arrays_path, allow_pickle=False) as z:
            ex.arrays = as_float({k: z[k] for k in z.files})
    if grid_path.exists():
        with np.load(grid_path, allow_pickle=False) as z:
            ex.uwo = grid_curves({k: z[k] for k in z.files})
    return ex
