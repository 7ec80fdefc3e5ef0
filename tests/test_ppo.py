"""PPO piece by piece: GAE, the clipped losses, the ratio on the first minibatch, the KL estimate
against the exact KL of a world small enough to enumerate, learning on a trivial reward, seeds,
and a tiny end-to-end run through the CLI."""

import copy
import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from backend import cli
from backend.cache import ArtifactCache
from backend.config import PpoConfig, SftConfig
from backend.experiment import run_experiment
from backend.policy import policy_config, sample_answers
from backend.ppo import (
    ValueModel,
    gae,
    on_answers,
    policy_loss,
    response_mask,
    sequence_ids,
    sequence_kl,
    token_logprobs,
    train_ppo,
    value_loss,
)
from backend.presets import get_preset
from backend.runtime import Cancelled
from backend.tinygpt import gpt2_config
from backend.worlds.base import World, word_level_tokenizer
from backend.worlds.sft import SftWorld


class TinyWorld(SftWorld):
    """One prompt, vocabulary {PAD, EOS, UNK, go, a, b}, answers of at most 3 tokens: every
    answer can be enumerated. Gold counts the "a" tokens (a trivial reward)."""

    name = "tiny-test"
    gold_description = "one point per 'a'"
    prompt_len = 1
    max_answer_tokens = 3

    def __init__(self) -> None:
        self.tokenizer = word_level_tokenizer(["go", "a", "b"])
        self.a_id = self.tokenizer.convert_tokens_to_ids("a")

    def prompts(self) -> list[str]:
        return ["go"]

    def sample_sft_answers(self, prompt_idx, rng):
        return rng.integers(0, len(self.tokenizer), size=(len(prompt_idx), self.max_answer_tokens))

    def gold(self, prompt_idx, answers):
        mask = response_mask(torch.as_tensor(answers), self.eos_id).numpy()
        return ((np.asarray(answers) == self.a_id) * mask).sum(1).astype(np.float64)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """As in run_ppo (tests/conftest.py one_torch_thread)."""


@pytest.fixture(scope="module")
def world():
    return TinyWorld()


def tiny_policy(world: World, seed: int) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = gpt2_config(policy_config(world, SftConfig(layers=1, width=16, heads=2)))
    return GPT2LMHeadModel(cfg).eval()


TINY = PpoConfig(batch_size=32, minibatches=2, epochs=2, lr=3e-3, steps=25, eval_every=5)


def train_tiny(world: World, cfg: PpoConfig = TINY, seed: int = 0):
    ref = tiny_policy(world, 1)
    policy, value = copy.deepcopy(ref), ValueModel(ref)
    history = train_ppo(
        policy, ref, value, world, world.gold, cfg, np.array([0]),
        np.random.default_rng(seed), torch.Generator().manual_seed(seed),
    )  # fmt: skip
    return policy, history


# ---- GAE and the losses ----------------------------------------------------------------------


def gae_loop(rewards, values, lengths, gamma, lam):
    """Plain Python GAE, one answer at a time, as in a textbook."""
    adv = np.zeros_like(rewards)
    for b, length in enumerate(lengths):
        a_next = 0.0
        for t in reversed(range(length)):
            v_next = values[b, t + 1] if t + 1 < length else 0.0
            delta = rewards[b, t] + gamma * v_next - values[b, t]
            a_next = delta + gamma * lam * a_next
            adv[b, t] = a_next
    return adv


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_gae_matches_plain_loop(gamma):
    rng = np.random.default_rng(0)
    B, T, lam = 16, 7, 0.95
    rewards, values = rng.normal(size=(B, T)), rng.normal(size=(B, T))
    lengths = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    adv, ret = gae(t(rewards), t(values), t(mask), gamma, lam)
    expected = gae_loop(rewards, values, lengths, gamma, lam)
    np.testing.assert_allclose(adv.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(ret.numpy(), (expected + values) * mask, atol=1e-12)


def test_gae_with_lambda_one_is_reward_to_go():
    rewards = torch.tensor([[0.0, 0.0, 2.0, 0.0]])
    values = torch.tensor([[0.5, 1.0, 1.5, 9.0]])  # the value past the end must be ignored
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv, ret = gae(rewards, values, mask, 1.0, 1.0)
    assert ret.tolist() == [[2.0, 2.0, 2.0, 0.0]]
    assert adv.tolist() == [[1.5, 1.0, 0.5, 0.0]]


def test_clipped_policy_loss_hand_computed():
    ratio = torch.tensor([[0.5, 1.0, 1.5, 0.5, 3.0]])
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])  # the last token is not generated
    loss, r = policy_loss(ratio.log(), torch.zeros(1, 5), adv, mask, clip=0.2)
    # per token max(-A r, -A clip(r)): max(-0.5, -0.8), max(1, 1), max(-1.5, -1.2), max(0.5, 0.8)
    assert loss.item() == pytest.approx((-0.5 + 1.0 - 1.2 + 0.8) / 4)
    torch.testing.assert_close(r, ratio)


def test_clipped_value_loss_hand_computed():
    values = torch.tensor([[1.0, 0.0]])
    old = torch.tensor([[0.5, 0.5]])
    returns = torch.tensor([[2.0, 0.0]])
    loss = value_loss(values, old, returns, torch.ones(1, 2), clip=0.2)
    # clipped values 0.7 and 0.3: max(1, 1.69) and max(0, 0.09)
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.09) / 2)


def test_response_mask():
    eos = 1
    answers = torch.tensor([[5, 6, 1, 0], [1, 0, 0, 0], [5, 5, 5, 5], [5, 0, 1, 0]])
    assert response_mask(answers, eos).tolist() == [
        [1, 1, 1, 0],
        [1, 0, 0, 0],
        [1, 1, 1, 1],  # cut at T without EOS: every token was generated
        [1, 1, 1, 0],  # a PAD sampled before EOS is still a generated token
    ]


# ---- the update ------------------------------------------------------------------------------


def test_ratio_is_exactly_one_on_the_first_minibatch(world):
    _, history = train_tiny(world, dataclasses.replace(TINY, steps=5))
    assert len(history) == 5
    assert all(h["first_ratio_dev"] == 0.0 for h in history)
    assert any(h["clipfrac"] > 0 or h["approx_kl"] > 0 for h in history)  # later ones move


def test_forward_passes_stop_at_the_longest_answer(world):
    """on_answers: the columns after every answer's EOS are not computed; the positions kept
    are what the whole sequences give (up to the kernels' rounding), the rest are 0."""
    policy, value = tiny_policy(world, 1), ValueModel(tiny_policy(world, 2))
    with torch.no_grad():
        for p in value.head.parameters():  # a zero head would make the check trivial
            p.normal_(generator=torch.Generator().manual_seed(0))
    answers = all_answers(world)  # (A, T): every length, with and without EOS
    mask = response_mask(answers, world.eos_id)
    short = mask.sum(1) <= 2  # the batch's longest answer: 2 tokens of T = 3
    ids = sequence_ids(world, np.zeros(int(short.sum()), dtype=int), answers[short], "cpu")
    mask = mask[short]
    with torch.no_grad():
        for fn in (lambda x, tp: token_logprobs(policy, x, tp), value):
            full = fn(ids, 1)  # (A, T)
            cut = on_answers(fn, ids, mask, 1, {})
            assert cut.shape == full.shape and (cut[:, 2:] == 0).all()
            assert torch.allclose(cut[:, :2], full[:, :2], atol=1e-6)
            assert not torch.allclose(full[:, 2:], torch.zeros_like(full[:, 2:]))  # was computed
    whole = ids[:1].clone()
    whole[0, 1:] = torch.as_tensor(answers[~short][0])  # one answer as long as T: no cut
    full_mask = response_mask(whole[:, 1:], world.eos_id)
    with torch.no_grad():
        assert torch.equal(on_answers(value, whole, full_mask, 1, {}), value(whole, 1))


def test_ppo_raises_a_trivial_reward(world):
    _, history = train_tiny(world)
    first = np.mean([h["score"] for h in history[:3]])
    last = np.mean([h["score"] for h in history[-3:]])
    assert last > first + 0.7, (first, last)  # mean number of "a" per answer (at most 3)
    assert history[-1]["kl"] > 0.1


def test_same_seed_same_training(world):
    cfg = dataclasses.replace(TINY, steps=8)
    p1, h1 = train_tiny(world, cfg, seed=3)
    p2, h2 = train_tiny(world, cfg, seed=3)
    _, h3 = train_tiny(world, cfg, seed=4)
    assert h1 == h2
    assert h1 != h3
    for a, b in zip(p1.parameters(), p2.parameters(), strict=True):
        assert torch.equal(a, b)


# ---- the KL estimate ---------------------------------------------------------------------------


def all_answers(world: World) -> torch.Tensor:
    """Every distinct answer: any tokens, cut after the first EOS (PAD after it)."""
    V, T = len(world.tokenizer), world.max_answer_tokens
    rows = torch.tensor(list(itertools.product(range(V), repeat=T)))  # (V^T, T)
    keep = ((rows == world.pad_id) | (response_mask(rows, world.eos_id) == 1)).all(1)
    return rows[keep]


def test_kl_estimate_matches_exact_kl(world):
    ref, policy = tiny_policy(world, 1), tiny_policy(world, 1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a freshly initialized model is nearly uniform: move it away
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=gen))
    answers = all_answers(world)  # (A, T)
    assert len(answers) == 5**3 + 5**2 + 5 + 1
    idx = np.zeros(len(answers), dtype=int)
    with torch.no_grad():
        ids = sequence_ids(world, idx, answers, "cpu")
        mask = response_mask(answers, world.eos_id)
        logp = (token_logprobs(policy, ids, 1) * mask).sum(1)  # (A,) log pi(answer)
        ref_logp = (token_logprobs(ref, ids, 1) * mask).sum(1)
    assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    exact = (logp.exp() * (logp - ref_logp)).sum().item()
    assert exact > 0.05

    n = 20_000
    sampled = sample_answers(
        policy, world, np.zeros(n, dtype=int), torch.Generator().manual_seed(0)
    )
    kl = sequence_kl(policy, ref, world, np.zeros(n, dtype=int), sampled)  # (n,)
    se = kl.std().item() / np.sqrt(n)
    assert abs(kl.mean().item() - exact) < 4 * se, (kl.mean().item(), exact, se)
    assert sequence_kl(ref, ref, world, np.zeros(8, dtype=int), sampled[:8]).abs().max() == 0


# ---- the experiment and the CLI ----------------------------------------------------------------

SMALL = [
    "--pairs", "200", "--eval-pairs", "50", "--members", "2", "--rm-epochs", "1",
    "--steps", "3", "--eval-every", "2",
]  # fmt: skip


def small_config(**changes):
    cfg = get_preset("toy-ppo").replace(
        **{
            "preferences.pairs": 200,
            "preferences.eval_pairs": 50,
            "reward_models.members": 2,
            "reward_models.epochs": 1,
            "ppo.steps": 3,
            "ppo.eval_every": 2,
            "ppo.norm_samples": 256,
            "ppo.eval_samples": 16,
            "ppo.batch_size": 16,
            **changes,
        }
    )
    return cfg


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_experiment_is_reproducible_and_reports_every_step(cache):
    calls = []
    out1 = run_experiment(
        small_config(), progress=lambda f, m: calls.append(m), cache=ArtifactCache(cache)
    )
    out2 = run_experiment(small_config(), cache=ArtifactCache(cache))
    c1, c2 = out1.result["curves"][0], out2.result["curves"][0]
    assert c1 == c2
    assert c1["method"] == "ppo" and c1["objective"] == "single" and c1["member"] == 0
    assert [p["step"] for p in c1["points"]] == [0, 2, 3]
    assert set(c1["points"][0]) >= {"step", "kl", "gold", "proxy", "proxy_mean"}
    assert c1["points"][0]["gold"] == pytest.approx(0.0, abs=1e-9)
    assert c1["points"][0]["kl"] == 0.0
    assert sum("PPO step" in m for m in calls) == 3 + 1
    s = out1.result["samples"][0]
    assert set(s) >= {"step", "prompt", "answer", "gold", "proxy", "members"}
    assert out1.arrays["proxy"].shape[-1] == 2


def test_cancel_between_ppo_steps(cache):
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 12  # past the ensemble stages, inside the PPO loop

    with pytest.raises(Cancelled):
        run_experiment(
            small_config(**{"ppo.steps": 50}), should_stop=should_stop, cache=ArtifactCache(cache)
        )
    assert len(polls) == 13


@pytest.mark.parametrize("objective", ["mean", "wco", "uwo"])
def test_ensemble_objectives_run(cache, objective):
    cfg = small_config(**{"ppo.objective": objective, "ppo.steps": 1, "ppo.kl_coef": 0.01})
    curve = run_experiment(cfg, cache=ArtifactCache(cache)).result["curves"][0]
    assert curve["objective"] == objective
    assert "beta=0.01" in curve["label"]


def test_the_standardization_pass_is_shared_by_every_objective_of_a_seed(tmp_path):
    first = run_experiment(small_config(**{"ppo.steps": 1}), cache=ArtifactCache(tmp_path))
    other = small_config(**{"ppo.steps": 1, "ppo.objective": "wco", "ppo.kl_coef": 0.01})
    again = run_experiment(other, cache=ArtifactCache(tmp_path)).result
    norm_hits = [h for h in again["cache_hits"] if h.startswith("ppo_norm/")]
    assert len(norm_hits) == other.reward_models.members  # one per member, none recomputed
    assert [m["standardization"] for m in again["reward_models"]] == [
        m["standardization"] for m in first.result["reward_models"]
    ]
    new_seed = small_config(**{"ppo.steps": 1}).replace(seed=1)
    hits = run_experiment(new_seed, cache=ArtifactCache(tmp_path)).result["cache_hits"]
    assert not [h for h in hits if h.startswith("ppo_norm/")]


def test_adaptive_kl_coefficient_moves(cache):
    cfg = small_config(**{"ppo.kl_coef": 0.1, "ppo.kl_target": 5.0, "ppo.kl_horizon": 2})
    training = run_experiment(cfg, cache=ArtifactCache(cache)).result["training"]
    betas = [h["beta"] for h in training]
    assert betas[0] == 0.1
    assert betas[1] == pytest.approx(0.1 * 0.9)  # first KL is 0: below target, clipped to -0.2
    assert betas[2] < betas[1]


def test_cli_writes_result(tmp_path, monkeypatch):
    monkeypatch.setenv("GOODHART_DATA_DIR", str(tmp_path))
    out = tmp_path / "RESULT.json"
    argv = ["run", "--preset", "toy-ppo", *SMALL, "--objective", "uwo", "--uwo-lambda", "0.3"]
    assert cli.main([*argv, "--kl-coef", "0.01", "--quiet", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["method"] == "ppo"
    assert result["config"]["ppo"]["uwo_lambda"] == 0.3
    curve = result["curves"][0]
    assert curve["method"] == "ppo" and curve["lambda"] == 0.3
    assert [p["step"] for p in curve["points"]] == [0, 2, 3]
    assert {"step", "prompt", "answer", "gold", "proxy"} <= set(result["samples"][0])


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--member", "2"], "--member"),  # 2 members: 0 or 1
        (["--kl-target", "4"], "--kl-coef"),  # adaptive needs beta > 0
        (["--objective", "max"], "--objective"),
        (["--kl-coef", "-1"], "--kl-coef"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_cli_bad_values_exit_2(tmp_path, capsys, args, option):
    out = tmp_path / "RESULT.json"
    code = cli.main(["run", "--preset", "toy-ppo", *SMALL, *args, "--out", str(out)])
    assert code == 2
    assert option in capsys.readouterr().err
    assert not out.exists()
