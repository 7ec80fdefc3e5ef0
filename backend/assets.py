"""Model weights on disk, and the SFT policy of each world (shipped in assets/, rebuilt on demand).

The default SFT policy of each toy world is shipped in assets/<world>/sft/ together with the key
of the config that produced it, so a fresh checkout runs without training it. Any other SFT
config is trained once and kept in the artifact cache. `python -m backend build-assets` rebuilds
the shipped copies.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from transformers import GPT2LMHeadModel

from backend.cache import ArtifactCache, stable_hash
from backend.config import SftConfig
from backend.worlds.base import World

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def save_state(model: torch.nn.Module, path: Path) -> None:
    save_model(model, str(path))  # handles the policy's tied embedding / LM-head weights


def load_state(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights (never a pickle) into a model built from its config."""
    device = next(model.parameters()).device
    load_model(model, str(path), strict=True, device=str(device))


def sft_key(world: World, cfg: SftConfig) -> str:
    return stable_hash(world.name, world.version, dataclasses.asdict(cfg))


def shipped_sft_dir(world: World) -> Path:
    return ASSETS / world.name / "sft"


def _load(world: World, cfg: SftConfig, folder: Path) -> GPT2LMHeadModel:
    from backend.policy import policy_config

    model = GPT2LMHeadModel(policy_config(world, cfg))
    load_state(model, folder / "model.safetensors")
    return model.eval()


def write_sft(world: World, cfg: SftConfig, folder: Path, progress=None) -> None:
    from backend.policy import train_sft

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
    world: World, cfg: SftConfig, cache: ArtifactCache | None = None
) -> tuple[GPT2LMHeadModel, str]:
    """(policy, key): the shipped copy when its key matches, else trained once and cached."""
    key = sft_key(world, cfg)
    shipped = shipped_sft_dir(world)
    meta = shipped / "meta.json"
    if meta.exists() and json.loads(meta.read_text())["key"] == key:
        return _load(world, cfg, shipped), key
    cache = cache or ArtifactCache()
    folder = cache.get_or_create("sft", key, lambda f: write_sft(world, cfg, f))
    return _load(world, cfg, folder), key
