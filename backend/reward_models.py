"""Proxy reward models: GPT-2 sequence classifiers initialized from the SFT backbone.

A proxy keeps the SFT policy's first `layers` transformer blocks (its capacity) and puts a newly
initialized one-output head on the last answer token (EOS, found as the last non-PAD token).
Members differ only by seed: head init and data order (Coste et al.). The model returns scores
only; the Bradley-Terry loss lives in `train_proxy` (as in AlpacaFarm).
Shapes: B sequences, M pairs, T answer tokens, K members.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

from backend.config import RewardModelConfig
from backend.preferences import PreferenceSplit
from backend.worlds.base import World


def build_proxy(sft: GPT2LMHeadModel, layers: int, seed: int) -> GPT2ForSequenceClassification:
    cfg = copy.deepcopy(sft.config)
    cfg.n_layer = layers
    cfg.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the head's init; the backbone is copied below
        proxy = GPT2ForSequenceClassification(cfg)
    keep = {
        k: v
        for k, v in sft.transformer.state_dict().items()
        if not k.startswith("h.") or int(k.split(".")[1]) < layers
    }
    proxy.transformer.load_state_dict(keep, strict=True)
    return proxy.to(next(sft.parameters()).device)


def _inputs(world: World, prompt_idx: np.ndarray, answers: np.ndarray, device) -> torch.Tensor:
    prompt = world.prompt_ids(prompt_idx)  # (B, Tp)
    return torch.cat([prompt, torch.as_tensor(answers)], dim=1).to(device)  # (B, Tp+T)


def train_proxy(
    proxy: GPT2ForSequenceClassification,
    world: World,
    train: PreferenceSplit,
    cfg: RewardModelConfig,
    generator: torch.Generator,
) -> list[float]:
    """Bradley-Terry training: loss = -log sigmoid(r_chosen - r_rejected) + l2 * mean(r^2).

    Returns the mean loss of each epoch.
    """
    device = next(proxy.parameters()).device
    chosen = _inputs(world, train.prompt_idx, train.chosen, device)  # (M, Tp+T)
    rejected = _inputs(world, train.prompt_idx, train.rejected, device)  # (M, Tp+T)
    M = chosen.shape[0]
    opt = torch.optim.AdamW(proxy.parameters(), lr=cfg.lr, weight_decay=0.0)
    proxy.train()
    losses = []
    for _ in range(cfg.epochs):
        order = torch.randperm(M, generator=generator).to(device)
        total = 0.0
        for start in range(0, M, cfg.batch_size):
            mb = order[start : start + cfg.batch_size]
            scores = proxy(torch.cat([chosen[mb], rejected[mb]])).logits.squeeze(-1)  # (2B,)
            r_c, r_r = scores.chunk(2)  # (B,) each
            loss = -F.logsigmoid(r_c - r_r).mean() + cfg.score_l2 * scores.pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(mb)
        losses.append(total / M)
    proxy.eval()
    return losses


@torch.no_grad()
def score(
    proxy: GPT2ForSequenceClassification,
    world: World,
    prompt_idx: np.ndarray,
    answers: np.ndarray,
    batch_size: int = 2048,
) -> np.ndarray:
    """Raw (unstandardized) scores: (B,), (B, T) -> (B,) float64."""
    device = next(proxy.parameters()).device
    out = []
    for start in range(0, len(prompt_idx), batch_size):
        sl = slice(start, start + batch_size)
        ids = _inputs(world, prompt_idx[sl], answers[sl], device)
        out.append(proxy(ids).logits.squeeze(-1).float().cpu())
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def heldout_accuracy(
    proxy: GPT2ForSequenceClassification, world: World, heldout: PreferenceSplit
) -> float:
    """Agreement with the clean gold labels on held-out pairs whose gold differs.

    An exact score tie counts as half right (the proxy cannot tell them apart).
    """
    keep = ~heldout.gold_tie
    idx = heldout.prompt_idx[keep]
    r_c = score(proxy, world, idx, heldout.chosen[keep])
    r_r = score(proxy, world, idx, heldout.rejected[keep])
    return float(np.mean((r_c > r_r) + 0.5 * (r_c == r_r)))


def unique_rows(prompt_idx: np.ndarray, answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the distinct (prompt, answer) rows and the map back: answers[first][inverse]
    recovers every row. Sampled answers repeat a lot in a toy world; scoring each once is faster.
    """
    rows = np.concatenate([prompt_idx[:, None], answers], axis=1)  # (B, 1+T)
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)
