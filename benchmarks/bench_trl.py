"""Our training loops against TRL's on the same tiny models, data and work (ratios TRL / ours).

    .venv/bin/pip install -r requirements.txt -r requirements-bench.txt   # TRL: not in CI
    .venv/bin/python benchmarks/bench_trl.py [--repeats 3] [--threads 1] [--json] [--quick]

1. Reward-model training. Ours: `train_proxy` (backend/reward_models.py). TRL: `RewardTrainer`.
   The same model on both sides: the toy world's proxy, the shipped SFT policy's first block
   under a one-output head (`build_proxy`, same seed, so the same initial weights; ours is
   backend/tinygpt.py's GPTScorer, TRL's transformers' GPT2ForSequenceClassification with the
   same weights, which computes every position where ours computes the last one); the same
   noisy preference pairs of the default toy-bon config (prompt + answer token ids, the answer
   right-padded to 10 tokens exactly as we score it); the same epochs, batch size, learning rate
   and optimizer (AdamW, no weight decay, constant learning rate, no gradient clipping).
   Timed: ours `train_proxy(...)`, TRL `trainer.train()`; TRL's trainer construction (dataset
   checks, accelerate) is reported apart and not in the ratio.
2. The RL step. Ours: `ppo_step` (backend/ppo.py) with the toy-ppo config: 64 answers per step,
   4 epochs x 2 minibatches of 32 (8 optimizer steps), a separate value model, reference log-probs.
   TRL: `RLOOTrainer`, 64 answers per generation (16 prompts x num_generations 4), reused for
   num_iterations 4 x steps_per_generation 2 = 8 optimizer steps of 32 answers, beta 0.05 so that
   it also computes reference log-probs. So both sides generate 64 answers and take 8 gradient
   steps of 32 answers per "step"; TRL's step time is the time between the ends of two
   consecutive generation cycles. The policy is the shipped SFT policy on both sides, answers of
   at most 10 tokens at temperature 1 (no top-k/top-p), and the reward on both sides is the toy
   world's gold reward (vectorized numpy, microseconds), so the reward model's cost is left out.

What still differs, by design of each library (this is what the ratios measure):
- TRL generates with `model.generate` (GenerationConfig, logits processors, stopping criteria,
  attention masks) on transformers' GPT-2; we use our prefix-sharing KV-cache sampler on
  backend/tinygpt.py's GPT-2 with the same weights, and no mask (every toy prompt has 4 tokens).
- TRL tokenizes the prompt text each step and decodes completions to text for the reward
  function; we keep token ids throughout.
- TRL's loss has no value model (RLOO's baseline is the other answers' mean reward); ours trains a
  value model too (one more forward and backward per minibatch), so ours does more work per step.
- TRL's RewardTrainer computes accuracy/margin metrics on every batch and goes through the
  Trainer's dataloader and collator; its centring term (coefficient 1e-3 on (r_c + r_r)^2) stands
  in for our L2 on raw scores (1e-3 on r^2): the same cost.
- Logging, saving, evaluation, progress bars, reporting and gradient checkpointing are off in TRL;
  float32 on the CPU (no bf16) on both sides; `--threads` torch threads on both sides (default 1,
  as run_ppo uses on the CPU).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import itertools
import json
import os
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INSTALL_HINT = "pip install -r requirements.txt -r requirements-bench.txt"


def trl_available() -> bool:
    return importlib.util.find_spec("trl") is not None


def require_trl() -> None:
    if not trl_available():
        sys.exit(
            "bench_trl.py compares against TRL, which is not a project requirement (nor in CI).\n"
            f"Install it into the project venv first:  .venv/bin/{INSTALL_HINT}"
        )


# ---- shared setup ------------------------------------------------------------------------------


def hf_tokenizer(world):
    """transformers' word-level tokenizer with the toy world's vocabulary (TRL needs one)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(world.vocab())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=world.tokenizer.unk_token))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t = world.tokenizer
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=t.pad_token, eos_token=t.eos_token, unk_token=t.unk_token
    )


def hf_model(ours, cls):
    """transformers' GPT-2 (`cls`) with our model's weights."""
    from backend.tinygpt import gpt2_config

    cfg = gpt2_config(ours.config)
    cfg.num_labels = 1
    model = cls(cfg)
    missing, _ = model.load_state_dict(ours.state_dict(), strict=False)
    assert set(missing) <= {"lm_head.weight"}, missing  # tied to the token embeddings
    return model


def setup(pairs: int):
    """(world, SFT policy, toy-ppo config, training pairs): the default toy-bon preferences."""
    import dataclasses

    from backend.cache import ArtifactCache
    from backend.preferences import make_preferences
    from backend.presets import get_preset
    from backend.seeding import stage_seed
    from backend.worlds.registry import get_world
    from backend.worlds.sft import load_sft_policy

    cfg = get_preset("toy-ppo").replace(device="cpu")
    world = get_world(cfg.world)
    with tempfile.TemporaryDirectory() as tmp:  # the shipped SFT policy; never trains here
        sft, _ = load_sft_policy(world, cfg.sft, ArtifactCache(root=Path(tmp)))
    prefs = dataclasses.replace(cfg.preferences, pairs=pairs, eval_pairs=10)
    train, _ = make_preferences(world, sft, prefs, stage_seed(0, "prefs"))
    return world, sft.eval(), cfg, train


# ---- 1. reward-model training ------------------------------------------------------------------


def time_ours_rm(world, sft, rm_cfg, train, seed: int) -> float:
    import torch

    from backend.reward_models import build_proxy, train_proxy

    proxy = build_proxy(sft, rm_cfg.layers, seed)
    t0 = time.perf_counter()
    train_proxy(proxy, world, train, rm_cfg, torch.Generator().manual_seed(seed))
    return time.perf_counter() - t0


def time_trl_rm(world, sft, rm_cfg, train, seed: int, out: Path) -> tuple[float, float]:
    """(seconds in trainer.train(), seconds constructing the trainer)."""
    import torch
    from datasets import Dataset
    from transformers import GPT2ForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from backend.reward_models import build_proxy

    prompts = world.prompt_ids(train.prompt_idx)  # (M, Tp)
    chosen = torch.cat([prompts, torch.as_tensor(train.chosen)], 1)  # (M, Tp+T)
    rejected = torch.cat([prompts, torch.as_tensor(train.rejected)], 1)  # (M, Tp+T)
    data = Dataset.from_dict({"chosen_ids": chosen.tolist(), "rejected_ids": rejected.tolist()})
    proxy = hf_model(build_proxy(sft, rm_cfg.layers, seed), GPT2ForSequenceClassification)
    args = RewardConfig(
        output_dir=str(out),
        per_device_train_batch_size=rm_cfg.batch_size,
        num_train_epochs=rm_cfg.epochs,
        learning_rate=rm_cfg.lr,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        optim="adamw_torch",
        center_rewards_coefficient=rm_cfg.score_l2,
        max_length=None,
        seed=seed,
        **quiet_training_args(),
    )
    t0 = time.perf_counter()
    trainer = RewardTrainer(
        model=proxy, args=args, train_dataset=data, processing_class=hf_tokenizer(world)
    )
    t1 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t1, t1 - t0


def quiet_training_args() -> dict:
    """TrainingArguments that switch off everything but training, on the CPU in float32."""
    return dict(
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


# ---- 2. the RL step ----------------------------------------------------------------------------


def time_ours_ppo(world, sft, cfg, steps: int, seed: int) -> list[float]:
    """Seconds per `ppo_step` (64 answers), after one warm-up step; gold is the reward."""
    import numpy as np
    import torch

    from backend.ppo import ValueModel, ppo_step

    pc = cfg.ppo
    ref = sft
    policy, value = copy.deepcopy(ref), ValueModel(ref)
    opt = torch.optim.Adam(  # as train_ppo makes it
        [*policy.parameters(), *value.parameters()], lr=pc.lr, eps=1e-5, fused=True
    )
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    prompts = np.arange(len(world.prompts()))
    args = (policy, ref, value, opt, world, world.gold, pc.kl_coef, pc, prompts, rng, gen)
    ppo_step(*args)  # warm-up
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        ppo_step(*args)
        out.append(time.perf_counter() - t0)
    return out


def time_trl_rloo(world, sft, cfg, steps: int, seed: int, out: Path) -> tuple[list[float], float]:
    """(seconds per generation cycle of 64 answers and 8 optimizer steps, after one warm-up cycle;
    seconds constructing the trainer)."""
    import numpy as np
    from datasets import Dataset
    from transformers import GPT2LMHeadModel, TrainerCallback
    from trl import RLOOConfig, RLOOTrainer

    pc = cfg.ppo
    G = 4  # answers per prompt (RLOO needs at least 2 for its leave-one-out baseline)
    mb = pc.batch_size // pc.minibatches  # 32 answers per optimizer step, as ours
    per_cycle = pc.minibatches * pc.epochs  # 8 optimizer steps per 64 generated answers
    T = world.max_answer_tokens

    def gold_reward(prompts, completions, completion_ids, prompt_idx, **kwargs) -> list[float]:
        answers = np.full((len(completion_ids), T), world.pad_id)  # (B, T) as our sampler pads
        for i, c in enumerate(completion_ids):
            answers[i, : len(c)] = c[:T]
        return world.gold(np.asarray(prompt_idx), answers).tolist()

    n = len(world.prompts())
    reps = (steps + 2) * pc.batch_size // G // n + 1
    data = Dataset.from_dict(
        {"prompt": world.prompts() * reps, "prompt_idx": list(range(n)) * reps}
    )
    args = RLOOConfig(
        output_dir=str(out),
        per_device_train_batch_size=mb,
        steps_per_generation=pc.minibatches,
        num_iterations=pc.epochs,
        num_generations=G,
        max_completion_length=T,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        beta=0.05,  # > 0: TRL then computes reference log-probs, as ours always does
        learning_rate=pc.lr,
        lr_scheduler_type="constant",
        max_grad_norm=pc.max_grad_norm,
        max_steps=(steps + 1) * per_cycle,
        log_completions=False,
        seed=seed,
        **quiet_training_args(),
    )

    ends: list[float] = []

    class CycleClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % per_cycle == 0:
                ends.append(time.perf_counter())

    tokenizer = hf_tokenizer(world)
    hf_model(sft, GPT2LMHeadModel).save_pretrained(out / "sft")  # TRL loads it (and the ref)
    tokenizer.save_pretrained(out / "sft")
    t0 = time.perf_counter()
    trainer = RLOOTrainer(
        model=str(out / "sft"),
        reward_funcs=gold_reward,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[CycleClock()],
    )
    setup_s = time.perf_counter() - t0
    trainer.train()
    return [b - a for a, b in itertools.pairwise(ends)], setup_s


# ---- measurements ------------------------------------------------------------------------------


def measure(
    repeats: int = 3, pairs: int = 8000, epochs: int | None = None, steps: int = 10, threads=1
) -> list[dict]:
    """Figures of both comparisons; each repeat times ours then TRL's (fresh models each)."""
    import dataclasses
    import statistics

    import torch

    from benchmarks.figures import figure

    require_trl()
    import trl

    torch.set_num_threads(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    world, sft, cfg, train = setup(pairs)
    rm_cfg = cfg.reward_models
    if epochs is not None:
        rm_cfg = dataclasses.replace(rm_cfg, epochs=epochs)
    rm_ours, rm_trl, rm_setup, ppo_ours, ppo_trl, ppo_setup = [], [], [], [], [], []
    # TRL prints a summary dict when training ends: keep stdout for the figures (--json)
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as tmp, redirect_stdout(sys.stderr):
        for r in range(repeats):
            print(f"repeat {r + 1}/{repeats}: reward models...", file=sys.stderr, flush=True)
            rm_ours.append(time_ours_rm(world, sft, rm_cfg, train, seed=r))
            t_train, t_setup = time_trl_rm(world, sft, rm_cfg, train, r, Path(tmp) / f"rm{r}")
            rm_trl.append(t_train)
            rm_setup.append(t_setup)
            print(f"repeat {r + 1}/{repeats}: RL steps...", file=sys.stderr, flush=True)
            ppo_ours.append(statistics.median(time_ours_ppo(world, sft, cfg, steps, r)))
            cycles, t_setup = time_trl_rloo(world, sft, cfg, steps, r, Path(tmp) / f"rloo{r}")
            ppo_trl.append(statistics.median(cycles))
            ppo_setup.append(t_setup)
    M, B = len(train.prompt_idx), cfg.ppo.batch_size
    rm_what = f"{M} pairs x {rm_cfg.epochs} epochs, batch {rm_cfg.batch_size}"
    note = f"trl {trl.__version__}, {threads} torch thread(s)"
    return [
        figure("trl.rm_ours_s", f"RM training, ours ({rm_what})", rm_ours, note=note),
        figure("trl.rm_trl_s", "RM training, TRL RewardTrainer.train()", rm_trl),
        figure("trl.rm_trl_setup_s", "RM training, TRL trainer construction", rm_setup),
        figure(
            "trl.rm_ratio",
            "RM training, TRL / ours",
            [t / o for t, o in zip(rm_trl, rm_ours)],
            unit="x",
        ),
        figure("trl.ppo_ours_s", f"RL step, ours PPO ({B} answers)", ppo_ours),
        figure("trl.rloo_s", f"RL step, TRL RLOOTrainer ({B} answers)", ppo_trl),
        figure("trl.rloo_setup_s", "RL step, TRL trainer construction", ppo_setup),
        figure(
            "trl.step_ratio",
            "RL step, TRL RLOO / ours PPO",
            [t / o for t, o in zip(ppo_trl, ppo_ours)],
            unit="x",
        ),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--pairs", type=int, default=8000, help="preference pairs (toy-bon: 16000; 8000 is shorter)"
    )
    p.add_argument("--epochs", type=int, default=None, help="reward-model epochs (config: 8)")
    p.add_argument("--steps", type=int, default=10, help="RL steps timed per repeat")
    p.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    p.add_argument("--quick", action="store_true", help="1000 pairs, 1 epoch, 3 steps, 1 repeat")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    require_trl()
    if args.quick:
        args.repeats, args.pairs, args.epochs, args.steps = 1, 1000, 1, 3
    from benchmarks.figures import table

    figs = measure(args.repeats, args.pairs, args.epochs, args.steps, args.threads)
    if args.json:
        print(json.dumps({"quick": args.quick, "figures": figs}, indent=1))
    else:
        print(("QUICK RUN (reduced sizes)\n" if args.quick else "") + table(figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
