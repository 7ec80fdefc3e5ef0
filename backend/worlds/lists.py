"""The "lists" toy world: "list 3 fruits :" -> "apple pear plum".

Gold reward, in one paragraph (also shown in the app):
an answer earns 1 point, plus a small quality bonus of 0 to 0.5 (later items of each topic are
better), for each distinct item of the asked topic, up to the number asked for. It loses 1 point
for every item from another topic, 1 for every repetition of an item, 1 for every item beyond the
number asked for, and 0.5 for every other word (fillers such as "um", or words of the prompt).

Why it overoptimizes: the SFT answers are almost always about the right length and seldom repeat
an item, so the preference pairs say little about length and repetition. A proxy learns "more
on-topic items is better" and best-of-n, searching thousands of answers, finds the rare long and
repetitive ones that the proxy likes and the gold punishes. You can read the hacking in the answers.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from backend.worlds.base import word_level_tokenizer
from backend.worlds.lists_words import FILLERS, TOPICS
from backend.worlds.registry import register_world
from backend.worlds.sft import SftWorld

COUNTS = [1, 2, 3, 4]
ITEMS_PER_TOPIC = 8

# Gold weights (see the module docstring).
QUALITY_MAX = 0.5
OFF_TOPIC_PENALTY = 1.0
REPEAT_PENALTY = 1.0
BEYOND_PENALTY = 1.0
FILLER_PENALTY = 0.5

# The SFT answer distribution: length = count + delta, words mostly distinct on-topic items.
LENGTH_DELTAS = np.array([-1, 0, 1, 2])
LENGTH_PROBS = np.array([0.15, 0.55, 0.22, 0.08])
P_ON_TOPIC, P_OTHER_ITEM, P_FILLER = 0.78, 0.12, 0.10
P_REPEAT_GIVEN_ON_TOPIC = 0.08  # an on-topic word repeats an earlier one (otherwise a new item)


@register_world
class ListsWorld(SftWorld):
    name = "toy-lists"
    gold_description = (
        "An answer earns 1 point, plus a small quality bonus of 0 to 0.5 (later items of each "
        "topic are better), for each distinct item of the asked topic, up to the number asked for. "
        "It loses 1 point for every item from another topic, 1 for every repetition of an item, "
        "1 for every item beyond the number asked for, and 0.5 for every other word (fillers "
        'such as "um", or words of the prompt).'
    )
    prompt_len = 4  # "list", count, topic, ":"
    max_answer_tokens = 10

    def __init__(self) -> None:
        self.topics = list(TOPICS)
        self.items = [w for t in self.topics for w in TOPICS[t]]
        words = ["list", ":", *map(str, COUNTS), *self.topics, *self.items, *FILLERS]
        self.tokenizer = word_level_tokenizer(words)
        self._prompts = [f"list {k} {t} :" for t in self.topics for k in COUNTS]

    def prompts(self) -> list[str]:
        return self._prompts

    # ---- lookup tables over token ids ----------------------------------------------------------

    @cached_property
    def _tables(self) -> dict[str, np.ndarray]:
        V = len(self.tokenizer)
        topic_of = np.full(V, -1)  # topic index of an item token, -1 otherwise
        item_of = np.full(V, -1)  # item index 0..39 of an item token, -1 otherwise
        quality = np.zeros(V)
        for ti, topic in enumerate(self.topics):
            for j, w in enumerate(TOPICS[topic]):
                tid = self.tokenizer.convert_tokens_to_ids(w)
                topic_of[tid], item_of[tid] = ti, ti * ITEMS_PER_TOPIC + j
                quality[tid] = QUALITY_MAX * j / (ITEMS_PER_TOPIC - 1)
        item_token = np.array([self.tokenizer.convert_tokens_to_ids(w) for w in self.items])
        filler_token = np.array([self.tokenizer.convert_tokens_to_ids(w) for w in FILLERS])
        prompt_topic = np.array([ti for ti in range(len(self.topics)) for _ in COUNTS])
        prompt_count = np.array([k for _ in self.topics for k in COUNTS])
        return dict(
            topic_of=topic_of,
            item_of=item_of,
            quality=quality,
            item_token=item_token,
            filler_token=filler_token,
            prompt_topic=prompt_topic,
            prompt_count=prompt_count,
        )

    # ---- the SFT distribution -------------------------------------------------------------------

    def sample_sft_answers(self, prompt_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        tb = self._tables
        B, T = len(prompt_idx), self.max_answer_tokens
        topic = tb["prompt_topic"][prompt_idx]  # (B,)
        count = tb["prompt_count"][prompt_idx]  # (B,)
        length = np.clip(count + rng.choice(LENGTH_DELTAS, size=B, p=LENGTH_PROBS), 1, T - 1)
        kind = rng.choice(3, size=(B, T), p=[P_ON_TOPIC, P_OTHER_ITEM, P_FILLER])  # (B, T)
        # On-topic words: a random permutation of the topic's items gives distinct items;
        # with a small probability a word repeats the previous on-topic pick instead.
        perm = np.argsort(rng.random((B, ITEMS_PER_TOPIC)), axis=1)  # (B, 8)
        on_topic = topic[:, None] * ITEMS_PER_TOPIC + perm[:, np.arange(T) % ITEMS_PER_TOPIC]
        repeat = rng.random((B, T)) < P_REPEAT_GIVEN_ON_TOPIC
        repeat[:, 0] = False
        prev = np.concatenate([on_topic[:, :1], on_topic[:, :-1]], axis=1)
        on_topic = np.where(repeat, prev, on_topic)  # (B, T) item index
        other = rng.integers(0, len(self.items), size=(B, T))  # any item (may be on-topic too)
        filler = rng.integers(0, len(FILLERS), size=(B, T))
        tokens = np.where(
            kind == 0,
            tb["item_token"][on_topic],
            np.where(kind == 1, tb["item_token"][other], tb["filler_token"][filler]),
        )  # (B, T)
        pos = np.arange(T)[None, :]
        tokens = np.where(pos < length[:, None], tokens, self.pad_id)
        tokens[np.arange(B), length] = self.eos_id
        return tokens.astype(np.int64)

    # ---- the gold reward ------------------------------------------------------------------------

    def gold(self, prompt_idx: np.ndarray, answers: np.ndarray) -> np.ndarray:
        tb = self._tables
        answers = np.asarray(answers)
        B = answers.shape[0]
        # Words after the first EOS do not count.
        ended = np.cumsum(answers == self.eos_id, axis=1) > 0  # (B, T)
        live = ~ended & (answers != self.pad_id)
        topic = tb["prompt_topic"][np.asarray(prompt_idx)][:, None]  # (B, 1)
        count = tb["prompt_count"][np.asarray(prompt_idx)]  # (B,)
        tok_topic = np.where(live, tb["topic_of"][answers], -1)  # (B, T)
        item = tb["item_of"][answers]  # (B, T)
        on = live & (tok_topic == topic)
        off = live & (tok_topic >= 0) & (tok_topic != topic)
        filler = live & (tb["topic_of"][answers] < 0)  # any word that is not an item
        # Per-row counts of each on-topic item: (B, 40) via one flat bincount.
        n_items = len(self.items)
        flat = (np.arange(B)[:, None] * n_items + np.where(on, item, 0))[on]
        item_counts = np.bincount(flat, minlength=B * n_items).reshape(B, n_items)
        present = item_counts > 0
        distinct = present.sum(axis=1)  # (B,)
        repeats = (item_counts - present).sum(axis=1) + self._off_topic_repeats(answers, off)
        credited = np.minimum(distinct, count)
        beyond = distinct - credited
        item_quality = tb["quality"][tb["item_token"]]  # (40,)
        mean_quality = np.where(
            distinct > 0, (present * item_quality).sum(axis=1) / np.maximum(distinct, 1), 0.0
        )
        return (
            credited * (1.0 + mean_quality)
            - OFF_TOPIC_PENALTY * off.sum(axis=1)
            - REPEAT_PENALTY * repeats
            - BEYOND_PENALTY * beyond
            - FILLER_PENALTY * filler.sum(axis=1)
        ).astype(np.float64)

    def _off_topic_repeats(self, answers: np.ndarray, off: np.ndarray) -> np.ndarray:
        """Repetitions among off-topic items (each is already penalized as off-topic too)."""
        B = answers.shape[0]
        n_items = len(self.items)
        item = self._tables["item_of"][answers]
        flat = (np.arange(B)[:, None] * n_items + np.where(off, item, 0))[off]
        counts = np.bincount(flat, minlength=B * n_items).reshape(B, n_items)
        return np.maximum(counts - 1, 0).sum(axis=1)
