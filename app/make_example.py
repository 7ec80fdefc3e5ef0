"""Rebuild the examples the Learn page shows at once: `python -m app.make_example [PRESET ...]`.

For each preset (default: every one in NAMES) runs `python -m backend run --preset P --seed 0`
in one fresh temporary data folder (so toy-ppo and toy-dpo reuse toy-bon's pairs and proxies, as
they do in a real cache: the numbers are those of a cold run), and writes to assets/examples/:
  P.json       its RESULT.json, unchanged;
  P.npz        best-of-n only (PPO's and DPO's final samples are not shipped): the score
               matrix made compact (float16 scores, uint8 token ids;
               the curves the pages draw come from the result and the grid, which are computed
               at full precision; the answer explorer and member subsets read the float16 copy);
  P.grid.npz   best-of-n only: UWO over all members at every lambda of the slider (LAMBDAS),
               computed from the full-precision matrix, so the lambda knob redraws without
               any computing (app/examples.py reads it back into curves).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from app.examples import GRID_FIELDS  # what the page reads back: one list

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "assets" / "examples"
NAMES = ("toy-bon", "toy-bon-clean", "toy-bon-shared", "toy-bon-pretrain", "toy-ppo", "toy-dpo")
SEED = "0"
LAMBDA_STEP = 0.05
LAMBDA_MAX = 5.0
BUDGET_MB = 8.0  # assets/examples/ stays small: it is in the repository


def lambdas() -> np.ndarray:
    """The lambda slider's values: 0, 0.05, ..., 5 (rounded, so they are exact keys)."""
    count = round(LAMBDA_MAX / LAMBDA_STEP) + 1
    return np.round(np.arange(count) * LAMBDA_STEP, 9)


def compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(arrays)
    out["gold"] = arrays["gold"].astype(np.float16)
    out["proxy"] = arrays["proxy"].astype(np.float16)
    if len(arrays["vocab"]) <= 256:
        out["answers"] = arrays["answers"].astype(np.uint8)
    return out


def uwo_grid(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """UWO's curve over all members at each lambda of lambdas(): field -> (L, J) arrays."""
    from backend.best_of_n import answer_columns, bon_curve, bon_ns
    from backend.objectives import Objective

    gold = arrays["gold"].astype(np.float64)
    proxy = arrays["proxy"].astype(np.float64)
    ns = bon_ns(gold.shape[1])
    columns = answer_columns(gold, proxy)
    lams = lambdas()
    out = {"lam": lams, "n": np.array(ns)}
    rows = {f: [] for f in GRID_FIELDS}
    for lam in lams:
        curve = bon_curve(gold, proxy, Objective("uwo", lam=float(lam)), ns, None, columns)
        for f in GRID_FIELDS:
            rows[f].append([p[f] for p in curve["points"]])
    out.update({f: np.array(v, dtype=np.float64) for f, v in rows.items()})
    return out


def build(name: str, data_dir: str) -> list[Path]:
    json_path = OUT / f"{name}.json"
    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "scores.npz"
        env = {**os.environ, "GOODHART_DATA_DIR": data_dir}
        cmd = [sys.executable, "-m", "backend", "run", "--preset", name, "--seed", SEED]
        cmd += ["--out", str(json_path), "--scores", str(scores), "--quiet"]
        subprocess.run(cmd, cwd=REPO, env=env, check=True)
        with np.load(scores) as z:
            arrays = {k: z[k] for k in z.files}
    written = [json_path]
    method = json.loads(json_path.read_text())["config"]["method"]
    if method == "bon":  # PPO's and DPO's arrays (final samples) are not shipped: no page uses them
        np.savez_compressed(OUT / f"{name}.npz", **compact(arrays))
        np.savez_compressed(OUT / f"{name}.grid.npz", **uwo_grid(arrays))
        written += [OUT / f"{name}.npz", OUT / f"{name}.grid.npz"]
    return written


def main(names: list[str]) -> int:
    bad = [n for n in names if n not in NAMES]
    if bad:
        print(f"unknown example {bad}: choose from {', '.join(NAMES)}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        for name in names or NAMES:
            for path in build(name, data_dir):
                print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    total = sum(p.stat().st_size for p in OUT.iterdir()) / 1e6
    print(f"assets/examples/: {total:.2f} MB")
    if total > BUDGET_MB:
        print(f"over the {BUDGET_MB} MB budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
