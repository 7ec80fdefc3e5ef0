"""GPU timings: the default toy presets and a small Hugging Face world run, on cuda by default.

    .venv/bin/python -m benchmarks.bench_gpu                       # cuda, a few minutes
    .venv/bin/python -m benchmarks.bench_gpu --device cpu --quick  # the same path, tiny, CPU

What it runs (every stage cold: a fresh artifact cache in a temporary folder):
1. toy-bon (the default preset) cold, then warm (every artifact cached);
2. toy-ppo (the default preset, --ppo-steps steps) cold: SFT policy shipped, proxies trained;
3. the hf world on models built from configs (nothing is downloaded: the GPU machines have no
   network): a GPT-NeoX policy (Pythia layout), a DeBERTa-v2 gold (OpenAssistant's layout) and the
   policy as proxy base, 32 instruction prompts in the AlpacaFarm template; best-of-n, then PPO
   against the same (cached) proxies.
Prints wall time and the engine's per-stage timings of each run, the device's name and peak GPU
memory; --out writes them as JSON. --quick shrinks every size (a check that the script runs).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.cache import ArtifactCache  # noqa: E402
from backend.config import ExperimentConfig  # noqa: E402
from backend.experiment import run_experiment  # noqa: E402
from backend.presets import get_preset  # noqa: E402
from tests.hf_support import build_zoo, write_prompts  # noqa: E402

QUICK_TOY = {
    "preferences.pairs": 300, "preferences.eval_pairs": 100, "reward_models.members": 2,
    "bon.num_prompts": 4, "bon.samples": 64, "ppo.batch_size": 16, "ppo.eval_samples": 16,
    "ppo.norm_samples": 256, "ppo.eval_every": 2,
}  # fmt: skip
HF = {  # (full, quick)
    "width": (256, 32), "layers": (4, 2),
    "preferences.pairs": (2000, 64), "preferences.eval_pairs": (500, 32),
    "reward_models.members": (3, 2), "reward_models.epochs": (2, 1),
    "bon.num_prompts": (32, 4), "bon.samples": (256, 16), "hf.max_answer_tokens": (32, 8),
    "ppo.steps": (30, 3), "ppo.batch_size": (64, 8), "ppo.eval_every": (10, 2),
    "ppo.eval_samples": (32, 4), "ppo.norm_samples": (1024, 32), "ppo.lr": (1e-5, 1e-4),
}  # fmt: skip


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed_run(label: str, cfg: ExperimentConfig, cache_root: Path, device: str) -> dict:
    sync(device)
    t0 = time.perf_counter()
    out = run_experiment(cfg, cache=ArtifactCache(cache_root))
    sync(device)
    wall = time.perf_counter() - t0
    stages = {k: v for k, v in out.result["timings"].items() if k != "total_s"}
    print(f"{label:34s} {wall:7.1f} s   " + "  ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    return {"label": label, "wall_s": round(wall, 2), "timings": out.result["timings"]}


def toy_runs(toy: dict, tmp: Path, dev: str, steps: int) -> list[dict]:
    """toy-bon cold and warm, then toy-ppo (its 12,000-pair proxies trained cold at full size)."""
    bon = get_preset("toy-bon").replace(**{k: v for k, v in toy.items() if "ppo" not in k})
    rows = [timed_run("toy-bon cold", bon, tmp / "toy", dev)]
    rows.append(timed_run("toy-bon warm", bon, tmp / "toy", dev))
    ppo = get_preset("toy-ppo").replace(**{**toy, "ppo.steps": steps})
    rows.append(timed_run(f"toy-ppo {steps} steps", ppo, tmp / "toy", dev))
    return rows


def hf_runs(sizes: dict, tmp: Path, dev: str) -> list[dict]:
    """Best-of-n, then PPO against the same cached proxies, on models built from configs."""
    t0 = time.perf_counter()
    zoo = build_zoo(tmp / "zoo", width=sizes.pop("width"), layers=sizes.pop("layers"))
    prompts = write_prompts(tmp / "zoo" / "prompts.jsonl")
    print(f"{'hf: tiny models built from configs':34s} {time.perf_counter() - t0:7.1f} s")
    hf = ExperimentConfig(world="hf", device=dev).replace(
        **{"hf.policy": zoo["neox"], "hf.gold": zoo["deberta_gold"],
           "hf.proxy_base": zoo["neox"], "hf.prompt_file": prompts, "ppo.eval_prompts": 4},
        **sizes,
    )  # fmt: skip
    rows = [timed_run("hf best-of-n cold", hf, tmp / "hf", dev)]
    ppo = hf.replace(method="ppo")
    rows.append(timed_run(f"hf PPO {hf.ppo.steps} steps", ppo, tmp / "hf", dev))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    p.add_argument("--ppo-steps", type=int, default=200, help="toy-ppo steps (default preset: 200)")
    p.add_argument("--only", choices=["toy", "hf"], help="run only the toy or the hf part")
    p.add_argument("--out", help="also write the figures as JSON")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu --quick", file=sys.stderr)
        return 2
    q = 1 if args.quick else 0
    dev = args.device
    name = torch.cuda.get_device_name(0) if dev == "cuda" else platform.processor() or "cpu"
    print(f"device: {dev} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="goodhart-bench-") as tmp:
        tmp = Path(tmp)
        toy = {"device": dev, **(QUICK_TOY if q else {})}
        rows += [] if args.only == "hf" else toy_runs(toy, tmp, dev, 3 if q else args.ppo_steps)
        if args.only != "toy":
            rows += hf_runs({k: v[q] for k, v in HF.items()}, tmp, dev)
    if dev == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"peak GPU memory allocated: {peak:.2f} GiB")
    if args.out:
        meta = {"device": dev, "name": name, "torch": torch.__version__, "quick": bool(q)}
        Path(args.out).write_text(json.dumps({**meta, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
