"""Where one training step of a toy proxy spends its time, against what its arithmetic would take
at this CPU's matmul rate: why a cold toy-bon run stays above 3x its limit (bench_limit.py),
whose largest stage is 10,000 of these steps (5 members x 8 epochs x 250 minibatches).

    .venv/bin/python benchmarks/bench_step.py [--repeats 5] [--steps 200] [--compile] [--json]

On one thread, toy-bon's proxy (one block, width 64) on minibatches of 64 of 4,096 pairs of the
shipped SFT policy's answers (backend/proxy_step.py ProxyStep, the step a cold run takes):

- step: the whole step (forward, backward and AdamW), `--steps` minibatches of an epoch's plan.
- its calls: the same steps under torch.profiler, each ATen call's own time (self time): the
  matmuls (mm, addmm, bmm, mv) with their FLOPs and rate, and every other call (layer norms,
  softmax, GELU, gathers and scatters, AdamW, copies, allocation...). The profiler adds about a
  microsecond to every call's time, so the two can sum to more than the unprofiled step. How
  many calls of each one step makes is counted as Python makes them (views not counted).
- limit: each minibatch's essential FLOPs as bench_limit counts the reward models' (3x the
  last-token forward of its 128 sequences, padding excluded) at one core's 2048-square matmul
  rate, measured in the same run.
- `--compile`: the same step through torch.compile (inductor, static shapes: every minibatch's
  table padded to 256 rows, so one graph), plain and then with cpp_wrapper (the graph's calls
  made from generated C++, not Python), each into a fresh cache folder: seconds to compile (the
  second compile runs in the same process as the first) and ms a step. (Compiled kernels round
  differently: a run using them would move its numbers.)

Figures are medians of the repeats, the step and its timed calls interleaved within each repeat.
`measure()` returns them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_limit import matmul_rate, proxy_forward_flops, real_lengths  # noqa: E402

PAIRS, BATCH, PADDED_ROWS = 4096, 64, 256


def setup():
    """toy-bon's first member before training, its ProxyStep on PAIRS pairs, one epoch's
    minibatches, and each minibatch's essential FLOPs."""
    import torch

    from backend.config import ExperimentConfig
    from backend.preferences import make_preferences
    from backend.proxy_step import ProxyStep
    from backend.reward_models import build_proxy
    from backend.worlds.registry import get_world
    from backend.worlds.sft import load_sft_policy

    cfg = ExperimentConfig()
    world = get_world(cfg.world)
    policy = load_sft_policy(world, cfg.sft)[0]
    prefs = dataclasses.replace(cfg.preferences, pairs=PAIRS, eval_pairs=16)
    train, _ = make_preferences(world, policy, prefs, np.random.SeedSequence(0))
    prompts = world.prompt_ids(train.prompt_idx)
    chosen = torch.cat([prompts, torch.as_tensor(train.chosen)], 1)
    rejected = torch.cat([prompts, torch.as_tensor(train.rejected)], 1)
    rm = cfg.reward_models
    proxy = build_proxy(policy, rm.layers, 0)
    step = ProxyStep(proxy, rm.lr, rm.score_l2)
    step.prepare(chosen, rejected)
    order = torch.randperm(PAIRS, generator=torch.Generator().manual_seed(0))
    batches = step.batches(order, BATCH)
    Tp, eos, pad = world.prompt_len, world.eos_id, world.pad_id
    flops = []
    for start in range(0, PAIRS, BATCH):
        mb = order[start : start + BATCH].numpy()
        answers = np.concatenate([train.chosen[mb], train.rejected[mb]])
        s = real_lengths(Tp, answers, eos, pad)
        flops.append(3 * proxy_forward_flops(s, rm.layers, cfg.sft.width))
    return step, batches, np.array(flops)


MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mv", "aten::addmv_"}


def time_calls(step, batches, steps: int) -> dict:
    """The same steps under torch.profiler: per step, the matmuls' own seconds (self time) and
    FLOPs, and the other ATen calls' own seconds."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for k in range(steps):
            step(batches[k % len(batches)])
    acc = {"matmul_s": 0.0, "matmul_flop": 0.0, "other_s": 0.0}
    for ev in prof.key_averages():
        if ev.key in MATMULS:
            acc["matmul_s"] += ev.self_cpu_time_total / 1e6
            acc["matmul_flop"] += ev.flops
        else:
            acc["other_s"] += ev.self_cpu_time_total / 1e6
    return {k: v / steps for k, v in acc.items()}


VIEWS = {"view", "_unsafe_view", "t", "transpose", "select", "slice", "expand", "permute",
         "as_strided", "alias", "unsqueeze", "squeeze", "reshape", "detach"}  # fmt: skip


def count_calls(step, batch) -> dict:
    """The calls one step makes into torch, as Python makes them (a dispatcher mode sees each
    call once, not the calls inside it): matrix products (mm, addmm, bmm, mv, matmul) and the
    others, views not counted."""
    from torch.utils._python_dispatch import TorchDispatchMode

    count = {"matmul_calls": 0, "other_calls": 0}

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            op = str(func).split(".")[1]
            if op in ("mm", "addmm", "bmm", "mv", "matmul"):
                count["matmul_calls"] += 1
            elif op not in VIEWS:
                count["other_calls"] += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        step(batch)
    return count


def time_steps(step, batches, steps: int) -> float:
    t0 = time.perf_counter()
    for k in range(steps):
        step(batches[k % len(batches)])
    return (time.perf_counter() - t0) / steps


def compiled(step, batches, steps: int, repeats: int, cpp_wrapper: bool) -> dict:
    """Compile seconds (fresh cache folder) and ms a step of the step through torch.compile."""
    import torch
    import torch.nn.functional as F

    from backend.proxy_step import Batch

    def padded_rows(b: Batch) -> Batch:  # extra rows (token 0 at position 0) no one reads
        extra = (0, PADDED_ROWS - len(b.tokens))
        return Batch(b.row, b.row_last, b.mask, F.pad(b.tokens, extra), F.pad(b.positions, extra))

    padded = [padded_rows(b) for b in batches]
    eager, before = step._forward_backward, os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        torch._dynamo.reset()
        options = {"cpp_wrapper": True} if cpp_wrapper else {}
        step._forward_backward = torch.compile(eager, dynamic=False, options=options)
        try:
            t0 = time.perf_counter()
            step(padded[0])
            compile_s = time.perf_counter() - t0
            time_steps(step, padded, 50)
            times = [time_steps(step, padded, steps) for _ in range(repeats)]
        finally:
            step._forward_backward = eager
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR")
            if before is not None:  # the caller's own cache folder, as it was
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = before
    return {"compile_s": compile_s, "step_ms": 1e3 * float(np.median(times))}


def measure(repeats: int = 5, steps: int = 200, compile_: bool = False) -> dict:
    import torch

    torch.set_num_threads(1)
    rate = matmul_rate(1)
    step, batches, flops = setup()
    time_steps(step, batches, 50)  # warm-up
    step_s, calls = [], []
    for _ in range(repeats):
        step_s.append(time_steps(step, batches, steps))
        calls.append(time_calls(step, batches, steps))
    med = {k: float(np.median([c[k] for c in calls])) for k in calls[0]}
    out = {
        "load": os.getloadavg()[0],
        "matmul_gflops_1core": rate,
        "step_ms": 1e3 * float(np.median(step_s)),
        "matmuls_ms": 1e3 * med["matmul_s"],
        "other_calls_ms": 1e3 * med["other_s"],
        "matmul_mflop": med["matmul_flop"] / 1e6,
        "essential_mflop": float(flops.mean()) / 1e6,
    }
    out.update(count_calls(step, batches[0]))
    out["limit_ms"] = out["essential_mflop"] / rate
    out["x_limit"] = out["step_ms"] / out["limit_ms"]
    if compile_:
        out["compiled"] = compiled(step, batches, steps, repeats, cpp_wrapper=False)
        out["compiled_cpp_wrapper"] = compiled(step, batches, steps, repeats, cpp_wrapper=True)
    step.release()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--compile", action="store_true", help="also time torch.compile's step")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    r = measure(args.repeats, args.steps, args.compile)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"load: {r['load']:.2f} (1 min); matmul {r['matmul_gflops_1core']:.0f} GFLOP/s on "
          f"1 core (2048 square)")  # fmt: skip
    print(f"one step of {BATCH} pairs on one thread, medians of {args.repeats} x {args.steps}:")
    rate = r["matmul_mflop"] / r["matmuls_ms"]
    print(f"  step                   {r['step_ms']:6.3f} ms")
    mm, other = f"its {r['matmul_calls']} matmul calls", f"its {r['other_calls']} other calls"
    print(f"  {mm:<22} {r['matmuls_ms']:6.3f} ms  ({r['matmul_mflop']:.1f} MFLOP: {rate:.0f} "
          f"GFLOP/s; their own time under the profiler)")  # fmt: skip
    print(f"  {other:<22} {r['other_calls_ms']:6.3f} ms  (likewise; views not counted)")
    print(f"  limit                  {r['limit_ms']:6.3f} ms  ({r['essential_mflop']:.1f} "
          f"essential MFLOP at 1 core's rate): the step is {r['x_limit']:.1f}x it")  # fmt: skip
    for key, label in (("compiled", "torch.compile"), ("compiled_cpp_wrapper", "+ cpp_wrapper")):
        if key in r:
            c = r[key]
            print(f"  {label:<22} {c['step_ms']:6.3f} ms  (compiled in {c['compile_s']:.1f} s, "
                  f"fresh cache; tables padded to {PADDED_ROWS} rows)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
