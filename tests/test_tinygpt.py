"""backend/tinygpt.py against transformers' GPT-2 (the same weights give the same numbers), and
the prefix-sharing sampler against the policy's own probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

from backend.assets import save_state
from backend.config import SftConfig
from backend.policy import policy_config, sample_answers
from backend.ppo import response_mask, sequence_ids, token_logprobs
from backend.reward_models import build_proxy
from backend.seeding import stage_seed, torch_generator
from backend.tinygpt import GPTModel, gpt2_config, load_policy_weights
from backend.worlds.registry import get_world
from backend.worlds.sft import load_sft_policy


@pytest.fixture(scope="module")
def world():
    return get_world("toy-lists")


@pytest.fixture(scope="module")
def policy(world):
    return load_sft_policy(world, SftConfig())[0]


def batch(world, n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(world.prompts()), n)
    return torch.cat(
        [world.prompt_ids(idx), torch.as_tensor(world.sample_sft_answers(idx, rng))], 1
    )


def test_same_logits_as_transformers_gpt2_bit_for_bit(world, tmp_path):
    cfg = policy_config(world, SftConfig(layers=2, width=32, heads=4))
    torch.manual_seed(3)
    hf = GPT2LMHeadModel(gpt2_config(cfg)).eval()
    save_state(hf, tmp_path / "m.safetensors")
    ours = GPTModel(cfg)
    load_policy_weights(ours, tmp_path / "m.safetensors")
    ids = batch(world, 64)
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, hf(ids).logits)
        a, b = hf(ids[:, :4], use_cache=True), ours(ids[:, :4], use_cache=True)
        assert torch.equal(a.logits, b.logits)
        a = hf(ids[:, 4:5], use_cache=True, cache=a.cache)
        assert torch.equal(a.logits, ours(ids[:, 4:5], use_cache=True, cache=b.cache).logits)


def classifier(proxy) -> GPT2ForSequenceClassification:
    """transformers' classifier with the proxy's weights (it reads the last non-PAD token)."""
    cfg = gpt2_config(proxy.config)
    cfg.num_labels = 1
    hf = GPT2ForSequenceClassification(cfg).eval()
    hf.load_state_dict(proxy.state_dict(), strict=True)
    return hf


def test_the_last_token_scorer_matches_the_full_classifier(world, policy):
    ids = batch(world, 256, seed=1)  # right-padded answers of every length
    for layers in (1, 2):  # with 2, the first block runs in full, the last at one position
        proxy = build_proxy(policy, layers, seed=5)
        with torch.no_grad():
            want = classifier(proxy)(ids).logits.squeeze(-1)
            torch.testing.assert_close(proxy(ids), want, rtol=1e-5, atol=1e-6)


def test_sampled_log_probs_are_the_policys_and_answers_end_at_eos(world, policy):
    idx = np.repeat(np.arange(4), 300)  # many answers per prompt: prefixes are shared
    answers, logps = sample_answers(
        policy, world, idx, torch_generator(stage_seed(0, "t"), "cpu"), return_logprobs=True
    )
    ids = sequence_ids(world, idx, answers, "cpu")
    mask = response_mask(ids[:, world.prompt_len :], world.eos_id)
    with torch.no_grad():
        want = token_logprobs(policy, ids, world.prompt_len) * mask
    torch.testing.assert_close(logps * mask, want, rtol=1e-4, atol=1e-5)
    ended = (answers == world.eos_id).any(1)
    after = (mask == 0) & (torch.as_tensor(answers) != world.pad_id)
    assert ended.mean() > 0.99 and not after.any()


def test_answers_follow_the_policys_distribution(world, policy):
    """The empirical frequency of every answer against its probability under the policy."""
    N = 20_000
    idx = np.zeros(N, dtype=int)
    answers = sample_answers(policy, world, idx, torch_generator(stage_seed(1, "d"), "cpu"))
    uniq, first, counts = np.unique(answers, axis=0, return_index=True, return_counts=True)
    ids = sequence_ids(world, idx[first], uniq, "cpu")
    mask = response_mask(ids[:, world.prompt_len :], world.eos_id)
    with torch.no_grad():
        p = torch.exp((token_logprobs(policy, ids, world.prompt_len) * mask).sum(1)).numpy()
    frequent = counts >= 50
    rel = np.abs(counts[frequent] / N - p[frequent]) / p[frequent]
    assert frequent.sum() >= 10 and np.all(rel < 5 / np.sqrt(counts[frequent]))  # ~5 sigma
    assert abs(p.sum() - counts.sum() / N) < 0.1  # the unseen answers are rare ones


def test_one_seed_one_set_of_answers(world, policy):
    idx = np.repeat(np.arange(3), 50)
    a = sample_answers(policy, world, idx, torch_generator(stage_seed(2, "s"), "cpu"))
    b = sample_answers(policy, world, idx, torch_generator(stage_seed(2, "s"), "cpu"))
    c = sample_answers(policy, world, idx, torch_generator(stage_seed(3, "s"), "cpu"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
