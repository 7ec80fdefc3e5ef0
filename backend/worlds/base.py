"""What a world is: prompts, a tokenizer and a gold reward, and how the engine builds on it.

Shapes: B (prompt, answer) rows, T answer tokens. Answers are token-id arrays of the world's
tokenizer, ended by EOS and right-padded with PAD; an answer that reaches `max_answer_tokens`
without EOS is simply cut there.

The engine (backend/experiment.py) asks the world for everything that differs between worlds:
how it is built from a config (`from_config`), what to check before a run (`check_config`,
`count_prompts`), the initial policy (`initial_policy`) and a new proxy (`new_proxy`). A world
with an SFT answer distribution (the toy worlds) derives from backend/worlds/sft.py's SftWorld,
which implements those from its shipped SFT policy; the Hugging Face world loads them instead.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from backend.batching import AdaptiveBatch
from backend.cache import ArtifactCache
from backend.config import ConfigError, ExperimentConfig, RewardModelConfig

# decode_tokens lives in backend/worlds/text.py (no torch: the app reads answers with it).
from backend.worlds.text import EOS, PAD, STOP_TOKENS, UNK, decode_tokens  # noqa: F401

SAMPLE_BATCH = 4096  # answers sampled per batch (halved on CUDA out-of-memory)


class World(ABC):
    """A prompt distribution and a gold reward behind one interface, and what the engine needs
    to run an experiment in it."""

    name: ClassVar[str]
    #: Bump when what the world's artifacts depend on changes: cache keys include it.
    version: ClassVar[int] = 1
    #: One paragraph a person can read: what the gold reward rewards and punishes.
    gold_description: ClassVar[str]
    #: Number of tokens of every prompt (toy worlds use fixed-length prompts: no padding needed).
    prompt_len: ClassVar[int]
    #: Longest answer in tokens, EOS included.
    max_answer_tokens: ClassVar[int]
    #: Prompts are left-padded to prompt_len (the hf world): models then need `model_inputs`.
    pads_prompts: ClassVar[bool] = False
    #: Independent pieces of a run (members, prompts) may run side by side in threads: true when
    #: building and running the world's models touches no process-wide state (torch's global
    #: generator, transformers' loading switches), so numbers do not depend on the thread count.
    thread_safe: ClassVar[bool] = False

    tokenizer: WordTokenizer  # the hf world: a transformers tokenizer, which has the same methods

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @abstractmethod
    def prompts(self) -> list[str]:
        """Every prompt of the world, in a fixed order; prompts are referred to by index."""

    @abstractmethod
    def gold(self, prompt_idx: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """The gold reward of each answer, vectorized: (B,), (B, T) -> (B,) float64."""

    # ---- what the engine asks of a world ------------------------------------------------------

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: ExperimentConfig, device: torch.device) -> World:
        """The world of a config (toy worlds: one shared instance; the hf world: built from
        cfg.hf on `device`)."""

    @classmethod
    def check_config(cls, cfg: ExperimentConfig) -> None:
        """What must hold before a run that reading files or the network can tell (once per
        submission, not on every keystroke). Raises ConfigError naming the option. Worlds that
        read nothing have nothing to check."""
        return None

    @classmethod
    def check_paths(cls, cfg: ExperimentConfig, allowed: Sequence[Path]) -> None:
        """For a server shared with others (app/access.py): refuse, with a ConfigError naming
        the option, every file or folder of this machine the config would read outside the
        `allowed` folders, before looking at it, so the answer says nothing about what exists
        elsewhere. Worlds that read no files have nothing to refuse."""
        return None

    @classmethod
    def count_prompts(cls, cfg: ExperimentConfig) -> int:
        """How many prompts the world of this config has."""
        return len(cls.from_config(cfg, torch.device("cpu")).prompts())

    #: What the progress line says while the initial policy loads.
    initial_policy_message: str = "loading the initial policy"

    @abstractmethod
    def initial_policy(self, cfg: ExperimentConfig, cache: ArtifactCache, device: torch.device):
        """(policy, key): the initial policy on `device` and the cache key of what it is."""

    def initial_policy_key(self, cfg: ExperimentConfig) -> str | None:
        """The cache key `initial_policy` returns, without loading or training anything (for the
        cost estimate, backend/estimate.py); None when it is not known before loading."""
        return None

    def has_initial_policy(self, cfg: ExperimentConfig, cache: ArtifactCache) -> bool:
        """Whether the initial policy is at hand (shipped or cached), so nothing is trained."""
        return True

    @abstractmethod
    def new_proxy(self, policy, cfg: RewardModelConfig, seed: int):
        """An untrained proxy reward model with a head initialized from `seed` (`policy`: the
        initial policy, for worlds whose proxies start from it)."""

    def member_backbone(self, cfg: ExperimentConfig, member: int, cache: ArtifactCache, device):
        """(model, key): the backbone of member `member` of a "pretrain" ensemble, its own
        pretraining run. Worlds without one say so (ConfigError naming --diversity)."""
        raise ConfigError("--diversity", f"the world {self.name} has no pretraining runs")

    def member_backbone_key(self, cfg: ExperimentConfig, member: int) -> str | None:
        """The key `member_backbone` would return, without loading or training (None: unknown)."""
        return None

    def has_member_backbone(self, cfg: ExperimentConfig, member: int, cache: ArtifactCache) -> bool:
        """Whether `member_backbone` would load (True) rather than train; nothing is loaded."""
        return False

    def proxy_key_parts(self) -> tuple:
        """What a proxy depends on beyond the preference data and RewardModelConfig, for its
        cache key (nothing for worlds whose proxies come from the initial policy)."""
        return ()

    # ---- shared helpers ------------------------------------------------------------------------

    @cached_property
    def sample_batch(self) -> AdaptiveBatch:
        return AdaptiveBatch(SAMPLE_BATCH)

    @cached_property
    def _prompt_table(self) -> torch.Tensor:
        return torch.tensor(
            [self.tokenizer.encode(p, add_special_tokens=False) for p in self.prompts()]
        )  # (num_prompts, prompt_len)

    def prompt_ids(self, prompt_idx: np.ndarray) -> torch.Tensor:
        """Token ids of the prompts: (B,) -> (B, prompt_len)."""
        return self._prompt_table[torch.as_tensor(np.asarray(prompt_idx), dtype=torch.long)]

    def model_inputs(self, prompt_idx: np.ndarray, length: int, device) -> dict:
        """Extra model arguments (attention mask, position ids) for prompt + answer rows of
        `length` tokens. None for fixed-length prompts: the toy worlds call models on ids alone."""
        return {}

    @cached_property
    def _vocab(self) -> np.ndarray:
        return np.array(self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer)))))

    def vocab(self) -> np.ndarray:
        """Token strings by id: (V,) (stored with score matrices so answers can be read)."""
        return self._vocab

    def decode_answers(self, answers: np.ndarray) -> list[str]:
        """Readable text of answers (B, T): tokens up to EOS, PAD dropped, EOS not shown."""
        return decode_tokens(answers, self.vocab())

    def answer_lengths(self, answers: np.ndarray) -> np.ndarray:
        """Number of word tokens before EOS/PAD: (B, T) -> (B,)."""
        stop = (answers == self.eos_id) | (answers == self.pad_id)  # (B, T)
        has_stop = stop.any(axis=1)
        return np.where(has_stop, stop.argmax(axis=1), answers.shape[1])


class WordTokenizer:
    """A whitespace word-level tokenizer over a fixed vocabulary, special tokens first (PAD = 0,
    EOS, UNK), with the part of transformers' tokenizer interface the engine uses (so the hf
    world's transformers tokenizers and this one are used alike). Plain Python: the toy worlds
    start without importing transformers (about a second)."""

    pad_token, eos_token, unk_token = PAD, EOS, UNK

    def __init__(self, words: list[str]) -> None:
        self._tokens = [PAD, EOS, UNK, *words]
        self._ids = {w: i for i, w in enumerate(self._tokens)}
        if len(self._ids) != len(self._tokens):
            raise ValueError("a word-level vocabulary needs distinct words")
        self.pad_token_id, self.eos_token_id, self.unk_token_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self._tokens)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self._ids.get(w, self.unk_token_id) for w in text.split()]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        special = {self.pad_token_id, self.eos_token_id, self.unk_token_id}
        keep = [int(i) for i in ids if not (skip_special_tokens and int(i) in special)]
        return " ".join(self._tokens[i] for i in keep)

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, int | np.integer):
            return self._tokens[int(ids)]
        return [self._tokens[int(i)] for i in ids]

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self._ids.get(tokens, self.unk_token_id)
        return [self._ids.get(t, self.unk_token_id) for t in tokens]


def word_level_tokenizer(words: list[str]) -> WordTokenizer:
    """A whitespace word-level tokenizer over a fixed vocabulary (special tokens first: PAD=0)."""
    return WordTokenizer(words)


def inside(path: str, allowed: Sequence[Path]) -> bool:
    """Whether `path` (~ expanded, symbolic links resolved) lies in one of the `allowed`
    folders."""
    real = os.path.realpath(os.path.expanduser(path))
    for folder in allowed:
        root = os.path.realpath(folder)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False
