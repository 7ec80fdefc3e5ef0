"""Proxy reward models: training (Bradley-Terry), scoring and held-out accuracy for any proxy, a
module whose forward maps prompt + answer ids (B, Tp+T) to raw scores (B,).

Toy proxies (`build_proxy`) keep the SFT policy's first `layers` transformer blocks (their
capacity) under a newly initialized one-output head read at the last answer token (EOS, the last
non-PAD token): backend/tinygpt.py's GPTScorer. The hf world's proxies score text with their own
model and tokenizer (backend/worlds/hf/world.py TextProxy). The model returns scores only; the
loss lives in `train_proxy` (as in AlpacaFarm).
Shapes: B sequences, M pairs, T answer tokens, K members.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from backend import proxy_step
from backend.config import RewardModelConfig
from backend.preferences import PreferenceSplit
from backend.rows import distinct_rows
from backend.tinygpt import GPTModel, GPTScorer
from backend.worlds.base import World


def build_proxy(sft: GPTModel, layers: int, seed: int) -> GPTScorer:
    """The SFT policy's embeddings, first `layers` blocks and final norm under a score head
    drawn from N(0, initializer_range^2) with `seed` (GPT-2's initialization of a head)."""
    proxy = GPTScorer(dataclasses.replace(sft.config, n_layer=layers))
    keep = {
        k: v
        for k, v in sft.transformer.state_dict().items()
        if not k.startswith("h.") or int(k.split(".")[1]) < layers
    }
    proxy.transformer.load_state_dict(keep, strict=True)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        proxy.score.weight.normal_(0.0, sft.config.initializer_range, generator=gen)
    return proxy.to(sft.device)


def _inputs(world: World, prompt_idx: np.ndarray, answers: np.ndarray, device) -> torch.Tensor:
    prompt = world.prompt_ids(prompt_idx)  # (B, Tp)
    return torch.cat([prompt, torch.as_tensor(answers)], dim=1).to(device)  # (B, Tp+T)


def train_proxy(
    proxy: torch.nn.Module,
    world: World,
    train: PreferenceSplit,
    cfg: RewardModelConfig,
    generator: torch.Generator,
    heldout: PreferenceSplit | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, list[float]]:
    """Bradley-Terry training: loss = -log sigmoid(r_chosen - r_rejected) + l2 * mean(r^2),
    fused AdamW (no weight decay), minibatches in an order drawn from `generator`. One-block
    toy proxies take backend/proxy_step.py's written-out backward (the same gradient, about 2x
    faster); others go through autograd.

    Returns {"train_loss": the mean training loss of each epoch (penalty included),
    "heldout_loss": the Bradley-Terry loss on the clean held-out pairs after each epoch (no
    penalty; empty without `heldout`)}. on_batch(done, total) after each minibatch (progress;
    it draws no random numbers, so the numbers do not depend on it).
    """
    device = next(proxy.parameters()).device
    # Dropout (transformers' proxy bases have it; toy proxies do not) draws from torch's global
    # generator: seed it from this member's stream, and give the caller's state back after.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(generator.initial_seed())
        return _train(proxy, world, train, cfg, generator, heldout, on_batch)


def _train(proxy, world, train, cfg, generator, heldout, on_batch) -> dict[str, list[float]]:
    device = next(proxy.parameters()).device
    chosen = _inputs(world, train.prompt_idx, train.chosen, device)  # (M, Tp+T)
    rejected = _inputs(world, train.prompt_idx, train.rejected, device)  # (M, Tp+T)
    M = chosen.shape[0]
    if proxy_step.supports(proxy):  # a one-block toy proxy: the backward written out
        fast = proxy_step.ProxyStep(proxy, cfg.lr, cfg.score_l2)
        fast.prepare(chosen, rejected)
        step = fast
    else:
        fast = None
        opt = torch.optim.AdamW(proxy.parameters(), lr=cfg.lr, weight_decay=0.0, fused=True)

        def step(mb: torch.Tensor) -> torch.Tensor:
            scores = proxy(torch.cat([chosen[mb], rejected[mb]]))  # (2B,)
            r_c, r_r = scores.chunk(2)  # (B,) each
            loss = -F.logsigmoid(r_c - r_r).mean() + cfg.score_l2 * scores.pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.detach()

    out: dict[str, list[float]] = {"train_loss": [], "heldout_loss": []}
    batches, done = cfg.epochs * math.ceil(M / cfg.batch_size), 0
    try:
        for _ in range(cfg.epochs):
            proxy.train()
            order = torch.randperm(M, generator=generator).to(device)
            total = torch.zeros((), device=device)
            if fast is not None:
                minibatches = fast.batches(order, cfg.batch_size)
            else:
                minibatches = [order[s : s + cfg.batch_size] for s in range(0, M, cfg.batch_size)]
            for mb in minibatches:
                total += step(mb) * (mb.pairs if fast is not None else len(mb))
                done += 1
                if on_batch is not None:
                    on_batch(done, batches)
            out["train_loss"].append(float(total) / M)
            if heldout is not None:
                proxy.eval()
                out["heldout_loss"].append(heldout_loss(proxy, world, heldout))
    finally:
        if fast is not None:
            fast.release()
    proxy.eval()
    return out


@torch.no_grad()
def score(
    proxy: torch.nn.Module,
    world: World,
    prompt_idx: np.ndarray,
    answers: np.ndarray,
    batch_size: int = 1024,
) -> np.ndarray:
    """Raw (unstandardized) scores: (B,), (B, T) -> (B,) float64. (Batches of 1024 ran 1.5x
    faster than 2048 on this CPU: they stay in cache.)"""
    device = next(proxy.parameters()).device
    # One-block toy proxies: the first block's keys and values once per (token, position).
    forward = partial(proxy_step.scores, proxy) if proxy_step.supports(proxy) else proxy
    out = []
    for start in range(0, len(prompt_idx), batch_size):
        sl = slice(start, start + batch_size)
        ids = _inputs(world, prompt_idx[sl], answers[sl], device)
        out.append(forward(ids).float().cpu())
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def _heldout_scores(proxy, world: World, heldout: PreferenceSplit) -> tuple[np.ndarray, ...]:
    """Scores of the chosen and rejected answers of the held-out pairs whose gold differs."""
    keep = ~heldout.gold_tie
    idx = heldout.prompt_idx[keep]
    return score(proxy, world, idx, heldout.chosen[keep]), score(
        proxy, world, idx, heldout.rejected[keep]
    )


def heldout_accuracy(proxy: torch.nn.Module, world: World, heldout: PreferenceSplit) -> float:
    """Agreement with the clean gold labels on held-out pairs whose gold differs.

    An exact score tie counts as half right (the proxy cannot tell them apart).
    """
    r_c, r_r = _heldout_scores(proxy, world, heldout)
    return float(np.mean((r_c > r_r) + 0.5 * (r_c == r_r)))


def heldout_loss(proxy: torch.nn.Module, world: World, heldout: PreferenceSplit) -> float:
    """Mean Bradley-Terry loss -log sigmoid(r_chosen - r_rejected) on the held-out pairs whose
    gold differs, with their clean labels (log 2 = 0.693: a proxy that knows nothing)."""
    r_c, r_r = _heldout_scores(proxy, world, heldout)
    return float(np.mean(np.logaddexp(0.0, -(r_c - r_r))))


def unique_rows(prompt_idx: np.ndarray, answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the distinct (prompt, answer) rows and the map back: answers[first][inverse]
    recovers every row. Sampled answers repeat a lot in a toy world; scoring each once is faster.
    """
    return distinct_rows(np.concatenate([prompt_idx[:, None], answers], axis=1))  # (B, 1+T)
