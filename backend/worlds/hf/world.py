"""The Hugging Face world: a loaded causal-LM policy, a gold reward model, proxies built from a
proxy base, and prompts from a file or a dataset (docs/hf_world.md).

Conventions (what differs from the toy world):
- No SFT stage: the loaded policy is the initial policy.
- Prompts vary in length. They are tokenized once with the policy's tokenizer (its special
  tokens included, cut to `max_prompt_tokens` keeping the end) and left-padded to the longest,
  so every prompt has the same `prompt_len` Tp and the answer starts at position Tp. The
  attention mask hides the padding and position ids count real tokens only
  (`model_inputs`, `prompt_mask`).
- Answers are the tokens the policy generated, up to and including EOS, then PAD (which may be
  the same token as EOS, when the tokenizer had no pad token).
- Gold and proxies score text: the prompt and the decoded answer, re-tokenized with each reward
  model's own tokenizer as a text pair (right-padded, cut to `max_rm_tokens`).
Shapes: B rows, Tp prompt tokens, T answer tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from backend.batching import AdaptiveBatch
from backend.cache import ArtifactCache, stable_hash
from backend.config import HF_WORLD, ConfigError, ExperimentConfig, HfWorldConfig, RewardModelConfig
from backend.worlds.base import World, inside
from backend.worlds.hf import models as hf_models
from backend.worlds.hf.models import outside_message
from backend.worlds.hf.prompts import load_prompts, prompts_key, template_name
from backend.worlds.registry import register_world


@register_world
class HfWorld(World):
    name = HF_WORLD
    version = 1
    pads_prompts = True

    def __init__(self, cfg: HfWorldConfig, device: torch.device) -> None:
        hf_models.check_models(cfg)
        self.cfg = cfg
        self.device = torch.device(device)
        self._prompts = load_prompts(cfg)
        self.tokenizer = hf_models.load_tokenizer(cfg.policy, "--policy", "left")
        if self.tokenizer.eos_token_id is None:
            raise ConfigError("--policy", f"{cfg.policy}: the tokenizer has no EOS token")
        self.max_answer_tokens = cfg.max_answer_tokens
        self.gold_description = (
            f"The gold reward is the reward model {cfg.gold}: its raw score of the prompt and the "
            "decoded answer, re-tokenized with its own tokenizer (standardized over the initial "
            "policy's answers)."
        )
        enc = self.tokenizer(self._prompts, truncation=True, max_length=cfg.max_prompt_tokens)[
            "input_ids"
        ]
        self.prompt_len = max(len(e) for e in enc)
        table = np.full((len(enc), self.prompt_len), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(enc), self.prompt_len), dtype=np.int64)
        for i, ids in enumerate(enc):  # left padding
            table[i, self.prompt_len - len(ids) :] = ids
            mask[i, self.prompt_len - len(ids) :] = 1
        self._table, self._mask = torch.from_numpy(table), torch.from_numpy(mask)  # (n, Tp)
        self._row_of = {row.tobytes(): i for i, row in enumerate(table)}
        self.sample_batch = AdaptiveBatch(cfg.sample_batch_size)
        self.score_batch = AdaptiveBatch(cfg.score_batch_size)

    # ---- construction and checks (what the engine asks of a world) ---------------------------

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, device: torch.device) -> HfWorld:
        return cls(cfg.hf, device)

    @classmethod
    def check_config(cls, cfg: ExperimentConfig) -> None:
        """The models (found, the right kinds, weights and tokenizers readable) and the prompts
        (readable, not empty)."""
        hf_models.check_models(cfg.hf)
        hf_models.check_files(cfg.hf)
        load_prompts(cfg.hf)

    @classmethod
    def check_paths(cls, cfg: ExperimentConfig, allowed: Sequence[Path]) -> None:
        """Models: folders under `allowed`, or model ids already in the Hugging Face cache (a
        shared server downloads nothing for a visitor); prompts: a file or a dataset folder
        under `allowed`."""
        hf = cfg.hf
        models = ((hf.policy, "--policy"), (hf.gold, "--gold"), (hf.proxy_base, "--proxy-base"))
        for name, option in models:
            hf_models.check_allowed(name, option, allowed)
        for text, option in ((hf.prompt_file, "--prompt-file"), (hf.dataset, "--dataset")):
            if text and not inside(text, allowed):
                raise ConfigError(option, outside_message(allowed))

    @classmethod
    def count_prompts(cls, cfg: ExperimentConfig) -> int:
        return len(load_prompts(cfg.hf))

    @property
    def initial_policy_message(self) -> str:
        return f"loading the policy {self.cfg.policy}"

    def initial_policy(self, cfg: ExperimentConfig, cache: ArtifactCache, device: torch.device):
        """No SFT stage: the loaded model is the policy; its key stands for what it is."""
        return self.load_policy(), self.key

    def initial_policy_key(self, cfg: ExperimentConfig) -> str:
        return self.key

    def new_proxy(self, policy, cfg: RewardModelConfig, seed: int) -> TextProxy:
        """The proxy base with a head initialized from `seed` (the policy is not used)."""
        return self.build_proxy(seed)

    def proxy_key_parts(self) -> tuple:
        return (self.proxy_key,)

    # ---- prompts and answers ---------------------------------------------------------------

    def prompts(self) -> list[str]:
        return self._prompts

    def prompt_ids(self, prompt_idx: np.ndarray) -> torch.Tensor:
        return self._table[torch.as_tensor(np.asarray(prompt_idx), dtype=torch.long)]

    def prompt_mask(self, prompt_idx: np.ndarray) -> torch.Tensor:
        """1 on real prompt tokens, 0 on the left padding: (B,) -> (B, Tp)."""
        return self._mask[torch.as_tensor(np.asarray(prompt_idx), dtype=torch.long)]

    def model_inputs(self, prompt_idx: np.ndarray, length: int, device) -> dict:
        """attention_mask and position_ids of prompt + answer rows (B, length): the left padding
        hidden, positions counting real tokens only."""
        mask = self.prompt_mask(prompt_idx).to(device)  # (B, Tp)
        answer = torch.ones_like(mask[:, :1]).expand(-1, length - self.prompt_len)
        mask = torch.cat([mask, answer], dim=1)  # (B, length)
        return {"attention_mask": mask, "position_ids": (mask.cumsum(1) - 1).clamp(min=0)}

    def decode_answers(self, answers: np.ndarray) -> list[str]:
        """Text of each answer: its tokens before the first EOS, special tokens dropped."""
        rows = []
        for row in np.asarray(answers):
            stop = np.flatnonzero(row == self.eos_id)
            rows.append(row[: stop[0]] if len(stop) else row)
        return self.tokenizer.batch_decode(
            [r.tolist() for r in rows], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )

    def answer_lengths(self, answers: np.ndarray) -> np.ndarray:
        """Generated tokens before the first EOS: (B, T) -> (B,). Only EOS ends an answer here
        (a policy may generate its pad token like any other)."""
        stop = answers == self.eos_id  # (B, T)
        return np.where(stop.any(axis=1), stop.argmax(axis=1), answers.shape[1])

    def texts(self, ids: torch.Tensor) -> tuple[list[str], list[str]]:
        """(prompt, answer) texts of rows of prompt + answer ids (B, Tp+T)."""
        ids = ids.detach().cpu().numpy()
        prompts = [self._prompt_text(row) for row in ids[:, : self.prompt_len]]
        return prompts, self.decode_answers(ids[:, self.prompt_len :])

    def _prompt_text(self, row: np.ndarray) -> str:
        i = self._row_of.get(row.astype(np.int64).tobytes())
        if i is not None:
            return self._prompts[i]
        return self.tokenizer.decode(row[row != self.pad_id].tolist(), skip_special_tokens=True)

    # ---- models ----------------------------------------------------------------------------

    def load_policy(self):
        return hf_models.load_policy(self.cfg, self.tokenizer, self.device)

    @cached_property
    def key(self) -> str:
        """Cache key of everything the initial policy's samples and their gold depend on."""
        cfg = self.cfg
        return stable_hash(
            self.name, self.version,
            hf_models.identity(cfg.policy), hf_models.identity(cfg.gold), prompts_key(cfg),
            template_name(cfg), cfg.max_prompt_tokens, cfg.max_answer_tokens, cfg.max_rm_tokens,
            str(hf_models.resolve_dtype(cfg.policy_dtype, self.device)),
            str(hf_models.resolve_dtype(cfg.gold_dtype, self.device)),
        )  # fmt: skip

    @cached_property
    def proxy_key(self) -> str:
        """What a proxy depends on beyond the preference data and RewardModelConfig."""
        return stable_hash(hf_models.identity(self.cfg.proxy_base), self.cfg.max_rm_tokens)

    @cached_property
    def gold_tokenizer(self):
        return hf_models.load_tokenizer(self.cfg.gold, "--gold", "right")

    @cached_property
    def gold_model(self):
        """Loaded on first use: a run whose samples are all cached never loads it."""
        return hf_models.load_gold(self.cfg, self.gold_tokenizer, self.device)

    @cached_property
    def proxy_tokenizer(self):
        return hf_models.load_tokenizer(self.cfg.proxy_base, "--proxy-base", "right")

    def build_proxy(self, seed: int) -> TextProxy:
        model = hf_models.load_proxy_base(self.cfg, self.proxy_tokenizer, self.device, seed)
        return TextProxy(model, self.proxy_tokenizer, self)

    def gold(self, prompt_idx: np.ndarray, answers: np.ndarray) -> np.ndarray:
        prompts = [self._prompts[i] for i in np.asarray(prompt_idx)]
        return hf_models.score_texts(
            self.gold_model, self.gold_tokenizer, prompts, self.decode_answers(answers),
            self.cfg.max_rm_tokens, self.score_batch,
        )  # fmt: skip


class TextProxy(nn.Module):
    """A proxy over text: takes the policy's prompt + answer ids (B, Tp+T), like the toy proxies,
    decodes them and scores the text with its own model and tokenizer. Returns raw scores (B,),
    so reward_models.train_proxy and score work on it unchanged."""

    def __init__(self, model, tokenizer, world: HfWorld) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.world = world

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        prompts, answers = self.world.texts(ids)
        max_tokens = self.world.cfg.max_rm_tokens
        if torch.is_grad_enabled():  # training: one batch (lower --rm-batch-size if it OOMs)
            scores = hf_models.reward(self.model, self.tokenizer, prompts, answers, max_tokens)
        else:
            scores = torch.from_numpy(
                hf_models.score_texts(
                    self.model, self.tokenizer, prompts, answers, max_tokens, self.world.score_batch
                )
            ).float()
        return scores  # (B,)
