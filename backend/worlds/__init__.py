"""Toy worlds. Importing this package registers every built-in world."""

from backend.worlds import lists  # noqa: F401  (registers "toy-lists")
from backend.worlds.base import World
from backend.worlds.registry import WORLDS, get_world

__all__ = ["WORLDS", "World", "get_world"]
