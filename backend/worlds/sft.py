"""Worlds with an SFT answer distribution (the toy worlds): the initial policy is a tiny GPT-2
trained on that distribution, and proxies keep its first blocks under a new score head.

The default SFT policy of each such world is shipped in assets/<world>/sft/ together with the
key of the config that produced it, so a fresh checkout runs without training it; so are the same
config's runs with SFT seeds 1-7 (assets/<world>/sft-seed<i>/), the backbones of a "pretrain"
ensemble's members. Any other SFT config is trained once and kept in the artifact cache.
`python -m backend build-assets` rebuilds the shipped copies.
"""

from __future__ import annotations

import dataclasses
import json
from abc import abstractmethod
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from backend.assets import ASSETS, save_state
from backend.cache import ArtifactCache, stable_hash
from backend.config import ExperimentConfig, RewardModelConfig, SftConfig
from backend.policy import policy_config
from backend.reward_models import build_proxy
from backend.tinygpt import GPTModel, gpt2_config, load_policy_weights
from backend.worlds.base import World
from backend.worlds.registry import get_world

# What a toy proxy is, in its cache key: 2 = tinygpt.GPTScorer (last block at the last token
# only), which scores within about 1e-7 of version 1's transformers classifier but not bit for bit.
PROXY_VERSION = 2


class SftWorld(World):
    """A world whose initial policy is trained on its own SFT answer distribution."""

    initial_policy_message = "loading the SFT policy"
    thread_safe = True  # tinygpt models, explicit generators, no dropout

    @abstractmethod
    def sample_sft_answers(self, prompt_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Answers drawn from the SFT distribution for the given prompts: (B,) -> (B, T) int64."""

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, device: torch.device) -> World:
        return get_world(cfg.world)  # immutable, so one instance serves every run

    def initial_policy(self, cfg: ExperimentConfig, cache: ArtifactCache, device: torch.device):
        policy, key = load_sft_policy(self, cfg.sft, cache)
        return policy.to(device), key

    def initial_policy_key(self, cfg: ExperimentConfig) -> str:
        return sft_key(self, cfg.sft)

    def has_initial_policy(self, cfg: ExperimentConfig, cache: ArtifactCache) -> bool:
        meta = shipped_sft_dir(self, cfg.sft) / "meta.json"
        key = sft_key(self, cfg.sft)
        return (meta.exists() and json.loads(meta.read_text())["key"] == key) or cache.has(
            "sft", key
        )

    def new_proxy(self, policy, cfg: RewardModelConfig, seed: int):
        """The SFT policy's first `cfg.layers` blocks under a new head."""
        return build_proxy(policy, cfg.layers, seed)

    def member_backbone(self, cfg: ExperimentConfig, member: int, cache: ArtifactCache, device):
        """Member i's own SFT run: the initial policy's config with SFT seed + i (shipped for the
        first members, else trained once and cached)."""
        return self.initial_policy(_member_config(cfg, member), cache, device)

    def member_backbone_key(self, cfg: ExperimentConfig, member: int) -> str:
        return self.initial_policy_key(_member_config(cfg, member))

    def has_member_backbone(self, cfg: ExperimentConfig, member: int, cache: ArtifactCache) -> bool:
        return self.has_initial_policy(_member_config(cfg, member), cache)

    def proxy_key_parts(self) -> tuple:
        return (("proxy", PROXY_VERSION),)


def _member_config(cfg: ExperimentConfig, member: int) -> ExperimentConfig:
    """The config of member i's own SFT run: the initial policy's with SFT seed + i."""
    return cfg.replace(**{"sft.seed": cfg.sft.seed + member})


def train_sft(world: SftWorld, cfg: SftConfig, progress=None):
    """Train the SFT policy on answers drawn from the world's SFT distribution, with transformers'
    GPT2LMHeadModel (its initialization and training are what the shipped policy's key stands
    for; backend.tinygpt.GPTModel then runs the saved weights with the same arithmetic).

    Loss on answer tokens only (EOS included, PAD ignored): the prompt is given, not learned.
    """
    from transformers import GPT2LMHeadModel  # seconds to import: only when training one

    rng = np.random.default_rng(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # weight init uses the global generator
        model = GPT2LMHeadModel(gpt2_config(policy_config(world, cfg)))
    # Padding comes only after an answer's EOS and attention is causal, so no real token attends
    # to a pad, and the loss ignores pads: an attention mask would change nothing. transformers
    # cannot tell and warns on the first padded batch ("We strongly recommend passing in an
    # `attention_mask`..."); without a pad_token_id in the training model's config it does not
    # check (GPT2LMHeadModel uses it for nothing else; the saved weights are all that is kept).
    model.config.pad_token_id = None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1
    )
    n_prompts = len(world.prompts())
    model.train()
    for step in range(cfg.steps):
        prompt_idx = rng.integers(0, n_prompts, size=cfg.batch_size)  # (B,)
        answers = torch.from_numpy(world.sample_sft_answers(prompt_idx, rng))  # (B, T)
        ids = torch.cat([world.prompt_ids(prompt_idx), answers], dim=1)  # (B, Tp+T)
        logits = model(ids).logits[:, world.prompt_len - 1 : -1]  # (B, T, V): predicts answers
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            answers.reshape(-1),
            ignore_index=world.pad_id,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None and step % 50 == 0:
            progress(step / cfg.steps, f"SFT step {step}/{cfg.steps}, loss {loss.item():.3f}")
    model.eval()
    return model


# ---- the shipped copy and the cache ------------------------------------------------------------


def sft_key(world: World, cfg: SftConfig) -> str:
    return stable_hash(world.name, world.version, dataclasses.asdict(cfg))


SHIPPED_SEEDS = range(8)  # SFT seeds shipped for the default config: 0 the initial policy


def shipped_sft_dir(world: World, cfg: SftConfig) -> Path:
    """Where the shipped copy of this SFT config would be (its meta.json says whether it is)."""
    return ASSETS / world.name / ("sft" if cfg.seed == 0 else f"sft-seed{cfg.seed}")


def _load(world: World, cfg: SftConfig, folder: Path) -> GPTModel:
    model = GPTModel(policy_config(world, cfg))
    load_policy_weights(model, folder / "model.safetensors")
    return model.eval()


def write_sft(world: SftWorld, cfg: SftConfig, folder: Path, progress=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model = train_sft(world, cfg, progress)
    save_state(model, folder / "model.safetensors")
    meta = {
        "world": world.name,
        "key": sft_key(world, cfg),
        "config": dataclasses.asdict(cfg),
        "world_version": world.version,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))


def load_sft_policy(
    world: SftWorld, cfg: SftConfig, cache: ArtifactCache | None = None
) -> tuple[GPTModel, str]:
    """(policy, key): the shipped copy when its key matches, else trained once and cached."""
    key = sft_key(world, cfg)
    shipped = shipped_sft_dir(world, cfg)
    meta = shipped / "meta.json"
    if meta.exists() and json.loads(meta.read_text())["key"] == key:
        return _load(world, cfg, shipped), key
    cache = cache or ArtifactCache()
    policy = cache.load_or_create(
        "sft", key, lambda f: write_sft(world, cfg, f), lambda f: _load(world, cfg, f)
    )
    return policy, key
