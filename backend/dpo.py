"""Direct alignment (DPO, IPO, SLiC) on the experiment's preference pairs, in the style of
cleanrl: one file, read top to bottom. No reward model is trained: the policy's own log-ratio
against the frozen reference is its reward.

The implicit reward of an answer y to a prompt x is r(x, y) = beta * log pi(y|x) / pi_ref(y|x),
the sum over y's generated tokens of beta * (log pi - log pi_ref). On a pair (chosen y_w,
rejected y_l) with h = log pi/pi_ref (y_w) - log pi/pi_ref (y_l), so that beta h is the implicit
reward margin, the losses are (`preference_loss`):
  dpo   -log sigmoid(beta h)                      Rafailov et al. 2023
  ipo   (h - 1 / (2 beta))^2                      Azar et al. 2023 (sequence log-ratios)
  slic  max(0, 1 - beta h)                        Zhao et al. 2023 (the hinge, no SFT term)

One step (`dpo_step`):
  1. log-probs   log pi of the B chosen and B rejected answers, one forward pass of 2B rows
  2. margin      the implicit rewards against the reference's log-probs (computed once for
                 every pair before training: the reference is frozen), their margin h
  3. loss        the chosen loss of h, averaged over the B pairs
  4. update      Adam, the gradient norm clipped to `max_grad_norm`
Every `eval_every` steps, at `first_epoch_evals` even fractions of the first epoch, at step 0 and
at the last step, the policy is evaluated on held-out prompts: gold of its samples, KL(pi || pi_ref)
on those samples (as for PPO), and the implicit reward's accuracy and margin on the held-out
clean pairs; the proxies score the samples too when the ensemble was trained.

Design choices, and why:
- The policy starts as a copy of the initial (SFT) policy; the reference is the frozen initial
  policy, as in PPO, so both methods measure KL from the same distribution.
- The pairs are the experiment's own (backend/preferences.py, with their label noise), the very
  pairs the proxies learn from, less those whose prompt is held out: the held-out prompts are
  PPO's (`RunContext.heldout_prompts`), and at step 0 the evaluation samples are PPO's too (the
  same seed stream), so gold is standardized exactly as in a PPO run of the same seed.
- Randomness: a numpy Generator (pair order) and a torch Generator on the model's device
  (sampling); one seed gives one curve on the CPU.

Shapes: M pairs, B pairs per step, T answer tokens, Tp prompt tokens, K members, P held-out
prompts, N answers per held-out prompt.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.config import DPO_LOSS_NAMES, DpoConfig
from backend.fits import fit_curve
from backend.objectives import standardize
from backend.policy import sample_answers
from backend.ppo import response_mask, sequence_ids, sequence_kl, token_logprobs
from backend.preferences import PreferenceSplit
from backend.reward_models import score
from backend.runtime import RunContext
from backend.seeding import stage_seed, torch_generator
from backend.worlds.base import World

# ---- the pieces, as plain functions (tested on hand-computed numbers) --------------------------


def sequence_logprobs(model, world: World, prompt_idx: np.ndarray, answers) -> torch.Tensor:
    """log pi(answer | prompt): the sum over the answer's generated tokens (up to and including
    the first EOS; PAD after it ignored): (B,), (B, T) -> (B,). Differentiable."""
    device = next(model.parameters()).device
    ids = sequence_ids(world, prompt_idx, answers, device)  # (B, Tp+T)
    mask = response_mask(ids[:, world.prompt_len :], world.eos_id)  # (B, T)
    inputs = world.model_inputs(prompt_idx, ids.shape[1], device)
    return (token_logprobs(model, ids, world.prompt_len, **inputs) * mask).sum(1)


@torch.no_grad()
def batched_logprobs(
    model, world: World, prompt_idx: np.ndarray, answers: np.ndarray, batch: int
) -> torch.Tensor:
    """sequence_logprobs in batches of `batch` rows, without gradients: (M,), (M, T) -> (M,)."""
    parts = [
        sequence_logprobs(model, world, prompt_idx[i : i + batch], answers[i : i + batch])
        for i in range(0, len(prompt_idx), batch)
    ]
    return torch.cat(parts) if parts else torch.zeros(0)


def implicit_reward(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """beta * log pi/pi_ref of whole answers, from their sequence log-probs: (B,) x2 -> (B,)."""
    return beta * (logp - ref_logp)


def preference_loss(h: torch.Tensor, beta: float, kind: str) -> torch.Tensor:
    """Per pair loss of the log-ratio margin h = log pi/pi_ref (chosen) - (rejected): (B,) ->
    (B,). kind: "dpo" (logistic), "ipo" (squared, target 1/(2 beta)), "slic" (hinge)."""
    if kind == "dpo":
        return -F.logsigmoid(beta * h)
    if kind == "ipo":
        return (h - 1.0 / (2.0 * beta)) ** 2
    if kind == "slic":
        return torch.relu(1.0 - beta * h)
    raise ValueError(f"loss must be one of {', '.join(DPO_LOSS_NAMES)}; got {kind!r}")


def pair_accuracy(r_chosen: np.ndarray, r_rejected: np.ndarray) -> float:
    """Share of pairs whose chosen answer has the higher reward; an exact tie counts as half
    (as for the proxies' held-out accuracy)."""
    return float(np.mean((r_chosen > r_rejected) + 0.5 * (r_chosen == r_rejected)))


def eval_schedule(steps_per_epoch: int, epochs: int, every: int, first_epoch: int) -> list[int]:
    """The steps evaluated: 0, every `every` steps, `first_epoch` even fractions of the first
    epoch (its end included) and the last step. Sorted, no repeats.

    >>> eval_schedule(100, 2, 50, 4)
    [0, 25, 50, 75, 100, 150, 200]
    """
    total = steps_per_epoch * epochs
    steps = {0, total, *range(0, total + 1, every)}
    steps |= {round(j * steps_per_epoch / first_epoch) for j in range(1, first_epoch + 1)}
    return sorted(s for s in steps if 0 <= s <= total)


# ---- one step ----------------------------------------------------------------------------------


@dataclass
class Pairs:
    """Preference pairs on the device's side: prompts, answers and the reference's log-probs."""

    prompt_idx: np.ndarray  # (M,)
    chosen: np.ndarray  # (M, T)
    rejected: np.ndarray  # (M, T)
    ref_chosen: torch.Tensor  # (M,) log pi_ref(chosen)
    ref_rejected: torch.Tensor  # (M,) log pi_ref(rejected)

    @classmethod
    def of(cls, ref, world: World, split: PreferenceSplit, keep: np.ndarray, batch: int) -> Pairs:
        """The pairs of `split` where `keep` (M,) bool, with the reference's log-probs."""
        idx, c, r = split.prompt_idx[keep], split.chosen[keep], split.rejected[keep]
        return cls(
            idx, c, r, batched_logprobs(ref, world, idx, c, batch),
            batched_logprobs(ref, world, idx, r, batch),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.prompt_idx)

    def implicit_rewards(self, policy, world: World, beta: float, batch: int):
        """The policy's implicit rewards of every chosen and rejected answer: (M,), (M,) numpy."""
        r_c, r_r = (
            implicit_reward(batched_logprobs(policy, world, self.prompt_idx, a, batch), ref, beta)
            for a, ref in ((self.chosen, self.ref_chosen), (self.rejected, self.ref_rejected))
        )
        return r_c.cpu().numpy(), r_r.cpu().numpy()


def dpo_step(
    policy, optimizer: torch.optim.Optimizer, world: World, pairs: Pairs, mb: np.ndarray,
    cfg: DpoConfig,
) -> dict[str, float]:  # fmt: skip
    """One update on the pairs `mb` (B,): log-probs, margin, loss, update. Returns its stats."""
    B = len(mb)
    # 1. log-probs of chosen and rejected, one forward pass
    idx = np.concatenate([pairs.prompt_idx[mb], pairs.prompt_idx[mb]])  # (2B,)
    answers = np.concatenate([pairs.chosen[mb], pairs.rejected[mb]])  # (2B, T)
    logp_c, logp_r = sequence_logprobs(policy, world, idx, answers).split(B)  # (B,) each
    # 2. the implicit rewards, against the reference's log-probs
    t = torch.as_tensor(mb, device=logp_c.device)
    r_c = implicit_reward(logp_c, pairs.ref_chosen[t], cfg.beta)  # (B,)
    r_r = implicit_reward(logp_r, pairs.ref_rejected[t], cfg.beta)  # (B,)
    # 3. the loss of their log-ratio margin h = (r_c - r_r) / beta
    loss = preference_loss((r_c - r_r) / cfg.beta, cfg.beta, cfg.loss).mean()
    # 4. update
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
    optimizer.step()
    with torch.no_grad():
        stats = torch.stack(
            [
                loss,
                ((r_c > r_r).float() + 0.5 * (r_c == r_r).float()).mean(),  # ties: half
                (r_c - r_r).mean(),
                r_c.mean(),
                r_r.mean(),
                logp_c.mean(),
                logp_r.mean(),
                grad_norm,
            ]
        ).tolist()  # one sync
    names = ("loss", "acc", "margin", "reward_chosen", "reward_rejected", "logp_chosen",
             "logp_rejected", "grad_norm")  # fmt: skip
    return dict(zip(names, stats, strict=True))


def train_dpo(
    policy,
    world: World,
    pairs: Pairs,
    cfg: DpoConfig,
    rng: np.random.Generator,
    evaluate: Callable[[int], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[dict]:
    """cfg.epochs passes over the pairs in batches of cfg.batch_size (a new order each epoch,
    the last batch of an epoch smaller when B does not divide M); evaluate(step) at the steps of
    `eval_schedule`; on_step(step) before each step and after the last (progress,
    cancellation). Returns the per-step statistics."""
    M, B = len(pairs), cfg.batch_size
    per_epoch = math.ceil(M / B)
    evals = set(eval_schedule(per_epoch, cfg.epochs, cfg.eval_every, cfg.first_epoch_evals))
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr, foreach=True)
    history: list[dict] = []
    step = 0
    for _ in range(cfg.epochs):
        order = rng.permutation(M)  # (M,)
        for start in range(0, M, B):
            if on_step is not None:
                on_step(step)
            if evaluate is not None and step in evals:
                evaluate(step)
            stats = dpo_step(policy, optimizer, world, pairs, order[start : start + B], cfg)
            step += 1
            history.append({"step": step, "epoch": step / per_epoch, **stats})
    if on_step is not None:
        on_step(step)
    if evaluate is not None:
        evaluate(step)
    return history


# ---- the experiment: DPO on the experiment's preference pairs ----------------------------------


def run_dpo(
    ctx: RunContext,
    train: PreferenceSplit,
    heldout: PreferenceSplit,
    proxies: list,
    reward_models: list[dict],
) -> tuple[dict, dict]:
    """DPO (or IPO, SLiC) for `ctx.cfg` on the noisy training pairs; the held-out clean pairs
    measure the implicit reward, `proxies` (none unless the ensemble was asked for) score the
    samples. Returns (result, arrays) like PPO. (The engine runs it on one torch thread:
    backend/runtime.py.)

    Standardization: gold shifted and scaled so the initial policy's answers to the held-out
    prompts (step 0's evaluation: the same answers as a PPO run's step 0) have mean 0 and std 1;
    each member likewise over those same answers (population std).
    """
    cfg, dc, world, device = ctx.cfg, ctx.cfg.dpo, ctx.world, ctx.device
    t0 = time.perf_counter()
    eval_prompts, train_prompts = ctx.heldout_prompts(dc.eval_prompts)
    prompts = world.prompts()

    ctx.stage("dpo", 0.45, "the reference policy's log-probs of every pair")
    ref = ctx.policy.eval()
    ref.requires_grad_(False)
    policy = copy.deepcopy(ref).requires_grad_(True)
    batch = 2 * dc.batch_size  # rows per forward pass, as in training
    pairs = Pairs.of(ref, world, train, np.isin(train.prompt_idx, train_prompts), batch)
    clean = Pairs.of(ref, world, heldout, ~heldout.gold_tie, batch)  # ties say nothing
    per_epoch = math.ceil(len(pairs) / dc.batch_size)
    total = per_epoch * dc.epochs
    ctx.timings["dpo_ref_s"] = time.perf_counter() - t0

    points, samples, final = [], [], {}
    norm: dict[str, np.ndarray] = {}

    def member_scores(prompt_idx: np.ndarray, answers: np.ndarray) -> np.ndarray:
        cols = [score(p, world, prompt_idx, answers) for p in proxies]  # K x (B,)
        return np.stack(cols, -1) if cols else np.zeros((len(prompt_idx), 0))  # (B, K)

    def evaluate(step: int) -> None:
        t_eval = time.perf_counter()
        seq = stage_seed(cfg.seed, "ppo-eval", step)  # PPO's stream: step 0 is PPO's sample
        P, N = len(eval_prompts), dc.eval_samples
        flat = np.repeat(eval_prompts, N)  # (P*N,)
        answers = sample_answers(policy, world, flat, torch_generator(seq, device))  # (P*N, T)
        kl = sequence_kl(policy, ref, world, flat, answers).cpu().numpy()  # (P*N,)
        gold_raw, raw = world.gold(flat, answers), member_scores(flat, answers)  # (P*N,) (P*N,K)
        if step == 0:  # the initial policy: what both are standardized over
            _, g_mu, g_sd = standardize(gold_raw)
            _, m_mu, m_sd = standardize(raw, axis=0)
            norm.update(gold_mean=g_mu, gold_std=g_sd, mu=m_mu, sd=m_sd)
        gold = (gold_raw - norm["gold_mean"]) / norm["gold_std"]  # (P*N,)
        members = (raw - norm["mu"]) / norm["sd"]  # (P*N, K)
        proxy = members.mean(1) if proxies else None  # (P*N,): the members' mean
        r_c, r_r = clean.implicit_rewards(policy, world, dc.beta, batch)  # (M,) each
        mean_proxy = float(proxy.mean()) if proxies else None
        points.append(
            {
                "step": step,
                "epoch": step / per_epoch,
                "kl": float(kl.mean()),
                "gold": float(gold.mean()),
                "proxy": mean_proxy,
                "proxy_mean": mean_proxy,
                "gold_se": float(gold.std(ddof=1) / np.sqrt(len(gold))) if len(gold) > 1 else 0.0,
                "implicit_acc": pair_accuracy(r_c, r_r),
                "implicit_margin": float((r_c - r_r).mean()),
            }
        )
        i = np.arange(min(dc.show_samples, P * N))
        show = (i % P) * N + i // P  # answers of different prompts first
        for j, text in zip(show, world.decode_answers(answers[show]), strict=True):
            sample = {
                "step": step,
                "epoch": step / per_epoch,
                "prompt": prompts[flat[j]],
                "answer": text,
                "gold": float(gold[j]),
                "proxy": float(proxy[j]) if proxies else None,
                "kl": float(kl[j]),
                "implicit_reward": float(dc.beta * kl[j]),
            }
            if proxies:
                sample["members"] = [float(x) for x in members[j]]
            samples.append(sample)
        final.update(gold=gold.reshape(P, N), proxy=members.reshape(P, N, -1), answers=answers)
        ctx.add_time("dpo_eval_s", time.perf_counter() - t_eval)

    def on_step(step: int) -> None:
        last = points[-1] if points else None
        msg = f"{DPO_LOSS_NAMES[dc.loss]} step {step}/{total} (epoch {step / per_epoch:.2f})"
        if last is not None:
            msg += f" (step {last['step']}: gold {last['gold']:+.2f}, kl {last['kl']:.2f})"
        ctx.stage("dpo", 0.5 + 0.5 * step / total, msg)

    t_train = time.perf_counter()
    history = train_dpo(
        policy, world, pairs, dc, np.random.default_rng(stage_seed(cfg.seed, "dpo")), evaluate,
        on_step,
    )  # fmt: skip
    ctx.timings["dpo_s"] = time.perf_counter() - t_train - ctx.timings["dpo_eval_s"]

    for rm, m, s in zip(reward_models, norm["mu"], norm["sd"], strict=True):
        rm["standardization"] = {"mean": float(m), "std": float(s)}
    curve = {
        "method": "dpo",
        "objective": dc.loss,
        "label": f"{DPO_LOSS_NAMES[dc.loss]}, beta={dc.beta:g}",
        "loss": dc.loss,
        "beta": dc.beta,
        "points": points,
    }
    curve["fit"] = fit_curve(curve)  # Gao et al.'s RL form
    result = {
        "normalization": {
            "gold": {"mean": float(norm["gold_mean"]), "std": float(norm["gold_std"])},
            "convention": "gold and each member standardized over the initial policy's answers "
            "to the held-out prompts (step 0; population std); proxy = the mean of the "
            "standardized members (null when the ensemble was not trained)",
        },
        "prompts": {
            "eval": [prompts[i] for i in eval_prompts],
            "train": [prompts[i] for i in train_prompts],
        },
        "pairs": {
            "train": len(pairs),
            "train_all": len(train.prompt_idx),
            "heldout_clean": len(clean),
            "steps_per_epoch": per_epoch,
            "steps": total,
        },
        "curves": [curve],
        "samples": samples,
        "training": [{k: round(v, 5) for k, v in h.items()} for h in history],
    }
    arrays = {  # the final policy's answers to the held-out prompts, in best-of-n's layout
        "gold": final["gold"],
        "proxy": final["proxy"],
        "prompt_idx": eval_prompts,
        "answers": final["answers"].reshape(len(eval_prompts), dc.eval_samples, -1),
        "prompts": np.array([prompts[i] for i in eval_prompts]),
        "vocab": world.vocab(),
    }
    return result, arrays
