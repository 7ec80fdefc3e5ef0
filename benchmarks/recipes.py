"""Which best-of-n recipe shows what: candidate configs over seeds, with the numbers of claim 3
(WCO and UWO lose at most 25% of their peak gain at n = N on average, while the average single
member loses at least 50%) and what the ensemble can see. The presets of backend/presets.py were
chosen with it (README, "Choosing the presets").

    .venv/bin/python -m benchmarks.recipes --seeds 0 1 2 \\
        --candidate "reward_models.epochs=4,reward_models.lr=3e-3" \\
        --candidate "preferences.label_noise=0,reward_models.epochs=4,reward_models.lr=3e-3"

Each candidate is the toy-bon preset with `dotted.field=value` changes. Runs share one artifact
cache (GOODHART_DATA_DIR, default a temporary folder), so candidates that differ only downstream
reuse the samples and proxies. Prints a markdown table: per candidate the seed means of
held-out accuracy, error correlation, the single average's, WCO's and UWO's peak gain and share of
it lost at n = N, WCO's shared share at n = N, cold seconds, and how many seeds satisfy claim 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.cache import ArtifactCache  # noqa: E402
from backend.config import ExperimentConfig  # noqa: E402
from backend.experiment import run_experiment  # noqa: E402
from backend.presets import get_preset  # noqa: E402
from backend.summary import SINGLE_AVG  # noqa: E402

CONSERVATIVE_MAX_LOSS = 0.25  # claim 3: WCO and UWO lose at most this share of their peak gain
SINGLE_MIN_LOSS = 0.5  # ... while the single-member average loses at least this share


def parse_changes(text: str, base: ExperimentConfig) -> dict:
    changes = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        dotted, raw = item.split("=", 1)
        obj = base
        for part in dotted.split("."):
            obj = getattr(obj, part)
        changes[dotted] = type(obj)(raw) if not isinstance(obj, bool) else raw == "true"
    return changes


def lost(stats: dict) -> float:
    """Share of the peak gain lost by n = N (0: none; 1: back to the start)."""
    gain = stats["gold_peak"] - stats["gold_start"]
    return (stats["gold_peak"] - stats["gold_final"]) / gain if gain > 0 else 0.0


def measure(cfg: ExperimentConfig, cache: ArtifactCache) -> dict:
    t0 = time.perf_counter()
    out = run_experiment(cfg, cache=cache)
    r = out.result
    s = r["summary"]
    uwo = next(k for k in s if k.startswith("uwo"))
    wco_curve = next(c for c in r["curves"] if c["objective"] == "wco")
    row = {
        "seconds": time.perf_counter() - t0,
        "acc": float(np.mean([m["heldout_acc_gold"] for m in r["reward_models"]])),
        "near_chance": sum(bool(m.get("near_chance")) for m in r["reward_models"]),
        "error_corr": r["ensemble"]["error_corr"],
        "wco_shared_share": wco_curve["points"][-1]["shared_share"],
    }
    for name, label in (("single", SINGLE_AVG), ("wco", "wco"), ("uwo", uwo), ("mean", "mean")):
        st = s[label]
        row[f"{name}_peak"] = st["gold_peak"]
        row[f"{name}_final"] = st["gold_final"]
        row[f"{name}_lost"] = lost(st)
    row["claim3"] = bool(
        row["wco_lost"] <= CONSERVATIVE_MAX_LOSS
        and row["uwo_lost"] <= CONSERVATIVE_MAX_LOSS
        and row["single_lost"] >= SINGLE_MIN_LOSS
    )
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--preset", default="toy-bon")
    p.add_argument("--candidate", action="append", default=[], help="dotted=value,...")
    p.add_argument("--json", help="also write every row here")
    args = p.parse_args()
    base = get_preset(args.preset)
    data = os.environ.get("GOODHART_DATA_DIR") or tempfile.mkdtemp(prefix="recipes-")
    cache = ArtifactCache(Path(data) / "cache")
    rows = []
    for cand in args.candidate or [""]:
        changes = parse_changes(cand, base)
        for seed in args.seeds:
            cfg = base.replace(seed=seed, **changes)
            row = {"candidate": cand or "(preset)", "seed": seed, **measure(cfg, cache)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    cols = ["acc", "error_corr", "single_peak", "single_final", "single_lost", "wco_final",
            "wco_lost", "uwo_final", "uwo_lost", "wco_shared_share", "seconds"]  # fmt: skip
    print("| candidate | " + " | ".join(cols) + " | claim 3 (seeds) | mean claim 3 |")
    print("|---" * (len(cols) + 3) + "|")
    for cand in dict.fromkeys(r["candidate"] for r in rows):
        mine = [r for r in rows if r["candidate"] == cand]
        means = {c: float(np.mean([r[c] for r in mine])) for c in cols}
        on_average = (
            means["wco_lost"] <= CONSERVATIVE_MAX_LOSS
            and means["uwo_lost"] <= CONSERVATIVE_MAX_LOSS
            and means["single_lost"] >= SINGLE_MIN_LOSS
        )
        cells = [f"{means[c]:.2f}" if c != "seconds" else f"{means[c]:.0f}" for c in cols]
        seeds = f"{sum(r['claim3'] for r in mine)} of {len(mine)}"
        print(
            f"| {cand} | " + " | ".join(cells) + f" | {seeds} | {'yes' if on_average else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
