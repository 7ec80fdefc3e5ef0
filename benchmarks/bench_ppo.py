"""PPO speed on the toy-ppo preset: PPO steps per second and answers per second (medians).

    .venv/bin/python -m benchmarks.bench_ppo                  # CPU (or cuda when present)
    .venv/bin/python -m benchmarks.bench_ppo --device cuda --threads 1

Measures, after one warm-up step:
- PPO steps/s and rollout answers/s (batch_size per step): median of --repeats timings of
  --steps steps each, for each --threads setting (CPU intra-op threads);
- one whole default toy-ppo curve through run_experiment (proxies from the cache), with its
  timings: PPO updates, evaluations, standardization.
`measure()` returns the timings (benchmarks/run.py collects them with the other scripts').
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from backend.cache import ArtifactCache
from backend.experiment import Runner, run_experiment
from backend.objectives import Objective
from backend.ppo import ValueModel, ppo_step
from backend.presets import get_preset
from backend.reward_models import score


def step_rate(runner: Runner, proxies, steps: int, repeats: int) -> list[float]:
    """Seconds per PPO step, `repeats` times; the reward is the preset's objective (raw scores:
    standardization does not change the cost)."""
    cfg, world = runner.cfg.ppo, runner.world
    objective = Objective.of_ppo(cfg)

    def reward(prompt_idx, answers):
        return objective(np.stack([score(p, world, prompt_idx, answers) for p in proxies], -1))

    ref = runner.policy
    policy, value = copy.deepcopy(ref), ValueModel(ref)
    opt = torch.optim.Adam([*policy.parameters(), *value.parameters()], lr=cfg.lr, foreach=True)
    rng = np.random.default_rng(0)
    gen = torch.Generator(device=runner.device).manual_seed(0)
    prompts = np.arange(len(world.prompts()))
    args = (policy, ref, value, opt, world, reward, 0.0, cfg, prompts, rng, gen)
    ppo_step(*args)  # warm-up
    out = []
    for _ in range(repeats):
        if runner.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            ppo_step(*args)
        if runner.device.type == "cuda":
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) / steps)
    return out


def measure(cfg=None, steps: int = 20, repeats: int = 3, threads=(1, 2), curves: int = 1) -> dict:
    """Seconds per PPO step for each thread count ({threads: [repeats]}), and `curves` whole
    toy-ppo curves (total and PPO-only seconds; none when curves=0). `cfg`: toy-ppo by default."""
    cfg = cfg or get_preset("toy-ppo")
    runner = Runner(cfg, ArtifactCache(), None, None)
    _, _, proxies, _ = runner.ensemble()
    name = torch.cuda.get_device_name() if runner.device.type == "cuda" else "cpu"
    B = cfg.ppo.batch_size
    print(f"device {name}; batch {B}, {cfg.ppo.minibatches} minibatches, {cfg.ppo.epochs} epochs")
    out: dict = {"batch": B, "steps": cfg.ppo.steps, "step_s": {}, "curve_s": [], "curve_ppo_s": []}
    default_threads = torch.get_num_threads()
    for n in threads:
        torch.set_num_threads(n)
        out["step_s"][n] = step_rate(runner, proxies, steps, repeats)
        sec = statistics.median(out["step_s"][n])
        print(
            f"threads {n}: {1 / sec:6.2f} PPO steps/s, {B / sec:7.0f} answers/s "
            f"(median of {repeats} x {steps} steps)",
            flush=True,
        )
    torch.set_num_threads(default_threads)
    for _ in range(curves):
        t0 = time.perf_counter()
        res = run_experiment(cfg, cache=ArtifactCache()).result
        total = time.perf_counter() - t0
        t = res["timings"]
        n_eval = len(res["curves"][0]["points"])
        print(
            f"one toy-ppo curve ({cfg.ppo.steps} steps, {n_eval} evaluations of "
            f"{cfg.ppo.eval_prompts * cfg.ppo.eval_samples} answers): "
            f"{total:.1f} s total; PPO {t['ppo_s']:.1f} s "
            f"({cfg.ppo.steps / t['ppo_s']:.2f} steps/s), evaluation {t['ppo_eval_s']:.1f} s, "
            f"standardization {t['ppo_norm_s']:.1f} s",
            flush=True,
        )
        out["curve_s"].append(total)
        out["curve_ppo_s"].append(t["ppo_s"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=20, help="PPO steps per timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--skip-full", action="store_true", help="skip the whole-curve timing")
    args = p.parse_args()
    cfg = get_preset("toy-ppo").replace(device=args.device)
    measure(cfg, args.steps, args.repeats, args.threads, curves=0 if args.skip_full else 1)


if __name__ == "__main__":
    main()
