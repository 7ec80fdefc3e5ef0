"""The toy world: a readable tokenizer, the SFT distribution and the gold reward by hand."""

import numpy as np
import pytest

from backend.worlds.base import WordTokenizer
from backend.worlds.registry import get_world, load_worlds


@pytest.fixture(scope="module")
def world():
    return get_world("toy-lists")


def encode(world, text: str) -> np.ndarray:
    ids = [*world.tokenizer.encode(text, add_special_tokens=False), world.eos_id]
    row = np.full(world.max_answer_tokens, world.pad_id)
    row[: len(ids)] = ids
    return row


def gold_of(world, prompt: str, answer: str) -> float:
    p = world.prompts().index(prompt)
    return float(world.gold(np.array([p]), encode(world, answer)[None])[0])


def test_registry_and_tokenizer(world):
    assert "toy-lists" in load_worlds()
    assert isinstance(world.tokenizer, WordTokenizer)  # plain Python: no transformers to import
    assert world.tokenizer.pad_token_id == 0
    ids = world.tokenizer.encode("apple pear plum", add_special_tokens=False)
    assert world.tokenizer.decode(ids) == "apple pear plum"
    assert world.decode_answers(encode(world, "apple pear")[None]) == ["apple pear"]


def test_gold_by_hand(world):
    q = {"apple": 0.0, "pear": 0.5 / 7, "plum": 1.0 / 7, "peach": 0.5}
    three = 3 * (1 + (q["apple"] + q["pear"] + q["plum"]) / 3)
    assert gold_of(world, "list 3 fruits :", "apple pear plum") == pytest.approx(three)
    # one off-topic item: -1 and no credit
    assert gold_of(world, "list 3 fruits :", "apple pear cat") == pytest.approx(
        2 * (1 + q["pear"] / 2) - 1
    )
    # a repeat: -1 (and the repeated item is credited once)
    assert gold_of(world, "list 3 fruits :", "apple apple pear") == pytest.approx(
        2 * (1 + q["pear"] / 2) - 1
    )
    # beyond the count: credited up to 1, -1 for the extra item
    assert gold_of(world, "list 1 fruits :", "apple peach") == pytest.approx(
        1 * (1 + (q["apple"] + q["peach"]) / 2) - 1
    )
    # a filler and a prompt word: -0.5 each
    assert gold_of(world, "list 1 fruits :", "peach um") == pytest.approx(1.5 - 0.5)
    assert gold_of(world, "list 1 fruits :", "peach list") == pytest.approx(1.5 - 0.5)
    assert gold_of(world, "list 2 fruits :", "") == 0.0


def test_words_after_eos_do_not_count(world):
    row = encode(world, "peach")
    row[2] = world.tokenizer.convert_tokens_to_ids("cat")
    p = np.array([world.prompts().index("list 1 fruits :")])
    assert world.gold(p, row[None])[0] == pytest.approx(1.5)


def test_sft_answers_are_mostly_right_and_rarely_repeat(world):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(world.prompts()), size=5000)
    answers = world.sample_sft_answers(idx, rng)
    assert answers.shape == (5000, world.max_answer_tokens)
    lengths = world.answer_lengths(answers)
    counts = np.array([int(world.prompts()[i].split()[1]) for i in idx])
    assert lengths.min() >= 1 and lengths.max() < world.max_answer_tokens
    assert np.mean(np.abs(lengths - counts) <= 1) > 0.85  # about the right length
    gold = world.gold(idx, answers)
    assert gold.std() > 0.5  # informative preferences
    # same seed, same answers
    np.testing.assert_array_equal(
        world.sample_sft_answers(idx, np.random.default_rng(7)),
        world.sample_sft_answers(idx, np.random.default_rng(7)),
    )
