"""How far a cold toy-bon run is from what this CPU could do: each stage's time against its
essential floating-point work at the machine's own matmul rate, measured in the same run.

    .venv/bin/python benchmarks/bench_limit.py [--repeats 3] [--json] [--preset toy-bon]

`measure()` returns the figures (benchmarks/run.py collects them with the other scripts').

- rate: a 2048 x 2048 float32 matmul, on one core, and on every core the run uses
  (backend.runtime.cpu_workers(): that many single-threaded matmuls side by side, as the run
  works); the limit of a stage is its essential FLOPs at the second rate.
- essential FLOPs, padding excluded, from the run's own artifacts (its cache folder):
  sampling (preference pairs and best-of-n answers): one forward of the policy per distinct
  prefix of the answers to one prompt (the prompt once; then each distinct prompt + first k
  tokens of an answer still going), 24 d^2 + 4 t d per token and layer at position t, and the
  language-model head (2 d V) once per prefix;
  proxies: the last-token forward of a GPT-2 proxy (backend/tinygpt.py GPTScorer) on a
  sequence of s real tokens: full blocks before the last, then 4 d^2 s for the last block's
  keys and values and 20 d^2 + 4 s d + 2 d after them; training costs 3x its forward
  (backward about twice the forward), over both answers of every pair and every epoch, plus
  the held-out pairs scored after each epoch; scoring one forward per distinct (prompt, answer)
  and member.
  The gold reward, the sort of best-of-n and the curves are integer and memory work: timed,
  with no FLOP limit.
- stage times: the run's own timings. The best-of-n answers are sampled in a forked child
  beside the preference pairs and the proxies' training (Runner.samples_beside): sampling's
  time is that child's, and overlaps the other stages' (the cold run's wall time is what counts).
- starts computing: launch to the run's first progress line (`[  0%] loading the SFT policy`).
- warm: the same command again with every artifact cached.
Figures are medians of the repeats (the ratios too), with min and max.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.config import ExperimentConfig  # noqa: E402
from backend.runtime import cpu_workers  # noqa: E402

MATMUL = 2048


def matmul_rate(workers: int, seconds: float = 1.0) -> float:
    """GFLOP/s of `workers` single-threaded float32 matmuls side by side (Python threads; torch
    releases the GIL inside the op), best of a few passes of about `seconds`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(MATMUL, MATMUL), torch.randn(MATMUL, MATMUL)
    a @ b
    flops = 2 * MATMUL**3
    best = 0.0
    try:
        for _ in range(3):
            count = [0] * workers
            stop = time.perf_counter() + seconds

            def work(i: int, count=count, stop=stop) -> None:
                while time.perf_counter() < stop:
                    a @ b
                    count[i] += 1

            t0 = time.perf_counter()
            pool = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            best = max(best, sum(count) * flops / (time.perf_counter() - t0) / 1e9)
    finally:
        torch.set_num_threads(threads)
    return best


# ---- essential FLOPs ---------------------------------------------------------------------------


def prefix_evaluations(prompt_idx: np.ndarray, answers: np.ndarray, eos: int) -> np.ndarray:
    """Per generated position k = 0..T-1: how many distinct (prompt, first k tokens) prefixes
    of answers still going after k tokens, i.e. how many policy forwards an exact sampler needs
    there (k = 0: the distinct prompts)."""
    B, T = answers.shape
    ended = np.zeros(B, dtype=bool)
    counts = np.zeros(T, dtype=np.int64)
    rows = np.concatenate([prompt_idx[:, None], answers], axis=1)
    for k in range(T):
        live = rows[~ended, : 1 + k]
        counts[k] = len(np.unique(live, axis=0)) if len(live) else 0
        ended |= answers[:, k] == eos
    return counts


def policy_flops(counts: np.ndarray, prompt_len: int, layers: int, d: int, V: int) -> float:
    """Forward FLOPs of the sampler's distinct prefixes (see the module docstring)."""

    def token(t: int) -> float:  # one token at position t, every layer
        return layers * (24 * d * d + 4 * (t + 1) * d)

    prefill = sum(token(t) for t in range(prompt_len)) + 2 * d * V
    step = [token(prompt_len + k - 1) + 2 * d * V for k in range(1, len(counts))]
    return float(counts[0] * prefill + np.dot(counts[1:], step))


def proxy_forward_flops(s: np.ndarray, layers: int, d: int) -> float:
    """Last-token forward FLOPs of a proxy on sequences of s real tokens: (B,) -> total."""
    s = s.astype(np.float64)
    full = (layers - 1) * (24 * d * d * s + 2 * d * s * (s + 1))  # causal attention: sum_t 4td
    last = 4 * d * d * s + 20 * d * d + 4 * s * d + 2 * d
    return float(np.sum(full + last))


def real_lengths(prompt_len: int, answers: np.ndarray, eos: int, pad: int) -> np.ndarray:
    """Prompt tokens plus answer tokens up to and including EOS: (B, T) -> (B,)."""
    stop = (answers == eos) | (answers == pad)
    first = np.where(stop.any(1), stop.argmax(1), answers.shape[1])
    ends_eos = answers[np.arange(len(answers)), np.minimum(first, answers.shape[1] - 1)] == eos
    return prompt_len + first + ends_eos.astype(int)


def essential(data: Path, cfg: ExperimentConfig) -> dict[str, float]:
    """GFLOP of each stage of a toy run whose cache is under `data`."""
    from backend.worlds.registry import get_world

    world = get_world(cfg.world)
    d, V, Tp = cfg.sft.width, len(world.tokenizer), world.prompt_len
    eos, pad = world.eos_id, world.pad_id
    cache = data / "cache"
    (prefs,) = [p for p in (cache / "prefs").iterdir() if not p.name.startswith(".")]
    (samples,) = [p for p in (cache / "samples").iterdir() if not p.name.startswith(".")]
    out = {}
    pref_flops = 0.0
    with np.load(prefs / "train.npz") as tr, np.load(prefs / "heldout.npz") as ho:
        for z in (tr, ho):
            idx = np.concatenate([z["prompt_idx"], z["prompt_idx"]])
            both = np.concatenate([z["chosen"], z["rejected"]])
            pref_flops += policy_flops(prefix_evaluations(idx, both, eos), Tp, cfg.sft.layers, d, V)
        train_s = real_lengths(Tp, np.concatenate([tr["chosen"], tr["rejected"]]), eos, pad)
        keep = ~ho["gold_tie"]
        held = np.concatenate([ho["chosen"][keep], ho["rejected"][keep]])
        held_s = real_lengths(Tp, held, eos, pad)
    out["preferences"] = pref_flops
    rm, K = cfg.reward_models, cfg.reward_models.members
    per_epoch = 3 * proxy_forward_flops(train_s, rm.layers, d)
    heldout = proxy_forward_flops(held_s, rm.layers, d) * (rm.epochs + 1)  # each epoch + accuracy
    out["reward_models"] = K * (rm.epochs * per_epoch + heldout)
    with np.load(samples / "samples.npz") as z:
        P, N, T = z["answers"].shape
        flat = z["answers"].reshape(P * N, T)
        idx = np.repeat(z["prompt_idx"], N)
        out["sampling"] = policy_flops(prefix_evaluations(idx, flat, eos), Tp, cfg.sft.layers, d, V)
        distinct = np.unique(np.concatenate([idx[:, None], flat], 1), axis=0)
    lengths = real_lengths(Tp, distinct[:, 1:], eos, pad)
    out["scoring"] = K * proxy_forward_flops(lengths, rm.layers, d)
    return {k: v / 1e9 for k, v in out.items()}


# ---- the runs ----------------------------------------------------------------------------------


def run_cli(data: Path, preset: str, out: Path) -> dict:
    """One `python -m backend run`: wall time, time to its first progress line, RESULT.json."""
    cmd = [sys.executable, "-m", "backend", "run", "--preset", preset, "--seed", "0",
           "--out", str(out)]  # fmt: skip
    env = {**os.environ, "GOODHART_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    first = None
    for line in proc.stderr:
        if first is None and line.startswith("["):
            first = time.perf_counter() - t0
    if proc.wait() != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "first_progress_s": first, "result": json.loads(out.read_text())}


STAGES = {  # stage -> RESULT.json timing
    "preferences": "preferences_s",
    "reward_models": "reward_models_s",
    "sampling": "sampling_s",
    "scoring": "scoring_s",
}


def stats(xs) -> dict:
    values = [float(x) for x in xs]
    return {"median": float(np.median(values)), "min": min(values), "max": max(values),
            "values": values}  # fmt: skip


def measure(repeats: int = 3, preset: str = "toy-bon") -> dict:
    from backend.presets import get_preset

    cfg = get_preset(preset)
    workers = cpu_workers()
    rate1, rate = matmul_rate(1), matmul_rate(workers)
    rows: dict[str, list] = {k: [] for k in ("cold", "warm", "first", "ratio", "import")}
    per_stage: dict[str, list] = {s: [] for s in STAGES}
    flops = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            data = Path(tmp) / f"run{r}"
            print(f"cold run {r}...", file=sys.stderr, flush=True)
            cold = run_cli(data, preset, Path(tmp) / "r.json")
            warm = run_cli(data, preset, Path(tmp) / "w.json")
            flops = essential(data, cfg)
            timings = cold["result"]["timings"]
            total_limit = sum(flops.values()) / rate
            rows["cold"].append(cold["wall_s"])
            rows["warm"].append(warm["wall_s"])
            rows["first"].append(cold["first_progress_s"])
            rows["ratio"].append(cold["wall_s"] / total_limit)
            rows["import"].append(cold["wall_s"] - timings["total_s"])
            for stage, key in STAGES.items():
                per_stage[stage].append((timings[key], timings[key] / (flops[stage] / rate)))
            rows.setdefault("curves", []).append(timings["curves_s"])
    out = {
        "workers": workers,
        "matmul_gflops_1_thread": rate1,
        "matmul_gflops": rate,
        "essential_gflop": flops,
        "limit_s": sum(flops.values()) / rate,
        "cold_s": stats(rows["cold"]),
        "warm_s": stats(rows["warm"]),
        "first_progress_s": stats(rows["first"]),
        "outside_stages_s": stats(rows["import"]),
        "curves_s": stats(rows["curves"]),
        "cold_over_limit": stats(rows["ratio"]),
        "stages": {
            s: {
                "seconds": stats([t for t, _ in v]),
                "limit_s": flops[s] / rate,
                "ratio": stats([q for _, q in v]),
            }
            for s, v in per_stage.items()
        },
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="toy-bon")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    f = measure(args.repeats, args.preset)
    if args.json:
        print(json.dumps(f, indent=1))
        return 0
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"matmul: {f['matmul_gflops_1_thread']:.0f} GFLOP/s on 1 core, "
          f"{f['matmul_gflops']:.0f} on the run's {f['workers']} (side by side)")  # fmt: skip
    print(f"{'stage':15s} {'GFLOP':>8s} {'limit s':>8s} {'median s':>9s} {'x limit':>8s}")
    for s, v in f["stages"].items():
        print(f"{s:15s} {f['essential_gflop'][s]:8.1f} {v['limit_s']:8.2f} "
              f"{v['seconds']['median']:9.2f} {v['ratio']['median']:8.1f}")  # fmt: skip
    print(f"{'curves':15s} {'-':>8s} {'-':>8s} {f['curves_s']['median']:9.2f}")
    print(
        "(where a run may fork, the default here, sampling runs in a child beside the "
        "preferences and reward models: its own time)"
    )
    print(f"{'outside stages':15s} {'-':>8s} {'-':>8s} {f['outside_stages_s']['median']:9.2f}"
          "   (start-up, imports, writing the result)")  # fmt: skip
    print(f"cold run {f['cold_s']['median']:.1f} s = {f['cold_over_limit']['median']:.1f}x its "
          f"limit of {f['limit_s']:.1f} s; warm {f['warm_s']['median']:.2f} s; first progress "
          f"line after {f['first_progress_s']['median']:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
