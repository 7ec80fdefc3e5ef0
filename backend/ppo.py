"""PPO for a language-model policy against a reward on whole answers, in the style of cleanrl's
ppo.py: one file, read top to bottom.

One PPO step (`ppo_step`):
  1. rollout     B answers of the current policy at temperature 1, to training prompts
  2. score       the chosen objective over the K standardized proxies, one number per answer
  3. KL penalty  per-token reward -beta * (log pi - log pi_ref), the score added at the last token
  4. advantages  GAE (gamma, lambda) with a value model's estimates, whitened over the batch
  5. update      `epochs` passes over minibatches: clipped policy loss + clipped value loss,
                 each model's gradient clipped to `max_grad_norm`
Every `eval_every` steps (and at the first and last step) the policy is evaluated on held-out
prompts: gold, the objective's proxy value, the mean of the members, KL(pi || pi_ref).

Design choices, and why:
- The token-level MDP: the state is prompt + answer[:t], the action is token t. Tokens after the
  first EOS are not generated and carry no reward, value, advantage or KL (`response_mask`).
- The value model is separate from the policy (the SFT backbone with a zero-initialized scalar
  head), so the value loss never moves the policy, and neither loss needs a weight.
- The reference is the frozen SFT policy; the policy starts as a copy of it.
- "Old" log-probs and values are computed by the same forward pass as in the update, batched in
  the first epoch's minibatches, so the probability ratio is exactly 1 on the first minibatch
  (the sampler's incremental KV-cache log-probs differ in the last bits).
- Forward passes stop at the minibatch's longest answer (`on_answers`): the columns after every
  EOS are masked out of every loss, and skipping them made a step 1.2-1.3x faster.
- Randomness: a numpy Generator (prompts, minibatch order) and a torch Generator on the model's
  device (sampling); nothing depends on the global RNGs, so one seed gives one curve on the CPU.

Shapes: B answers per step, M minibatch, T answer tokens, Tp prompt tokens, K members,
P held-out prompts, N answers per held-out prompt.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.cache import stable_hash
from backend.checkpoint import Checkpoint
from backend.config import PpoConfig
from backend.fits import fit_curve
from backend.kl_control import make_kl_controller
from backend.objectives import Objective
from backend.policy import SAMPLER_KEY, sample_answers
from backend.reward_models import score
from backend.runtime import Cancelled, RunContext
from backend.seeding import stage_seed, torch_generator
from backend.worlds.base import World

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (B,), (B, T) -> (B,)


# ---- models ------------------------------------------------------------------------------------


class ValueModel(nn.Module):
    """V(prompt + answer[:t]) for every answer position t: the SFT backbone and a scalar head."""

    def __init__(self, sft) -> None:
        super().__init__()
        self.backbone = copy.deepcopy(sft.base_model)  # GPT-2's .transformer, NeoX's .gpt_neox
        self.head = nn.Linear(sft.config.hidden_size, 1, device=sft.device, dtype=sft.dtype)
        nn.init.zeros_(self.head.weight)  # V = 0 at the start: the standardized reward's mean
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, prompt_len: int, **inputs) -> torch.Tensor:
        """inputs: the world's model_inputs (attention mask, position ids) for padded prompts."""
        h = self.backbone(ids, **inputs).last_hidden_state[:, prompt_len - 1 : -1]  # (B, T, d)
        return self.head(h).squeeze(-1).float()  # (B, T)


def token_logprobs(model, ids: torch.Tensor, prompt_len: int, **inputs) -> torch.Tensor:
    """log pi(answer token t | prompt, answer[:t]): (B, Tp+T) -> (B, T), unmasked. `inputs`:
    the world's model_inputs (attention mask, position ids) for padded prompts."""
    logits = model(ids, **inputs).logits[:, prompt_len - 1 : -1].float()  # (B, T, V)
    return torch.log_softmax(logits, -1).gather(2, ids[:, prompt_len:, None]).squeeze(2)


def on_answers(fn, ids: torch.Tensor, mask: torch.Tensor, prompt_len: int, inputs: dict):
    """fn(ids, prompt_len, **inputs) -> (B, T) per answer token (token_logprobs, a value model)
    computed on the columns the batch's answers use (the prompt, then up to the longest answer's
    EOS), 0 after them: every use of those positions is masked. Causal models see no later
    column, so the kept positions are what the whole ids give, up to rounding (the kernels'
    shapes change); a toy PPO step has about a third of its columns after every EOS."""
    T = mask.shape[1]
    cut = prompt_len + int(mask.sum(1).max())  # (B, Tp + T) -> (B, cut)
    out = fn(ids[:, :cut], prompt_len, **{k: v[:, :cut] for k, v in inputs.items()})
    return F.pad(out, (0, T - out.shape[1]))  # (B, T)


def response_mask(answers: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1.0 on generated tokens (up to and including the first EOS), 0.0 after: (B, T) -> (B, T)."""
    is_eos = (answers == eos_id).long()
    return ((is_eos.cumsum(1) - is_eos) == 0).float()


def sequence_ids(world: World, prompt_idx: np.ndarray, answers, device) -> torch.Tensor:
    """Prompt and answer token ids, concatenated: (B,), (B, T) -> (B, Tp+T) on `device`."""
    return torch.cat([world.prompt_ids(prompt_idx), torch.as_tensor(answers)], 1).to(device)


@torch.no_grad()
def sequence_kl(policy, ref, world: World, prompt_idx: np.ndarray, answers) -> torch.Tensor:
    """Per answer, sum over its generated tokens of log pi - log pi_ref: (B,) (B, T) -> (B,).

    For answers sampled from pi its mean estimates KL(pi || pi_ref) of whole answers (nats)."""
    device = next(policy.parameters()).device
    ids = sequence_ids(world, prompt_idx, answers, device)  # (B, Tp+T)
    mask = response_mask(ids[:, world.prompt_len :], world.eos_id)  # (B, T)
    inputs = world.model_inputs(prompt_idx, ids.shape[1], device)
    logp = token_logprobs(policy, ids, world.prompt_len, **inputs)
    ref_logp = token_logprobs(ref, ids, world.prompt_len, **inputs)
    return ((logp - ref_logp) * mask).sum(1)


# ---- the pieces of the loss, as plain functions (tested on hand-computed numbers) --------------


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std over the masked entries (population std); 0 where masked out."""
    mu = masked_mean(x, mask)
    var = masked_mean((x - mu) ** 2, mask)
    return (x - mu) * torch.rsqrt(var + 1e-8) * mask


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over answer tokens: (B, T) x3 -> advantages, returns.

    delta_t = r_t + gamma V_{t+1} - V_t, with V = 0 after the answer's last token;
    A_t = delta_t + gamma lambda A_{t+1}; returns = A + V. Zero where mask is 0."""
    B, T = rewards.shape
    adv = torch.zeros_like(rewards)
    next_adv = torch.zeros(B, device=rewards.device)
    next_value = torch.zeros(B, device=rewards.device)
    for t in reversed(range(T)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]  # (B,)
        next_adv = (delta + gamma * lam * next_adv) * mask[:, t]
        next_value = values[:, t] * mask[:, t]
        adv[:, t] = next_adv
    return adv, (adv + values) * mask


def policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate, mean over tokens: max(-A r, -A clip(r, 1-eps, 1+eps)).

    Returns (loss, ratio (B, T))."""
    ratio = torch.exp(logp - old_logp)  # (B, T)
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip, 1.0 + clip)
    return masked_mean(torch.maximum(unclipped, clipped), mask), ratio


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
) -> torch.Tensor:
    """Clipped value loss: 0.5 * max((V - R)^2, (V_old + clip(V - V_old, +-c) - R)^2)."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


# ---- one PPO step ------------------------------------------------------------------------------


def ppo_step(
    policy,
    ref,
    value: ValueModel,
    optimizer: torch.optim.Optimizer,
    world: World,
    reward_fn: RewardFn,
    beta: float,
    cfg: PpoConfig,
    train_prompts: np.ndarray,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> dict[str, float]:
    """Rollout, score, KL penalty, advantages, update. Returns the step's statistics."""
    device = next(policy.parameters()).device
    B, Tp = cfg.batch_size, world.prompt_len
    mb_size = B // cfg.minibatches

    # 1. rollout: one answer per drawn training prompt, at temperature 1
    prompt_idx = rng.choice(train_prompts, size=B)  # (B,)
    answers = sample_answers(policy, world, prompt_idx, generator)  # (B, T) numpy
    ids = sequence_ids(world, prompt_idx, answers, device)  # (B, Tp+T)
    mask = response_mask(ids[:, Tp:], world.eos_id)  # (B, T)
    last = mask.sum(1).long() - 1  # (B,) index of the last generated token
    inputs = world.model_inputs(prompt_idx, ids.shape[1], device)  # {} for fixed-length prompts

    def on_mb(model, mb: torch.Tensor) -> torch.Tensor:  # (M, T): log-probs or values
        fn = model if isinstance(model, ValueModel) else partial(token_logprobs, model)
        return on_answers(fn, ids[mb], mask[mb], Tp, {k: v[mb] for k, v in inputs.items()})

    # 2. score: the objective over the standardized proxies, on whole answers
    scores = torch.as_tensor(reward_fn(prompt_idx, answers), dtype=torch.float32, device=device)

    # Old log-probs and values, batched like the first epoch's minibatches (ratio exactly 1).
    perms = [torch.as_tensor(rng.permutation(B), device=device) for _ in range(cfg.epochs)]
    old_logp, ref_logp, old_values = (torch.zeros(mask.shape, device=device) for _ in range(3))
    models = (policy, ref, value)
    with torch.no_grad():
        for mb in perms[0].split(mb_size):
            old_logp[mb], ref_logp[mb], old_values[mb] = (on_mb(m, mb) for m in models)

    # 3. KL penalty per token; the score lands on the last generated token
    kl_tokens = (old_logp - ref_logp) * mask  # (B, T)
    rewards = -beta * kl_tokens
    rewards[torch.arange(B, device=device), last] += scores

    # 4. advantages (GAE), whitened over the batch's tokens
    advantages, returns = gae(rewards, old_values * mask, mask, cfg.gamma, cfg.gae_lambda)
    advantages = whiten(advantages, mask)

    # 5. update: epochs x minibatches of the clipped losses
    totals = torch.zeros(4, device=device)  # pg_loss, v_loss, clipfrac, approx_kl; one sync
    first_ratio_dev = 0.0
    for epoch, perm in enumerate(perms):
        for i, mb in enumerate(perm.split(mb_size)):
            mb_mask = mask[mb]  # (M, T)
            logp = on_mb(policy, mb)  # (M, T)
            pg_loss, ratio = policy_loss(logp, old_logp[mb], advantages[mb], mb_mask, cfg.clip)
            v_loss = value_loss(
                on_mb(value, mb),
                old_values[mb],
                returns[mb],
                mb_mask,
                cfg.value_clip,
            )
            optimizer.zero_grad(set_to_none=True)
            (pg_loss + v_loss).backward()
            nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm, foreach=True)
            nn.utils.clip_grad_norm_(value.parameters(), cfg.max_grad_norm, foreach=True)
            optimizer.step()
            with torch.no_grad():
                if epoch == 0 and i == 0:
                    first_ratio_dev = float(((ratio - 1).abs() * mb_mask).max())
                clipped = ((ratio - 1).abs() > cfg.clip).float()
                approx_kl = ratio - 1 - (logp - old_logp[mb])  # >= 0, unbiased (Schulman)
                totals += torch.stack(
                    [
                        pg_loss,
                        v_loss,
                        masked_mean(clipped, mb_mask),
                        masked_mean(approx_kl, mb_mask),
                    ]
                )
    totals = (totals / (cfg.epochs * cfg.minibatches)).tolist()
    return {
        "score": scores.mean().item(),
        "kl": kl_tokens.sum(1).mean().item(),
        "beta": beta,
        "length": mask.sum(1).mean().item(),  # generated tokens, EOS included
        "first_ratio_dev": first_ratio_dev,
        **dict(zip(("pg_loss", "v_loss", "clipfrac", "approx_kl"), totals, strict=True)),
    }


# ---- pausing and resuming (a re-queued run continues where it stopped) -------------------------


@dataclass
class Resumable:
    """Where train_ppo saves its state when a step boundary raises Cancelled, and loads it at
    the start (backend/checkpoint.py); dump() -> (JSON-ready state, arrays) and load(state,
    arrays) carry the caller's own log along. `resumed_at`: the step it continued from."""

    checkpoint: Checkpoint
    dump: Callable[[], tuple[dict, dict]]
    load: Callable[[dict, dict], None]
    resumed_at: int | None = None


def _pause(r: Resumable, step: int, policy, value, optimizer, kl_ctl, rng, generator, history):
    """Everything step `step` needs to go on as if never stopped: both models, Adam's moments,
    beta, both random generators, the history and the caller's log."""
    opt = optimizer.state_dict()
    tensors = {"rollout_rng": generator.get_state()}
    for i, moments in opt["state"].items():
        tensors.update({f"adam.{i}.{name}": t for name, t in moments.items()})
    log, arrays = r.dump()
    state = {"step": step, "history": history, "beta": kl_ctl.value}
    state.update(rng=rng.bit_generator.state, param_groups=opt["param_groups"], log=log)
    r.checkpoint.save({"policy": policy, "value": value}, tensors, arrays, state)


def _resume(r: Resumable, policy, value, optimizer, kl_ctl, rng, generator) -> tuple[int, list]:
    """(first step, history) of a saved run, its state loaded in place; (0, []) without one."""
    saved = r.checkpoint.load({"policy": policy, "value": value})
    if saved is None:
        return 0, []
    tensors, arrays, state = saved
    moments: dict[int, dict] = {}
    for key, t in tensors.items():
        if key.startswith("adam."):
            _, i, name = key.split(".", 2)
            moments.setdefault(int(i), {})[name] = t
    groups = [{**g, "betas": tuple(g["betas"])} for g in state["param_groups"]]
    optimizer.load_state_dict({"state": moments, "param_groups": groups})
    kl_ctl.value = state["beta"]
    rng.bit_generator.state = state["rng"]
    generator.set_state(tensors["rollout_rng"])
    r.load(state["log"], arrays)
    r.resumed_at = state["step"]
    return state["step"], state["history"]


def train_ppo(
    policy,
    ref,
    value: ValueModel,
    world: World,
    reward_fn: RewardFn,
    cfg: PpoConfig,
    train_prompts: np.ndarray,
    rng: np.random.Generator,
    generator: torch.Generator,
    evaluate: Callable[[int], None] | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    resumable: Resumable | None = None,
) -> list[dict]:
    """cfg.steps PPO steps; evaluate(step) every cfg.eval_every steps and at the last step;
    on_step(step, stats) before each step (step 0 included) and after the last one
    (progress, cancellation). With `resumable`, a Cancelled from on_step saves the state first
    and a saved state is continued from. Returns the per-step statistics."""
    optimizer = torch.optim.Adam(  # fused: one kernel for every parameter
        [*policy.parameters(), *value.parameters()], lr=cfg.lr, eps=1e-5, fused=True
    )
    kl_ctl = make_kl_controller(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
    ref.requires_grad_(False)
    history: list[dict] = []
    start = 0
    if resumable is not None:
        start, history = _resume(resumable, policy, value, optimizer, kl_ctl, rng, generator)
    for step in range(start, cfg.steps + 1):
        if on_step is not None:
            try:
                on_step(step, history[-1] if history else {})
            except Cancelled:
                if resumable is not None and step > start:
                    state = (policy, value, optimizer, kl_ctl, rng, generator)
                    _pause(resumable, step, *state, history)
                raise
        if evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
            evaluate(step)
        if step == cfg.steps:
            break
        stats = ppo_step(
            policy, ref, value, optimizer, world, reward_fn, kl_ctl.value, cfg, train_prompts,
            rng, generator,
        )  # fmt: skip
        kl_ctl.update(stats["kl"])
        history.append({"step": step + 1, **stats})
    return history


# ---- the experiment: PPO against one objective of the best-of-n proxies ------------------------


def norm_answers_key(cfg, sft_key: str) -> str:
    """The key of the initial policy's answers the proxies are standardized on (a member's
    standardization on them: norm_key)."""
    pc = cfg.ppo
    return stable_hash(sft_key, "ppo-norm", cfg.seed, pc.eval_prompts, pc.norm_samples,
                       SAMPLER_KEY)  # fmt: skip


def norm_key(member_key: str, answers_key: str) -> str:
    """The key of one member's standardization on those answers."""
    return stable_hash(member_key, answers_key)


def standardization(
    ctx: RunContext, proxies: list, member_keys: list[str], sft_key: str, train_prompts
) -> tuple[np.ndarray, np.ndarray]:
    """Each member's raw mean and population std over `norm_samples` answers of the initial
    policy to the training prompts: (K,), (K,). Cached per member, so every objective and KL
    penalty of one seed (and a bigger ensemble's old members) reuse them; the answers are drawn
    only when a member is missing."""
    cfg, pc = ctx.cfg, ctx.cfg.ppo
    seq = stage_seed(cfg.seed, "ppo-norm")
    answers_key = norm_answers_key(cfg, sft_key)
    drawn: dict[str, np.ndarray] = {}

    def answers() -> tuple[np.ndarray, np.ndarray]:
        if not drawn:
            drawn["idx"] = np.random.default_rng(seq).choice(train_prompts, size=pc.norm_samples)
            gen = torch_generator(seq, ctx.device)
            drawn["answers"] = sample_answers(ctx.policy, ctx.world, drawn["idx"], gen)
        return drawn["idx"], drawn["answers"]

    stats = []
    for proxy, key in zip(proxies, member_keys, strict=True):

        def build(folder, proxy=proxy) -> None:
            idx, ans = answers()
            raw = score(proxy, ctx.world, idx, ans)  # (norm_samples,)
            (folder / "standardization.json").write_text(
                json.dumps({"mean": float(raw.mean()), "std": float(raw.std())})
            )

        folder = ctx.cache.get_or_create("ppo_norm", norm_key(key, answers_key), build)
        stats.append(json.loads((folder / "standardization.json").read_text()))
    mu = np.array([s["mean"] for s in stats])
    sd = np.array([s["std"] for s in stats])
    return mu, np.where(sd > 0, sd, 1.0)


def run_ppo(
    ctx: RunContext, proxies: list, reward_models: list[dict], member_keys: list[str], sft_key: str
) -> tuple[dict, dict]:
    """PPO for `ctx.cfg` against the trained proxies; returns (result, arrays) like best-of-n.
    The engine runs it on one torch thread (backend/runtime.py): on the idle 2-core machine two
    threads were only about 1.4x faster, and on the same machine busy with other work they made a
    PPO step up to 15x slower (0.27 s against 4.6 s; benchmarks/bench_ppo.py compares the two).

    Standardization: each member to mean 0, std 1 (population) over `norm_samples` answers of the
    initial policy to the training prompts (what the reward sees at step 0); gold shifted and
    scaled so the initial policy's answers to the held-out prompts (step 0's evaluation) have
    mean 0 and std 1. The held-out prompts depend on the seed only, so every objective of one
    seed is evaluated on the same prompts, with the same sampling seed at each step.
    """
    cfg, pc, world, device = ctx.cfg, ctx.cfg.ppo, ctx.world, ctx.device
    objective = Objective.of_ppo(pc)
    t0 = time.perf_counter()

    eval_prompts, train_prompts = ctx.heldout_prompts(pc.eval_prompts)

    def member_scores(prompt_idx: np.ndarray, answers: np.ndarray) -> np.ndarray:
        return np.stack([score(p, world, prompt_idx, answers) for p in proxies], -1)  # (B, K)

    ctx.stage("ppo", 0.4, "standardizing the proxies on the initial policy's answers")
    mu, sd = standardization(ctx, proxies, member_keys, sft_key, train_prompts)  # (K,) each
    for rm, m, s in zip(reward_models, mu, sd, strict=True):
        rm["standardization"] = {"mean": float(m), "std": float(s)}

    def reward_fn(prompt_idx: np.ndarray, answers: np.ndarray) -> np.ndarray:
        return objective((member_scores(prompt_idx, answers) - mu) / sd)  # (B,)

    ref = ctx.policy.eval()
    policy = copy.deepcopy(ref)
    value = ValueModel(ref)
    points, samples, final = [], [], {}
    gold_norm: dict[str, float] = {}
    prompts = world.prompts()

    def evaluate(step: int) -> None:
        t_eval = time.perf_counter()
        seq = stage_seed(cfg.seed, "ppo-eval", step)  # equal across objectives: less noise
        P, N = len(eval_prompts), pc.eval_samples
        flat = np.repeat(eval_prompts, N)  # (P*N,)
        answers = sample_answers(policy, world, flat, torch_generator(seq, device))  # (P*N, T)
        kl = sequence_kl(policy, ref, world, flat, answers).cpu().numpy()  # (P*N,)
        gold_raw = world.gold(flat, answers)
        if step == 0:
            gold_norm.update(mean=float(gold_raw.mean()), std=float(gold_raw.std() or 1.0))
        gold = (gold_raw - gold_norm["mean"]) / gold_norm["std"]  # (P*N,)
        members = (member_scores(flat, answers) - mu) / sd  # (P*N, K)
        proxy = objective(members)
        points.append(
            {
                "step": step,
                "kl": float(kl.mean()),
                "gold": float(gold.mean()),
                "proxy": float(proxy.mean()),
                "proxy_mean": float(members.mean()),
                "gold_se": float(gold.std(ddof=1) / np.sqrt(len(gold))),
            }
        )
        i = np.arange(min(pc.show_samples, P * N))
        show = (i % P) * N + i // P  # answers of different prompts first
        text = world.decode_answers(answers[show])
        for j, a in zip(show, text, strict=True):
            samples.append(
                {
                    "step": step,
                    "prompt": prompts[flat[j]],
                    "answer": a,
                    "gold": float(gold[j]),
                    "proxy": float(proxy[j]),
                    "members": [float(x) for x in members[j]],
                    "kl": float(kl[j]),
                }
            )
        final.update(gold=gold.reshape(P, N), proxy=members.reshape(P, N, -1), answers=answers)
        ctx.add_time("ppo_eval_s", time.perf_counter() - t_eval)

    def on_step(step: int, stats: dict) -> None:
        last = points[-1] if points else None
        msg = f"PPO step {step}/{pc.steps}"
        if last is not None:
            msg += f" (step {last['step']}: gold {last['gold']:+.2f}, kl {last['kl']:.2f})"
        ctx.stage("ppo", 0.45 + 0.55 * step / pc.steps, msg)

    def restore_log(state: dict, arrays: dict) -> None:
        points[:], samples[:] = state["points"], state["samples"]
        gold_norm.update(state["gold_norm"])
        final.update(arrays)

    def dump_log() -> tuple[dict, dict]:
        return {"points": points, "samples": samples, "gold_norm": gold_norm}, final

    checkpoint = Checkpoint.of_run(ctx.cache, cfg.to_dict(), device)
    resumable = Resumable(checkpoint, dump_log, restore_log) if checkpoint else None
    ctx.timings["ppo_norm_s"] = time.perf_counter() - t0
    t_train = time.perf_counter()
    history = train_ppo(
        policy, ref, value, world, reward_fn, pc, train_prompts,
        np.random.default_rng(stage_seed(cfg.seed, "ppo")),
        torch_generator(stage_seed(cfg.seed, "ppo-rollout"), device),
        evaluate, on_step, resumable,
    )  # fmt: skip
    ctx.timings["ppo_s"] = time.perf_counter() - t_train - ctx.timings["ppo_eval_s"]
    if checkpoint is not None:
        checkpoint.clear()  # finished: nothing to resume

    kl_label = f"KL target {pc.kl_target:g}" if pc.kl_target > 0 else f"beta={pc.kl_coef:g}"
    curve = {
        "method": "ppo",
        **objective.to_dict(),
        "label": f"{objective.label}, {kl_label}",
        "kl_coef": pc.kl_coef,
        "kl_target": pc.kl_target,
        "points": points,
    }
    curve["fit"] = fit_curve(curve)  # Gao et al.'s RL form
    result = {
        "normalization": {
            "gold": gold_norm,
            "convention": "each member standardized over the initial policy's answers to the "
            f"training prompts ({pc.norm_samples} answers, population std); gold over the "
            "initial policy's answers to the held-out prompts (step 0); UWO uses the population "
            "variance over members",
        },
        "prompts": {
            "eval": [prompts[i] for i in eval_prompts],
            "train": [prompts[i] for i in train_prompts],
        },
        "curves": [curve],
        "samples": samples,
        "training": [{k: round(v, 5) for k, v in h.items()} for h in history],
    }
    if checkpoint is not None and (resumable.resumed_at is not None or checkpoint.problem):
        result["checkpoint"] = {
            "resumed_at_step": resumable.resumed_at,
            "problem": checkpoint.problem,
        }
    arrays = {  # the final policy's answers to the held-out prompts, in best-of-n's layout
        "gold": final["gold"],
        "proxy": final["proxy"],
        "prompt_idx": eval_prompts,
        "answers": final["answers"].reshape(len(eval_prompts), pc.eval_samples, -1),
        "prompts": np.array([prompts[i] for i in eval_prompts]),
        "vocab": world.vocab(),
    }
    return result, arrays
