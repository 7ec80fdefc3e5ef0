"""The toy-lists world's words, without torch (backend/worlds/lists.py builds the world from them;
the app reads them to say what a picked answer is made of)."""

from __future__ import annotations

TOPICS: dict[str, list[str]] = {
    "fruits": ["apple", "pear", "plum", "fig", "lime", "kiwi", "mango", "peach"],
    "animals": ["cat", "dog", "cow", "fox", "owl", "bee", "pig", "hen"],
    "colors": ["red", "blue", "green", "pink", "gray", "black", "white", "brown"],
    "tools": ["saw", "drill", "hammer", "wrench", "file", "chisel", "rake", "axe"],
    "drinks": ["tea", "coffee", "milk", "juice", "water", "soda", "cocoa", "cider"],
}
FILLERS = ["um", "and", "etc", "ok"]


def off_topic_items(prompt: str, answer: str) -> int | None:
    """How many words of an answer are items of a topic other than the prompt's ("list 3
    fruits :" asks for fruits); None when the prompt names no topic of this world."""
    topic = next((w for w in prompt.split() if w in TOPICS), None)
    if topic is None:
        return None
    others = {w for t, items in TOPICS.items() if t != topic for w in items}
    return sum(w in others for w in answer.split())
