"""Rebuild the example the Learn page shows at once: `python -m app.make_example [options]`.

Runs `python -m backend run --preset toy-bon --seed 0 [options]` with a fresh cache, writes its
RESULT.json to assets/examples/toy-bon.json and its arrays to assets/examples/toy-bon.npz, made
compact without changing a value the app uses (float32 scores, uint8 token ids). Extra options go
to the CLI (e.g. --num-prompts 16 when the preset's matrix would not fit in BUDGET_MB).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "assets" / "examples"
COMMAND = ["run", "--preset", "toy-bon", "--seed", "0", "--no-cache"]
BUDGET_MB = 2.0  # assets/examples/ stays small: it is in the repository


def compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(arrays)
    out["gold"] = arrays["gold"].astype(np.float32)
    out["proxy"] = arrays["proxy"].astype(np.float32)
    if len(arrays["vocab"]) <= 256:
        out["answers"] = arrays["answers"].astype(np.uint8)
    return out


def main(extra: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "scores.npz"
        env = {**os.environ, "GOODHART_DATA_DIR": tmp}
        cmd = [sys.executable, "-m", "backend", *COMMAND, "--out", str(OUT / "toy-bon.json")]
        subprocess.run([*cmd, "--scores", str(scores), *extra], cwd=REPO, env=env, check=True)
        with np.load(scores) as z:
            arrays = compact({k: z[k] for k in z.files})
    np.savez_compressed(OUT / "toy-bon.npz", **arrays)
    total = 0.0
    for name in ("toy-bon.json", "toy-bon.npz"):
        size = (OUT / name).stat().st_size / 1e6
        total += size
        print(f"wrote {OUT / name} ({size:.2f} MB)")
    if total > BUDGET_MB:
        print(f"over the {BUDGET_MB} MB budget: try --num-prompts 16", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
