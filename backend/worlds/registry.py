"""Worlds by name. A world is one module (or package) under backend/worlds/ that defines a World
subclass decorated with @register_world: `load_worlds()` imports every module of this package
(subpackages included) once, so adding a world needs no edit anywhere else."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import torch

from backend.config import ConfigError, ExperimentConfig
from backend.worlds.base import World

WORLDS: dict[str, type[World]] = {}


def register_world(cls: type[World]) -> type[World]:
    WORLDS[cls.name] = cls
    return cls


@cache
def load_worlds() -> dict[str, type[World]]:
    """Every world of backend/worlds/ by name (imports each module of the package and of its
    subpackages once)."""
    import backend.worlds as package

    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)
    return WORLDS


def world_names() -> list[str]:
    return sorted(load_worlds())


def world_class(name: str) -> type[World]:
    """The World subclass of that name; ConfigError naming --world for an unknown one."""
    worlds = load_worlds()
    if name not in worlds:
        known = ", ".join(sorted(worlds))
        raise ConfigError("--world", f"world must be one of {known}; got {name!r}")
    return worlds[name]


@cache
def get_world(name: str) -> World:
    """The shared instance of a world that needs no config (the toy worlds)."""
    if name not in load_worlds():
        raise KeyError(f"unknown world {name!r}; known: {', '.join(sorted(WORLDS))}")
    return WORLDS[name]()


def make_world(cfg: ExperimentConfig, device: torch.device) -> World:
    """The world a config describes, built by the world itself."""
    return world_class(cfg.world).from_config(cfg, device)


def check_prompt_counts(cfg: ExperimentConfig, n_prompts: int) -> None:
    """What the methods need of the number of prompts (ConfigError naming the option)."""
    stage = {"ppo": cfg.ppo, "dpo": cfg.dpo}.get(cfg.method)  # the methods that hold prompts out
    if stage is not None and stage.eval_prompts >= n_prompts:
        raise ConfigError(
            f"{cfg.method}.eval_prompts",
            f"held-out prompts must be between 1 and {n_prompts - 1}; got {stage.eval_prompts}",
        )


def check_world(
    cfg: ExperimentConfig, allowed_dirs: Sequence[Path] | None = None
) -> ExperimentConfig:
    """The checks of a submission that need the world (its files, the hub, its prompts), after
    backend.config.validate's range checks. `allowed_dirs` (a server shared with others): the
    only folders whose files the config may name. Raises ConfigError naming the option;
    returns cfg."""
    cls = world_class(cfg.world)
    if allowed_dirs is not None:
        cls.check_paths(cfg, allowed_dirs)
    cls.check_config(cfg)
    check_prompt_counts(cfg, cls.count_prompts(cfg))
    return cfg
