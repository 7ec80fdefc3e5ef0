"""Preference pairs: two answers of the initial policy to one prompt, labelled by the gold reward.

The higher gold answer wins; gold ties are broken at random. Label noise flips exactly
round(label_noise * pairs) training labels, chosen at random; held-out labels stay clean.
Shapes: M pairs, T answer tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.config import PreferenceConfig
from backend.policy import sample_answers
from backend.worlds.base import World


@dataclass
class PreferenceSplit:
    prompt_idx: np.ndarray  # (M,)
    chosen: np.ndarray  # (M, T) the answer the (possibly noisy) label prefers
    rejected: np.ndarray  # (M, T)
    flipped: np.ndarray  # (M,) bool: the label was flipped by noise (chosen has lower gold)
    gold_tie: np.ndarray  # (M,) bool: both answers have the same gold (label was a coin flip)

    def __len__(self) -> int:
        return len(self.prompt_idx)

    def take(self, rows: np.ndarray) -> PreferenceSplit:
        """The pairs at these rows, in that order (repeats allowed: a bootstrap sample)."""
        return PreferenceSplit(**{k: v[rows] for k, v in self.__dict__.items()})

    def save(self, path: Path) -> None:
        np.savez(path, **self.__dict__)

    @classmethod
    def load(cls, path: Path) -> PreferenceSplit:
        with np.load(path) as z:
            return cls(**{k: z[k] for k in z.files})


def label_pairs(
    gold_a: np.ndarray, gold_b: np.ndarray, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels for M pairs: (a_wins (M,) bool, flipped (M,) bool, tie (M,) bool).

    a_wins is the clean label (higher gold wins, ties at random) with exactly
    round(noise * M) of them flipped.
    """
    M = len(gold_a)
    tie = gold_a == gold_b
    clean = np.where(tie, rng.random(M) < 0.5, gold_a > gold_b)
    flipped = np.zeros(M, dtype=bool)
    flipped[rng.permutation(M)[: round(noise * M)]] = True
    return clean ^ flipped, flipped, tie


def make_preferences(
    world: World,
    policy,
    cfg: PreferenceConfig,
    seed_seq: np.random.SeedSequence,
) -> tuple[PreferenceSplit, PreferenceSplit]:
    """Train (noisy) and held-out (clean) pairs from the initial policy."""
    rng = np.random.default_rng(seed_seq)
    gen = torch.Generator(device=next(policy.parameters()).device)
    gen.manual_seed(int(rng.integers(2**62)))
    splits = []
    for m, noise in ((cfg.pairs, cfg.label_noise), (cfg.eval_pairs, 0.0)):
        prompt_idx = rng.integers(0, len(world.prompts()), size=m)  # (M,)
        both = sample_answers(policy, world, np.concatenate([prompt_idx, prompt_idx]), gen)
        a, b = both[:m], both[m:]  # (M, T) each
        a_wins, flipped, tie = label_pairs(
            world.gold(prompt_idx, a), world.gold(prompt_idx, b), noise, rng
        )
        chosen = np.where(a_wins[:, None], a, b)
        rejected = np.where(a_wins[:, None], b, a)
        splits.append(PreferenceSplit(prompt_idx, chosen, rejected, flipped, tie))
    return splits[0], splits[1]
