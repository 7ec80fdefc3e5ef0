"""Worlds by name. A new toy world is one module that defines a World subclass decorated with
@register_world and is imported in backend/worlds/__init__.py."""

from __future__ import annotations

from functools import cache

from backend.worlds.base import World

WORLDS: dict[str, type[World]] = {}


def register_world(cls: type[World]) -> type[World]:
    WORLDS[cls.name] = cls
    return cls


@cache
def get_world(name: str) -> World:
    """The (immutable, shared) world instance of that name."""
    if name not in WORLDS:
        raise KeyError(f"unknown world {name!r}; known: {', '.join(sorted(WORLDS))}")
    return WORLDS[name]()
