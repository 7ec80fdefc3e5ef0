"""What a world is: prompts, a tokenizer, the SFT answer distribution and the gold reward.

Shapes: B (prompt, answer) rows, T answer tokens. Answers are token-id arrays of the world's
tokenizer, ended by EOS and right-padded with PAD; an answer that reaches `max_answer_tokens`
without EOS is simply cut there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import ClassVar

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, EOS, UNK = "[PAD]", "[EOS]", "[UNK]"


class World(ABC):
    """A prompt distribution, an SFT answer distribution and a gold reward, behind one interface."""

    name: ClassVar[str]
    #: Bump when the SFT distribution changes: cached and shipped SFT policies are keyed by it.
    version: ClassVar[int] = 1
    #: One paragraph a person can read: what the gold reward rewards and punishes.
    gold_description: ClassVar[str]
    #: Number of tokens of every prompt (toy worlds use fixed-length prompts: no padding needed).
    prompt_len: ClassVar[int]
    #: Longest answer in tokens, EOS included.
    max_answer_tokens: ClassVar[int]
    #: Prompts are left-padded to prompt_len (the hf world): models then need `model_inputs`.
    pads_prompts: ClassVar[bool] = False

    tokenizer: PreTrainedTokenizerFast

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
    def sample_sft_answers(self, prompt_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Answers drawn from the SFT distribution for the given prompts: (B,) -> (B, T) int64."""

    @abstractmethod
    def gold(self, prompt_idx: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """The gold reward of each answer, vectorized: (B,), (B, T) -> (B,) float64."""

    # ---- shared helpers ------------------------------------------------------------------------

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

    def decode_answers(self, answers: np.ndarray) -> list[str]:
        """Readable text of answers (B, T): words up to EOS, PAD dropped, EOS not shown."""
        words = np.array(self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer)))))
        out = []
        for row in np.asarray(answers):
            toks = []
            for t in row:
                if t == self.eos_id or t == self.pad_id:
                    break
                toks.append(words[t])
            out.append(" ".join(toks))
        return out

    def answer_lengths(self, answers: np.ndarray) -> np.ndarray:
        """Number of word tokens before EOS/PAD: (B, T) -> (B,)."""
        stop = (answers == self.eos_id) | (answers == self.pad_id)  # (B, T)
        has_stop = stop.any(axis=1)
        return np.where(has_stop, stop.argmax(axis=1), answers.shape[1])


def word_level_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over a fixed vocabulary (special tokens first: PAD=0)."""
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK
    )
