"""DPO piece by piece: the losses on hand-computed numbers, the implicit reward against a
token-by-token loop, padded batches against each sequence alone, learning a trivial preference
set, seeds, the evaluation schedule, and tiny end-to-end runs through the engine and the CLI."""

import copy
import dataclasses
import doctest
import json
import math

import numpy as np
import pytest
import torch

from backend import cli, dpo
from backend.cache import ArtifactCache
from backend.config import DpoConfig, SftConfig
from backend.dpo import (
    Pairs,
    batched_logprobs,
    eval_schedule,
    implicit_reward,
    pair_accuracy,
    preference_loss,
    sequence_logprobs,
    train_dpo,
)
from backend.experiment import run_experiment
from backend.policy import sample_answers
from backend.preferences import PreferenceSplit, label_pairs
from backend.presets import get_preset
from backend.worlds.registry import get_world
from backend.worlds.sft import load_sft_policy
from tests.test_ppo import TinyWorld, tiny_policy


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """As in run_dpo (tests/conftest.py one_torch_thread)."""


@pytest.fixture(scope="module")
def world():
    return TinyWorld()


def test_docstring_examples():
    assert doctest.testmod(dpo).failed == 0


# ---- the losses and the implicit reward --------------------------------------------------------


def test_losses_hand_computed():
    h = torch.tensor([0.0, 1.0, -2.0])  # log-ratio margins, chosen minus rejected
    beta = 0.5
    # DPO: -log sigmoid(beta h) = log(1 + exp(-beta h))
    dpo_want = [math.log(2.0), math.log(1 + math.exp(-0.5)), math.log(1 + math.exp(1.0))]
    assert preference_loss(h, beta, "dpo").tolist() == pytest.approx(dpo_want)
    assert dpo_want == pytest.approx([0.693147, 0.474077, 1.313262], abs=1e-6)
    # IPO: (h - 1/(2 beta))^2 with target 1
    assert preference_loss(h, beta, "ipo").tolist() == pytest.approx([1.0, 0.0, 9.0])
    # SLiC: max(0, 1 - beta h)
    assert preference_loss(h, beta, "slic").tolist() == pytest.approx([1.0, 0.5, 2.0])
    with pytest.raises(ValueError, match="dpo, ipo, slic"):
        preference_loss(h, beta, "kto")


def test_losses_fall_as_the_margin_grows_and_ipo_stops_at_its_target():
    h = torch.linspace(-3, 3, 13, requires_grad=True)
    for kind in ("dpo", "slic"):
        (grad,) = torch.autograd.grad(preference_loss(h, 0.5, kind).sum(), h)
        assert (grad <= 0).all()  # a larger margin never costs more
    (grad,) = torch.autograd.grad(preference_loss(h, 0.5, "ipo").sum(), h)
    assert grad[h.detach() < 1.0].lt(0).all() and grad[h.detach() > 1.0].gt(0).all()


def perturbed(world, seed: int):
    """A tiny policy moved away from its near-uniform initialization."""
    model = tiny_policy(world, 1)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen))
    return model


def test_implicit_reward_is_beta_times_the_log_ratio_summed_over_answer_tokens(world):
    ref, policy = tiny_policy(world, 1), perturbed(world, 0)
    answers = np.array([[4, 1, 0], [3, 4, 5], [1, 0, 0], [5, 5, 1]])  # EOS = 1, PAD = 0
    idx = np.zeros(len(answers), dtype=int)
    beta = 0.3
    got = implicit_reward(
        sequence_logprobs(policy, world, idx, answers),
        sequence_logprobs(ref, world, idx, answers),
        beta,
    )
    want = []
    with torch.no_grad():
        for row in answers:  # token by token, up to and including the first EOS
            total, prefix = 0.0, world.prompt_ids([0])[0].tolist()
            for tok in row:
                ids = torch.tensor([prefix])
                lp = torch.log_softmax(policy(ids).logits[0, -1], -1)[tok]
                lq = torch.log_softmax(ref(ids).logits[0, -1], -1)[tok]
                total += float(lp - lq)
                prefix.append(int(tok))
                if tok == world.eos_id:
                    break
            want.append(beta * total)
    assert got.tolist() == pytest.approx(want, abs=1e-5)
    assert implicit_reward(*(sequence_logprobs(ref, world, idx, answers),) * 2, beta).eq(0).all()


def test_logprobs_of_a_padded_batch_equal_each_sequence_alone():
    """Answers of different lengths, right-padded after EOS in one batch, get the log-probs each
    gets alone (cut after its EOS, no padding); the shipped toy SFT policy."""
    lists = get_world("toy-lists")
    policy, _ = load_sft_policy(lists, SftConfig(), ArtifactCache(enabled=False))
    gen = torch.Generator().manual_seed(0)
    idx = np.arange(12) % len(lists.prompts())
    answers = sample_answers(policy, lists, idx, gen)  # (12, T)
    lengths = lists.answer_lengths(answers) + 1  # with EOS
    assert len(set(lengths.tolist())) > 2  # the batch really mixes lengths
    batch = sequence_logprobs(policy, lists, idx, answers)
    for i in range(len(idx)):
        alone = sequence_logprobs(policy, lists, idx[i : i + 1], answers[i : i + 1, : lengths[i]])
        torch.testing.assert_close(batch[i : i + 1], alone, atol=1e-5, rtol=1e-5)
    chunks = batched_logprobs(policy, lists, idx, answers, batch=5)  # 5 + 5 + 2 rows
    torch.testing.assert_close(chunks, batch.detach(), atol=1e-5, rtol=1e-5)


def test_pair_accuracy_counts_ties_as_half():
    assert pair_accuracy(np.array([1.0, 0.0, 2.0, 5.0]), np.array([0.0, 0.0, 3.0, 1.0])) == 0.625


def test_eval_schedule():
    assert eval_schedule(10, 3, 25, 4) == [0, 2, 5, 8, 10, 25, 30]
    assert eval_schedule(10, 1, 100, 0) == [0, 10]
    assert eval_schedule(3, 1, 1, 8) == [0, 1, 2, 3]  # fractions round onto steps, no repeats


# ---- learning ------------------------------------------------------------------------------------


def trivial_pairs(world, m: int, seed: int) -> PreferenceSplit:
    """Pairs of a random policy's answers labelled without noise by gold (the number of "a")."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    sampler = tiny_policy(world, 1)
    idx = np.zeros(m, dtype=int)
    a, b = sample_answers(sampler, world, idx, gen), sample_answers(sampler, world, idx, gen)
    a_wins, flipped, tie = label_pairs(world.gold(idx, a), world.gold(idx, b), 0.0, rng)
    chosen, rejected = np.where(a_wins[:, None], a, b), np.where(a_wins[:, None], b, a)
    return PreferenceSplit(idx, chosen, rejected, flipped, tie)


TINY = DpoConfig(beta=0.1, epochs=3, lr=3e-3, batch_size=32, eval_every=10, first_epoch_evals=0)


def train_tiny(world, cfg: DpoConfig = TINY, seed: int = 0, m: int = 256):
    ref = tiny_policy(world, 1).requires_grad_(False)
    policy = copy.deepcopy(ref).requires_grad_(True)
    train = trivial_pairs(world, m, seed=10)
    heldout = trivial_pairs(world, 200, seed=11)
    pairs = Pairs.of(ref, world, train, np.ones(m, dtype=bool), 64)
    clean = Pairs.of(ref, world, heldout, ~heldout.gold_tie, 64)
    acc = []

    def evaluate(step: int) -> None:
        acc.append(pair_accuracy(*clean.implicit_rewards(policy, world, cfg.beta, 64)))

    history = train_dpo(policy, world, pairs, cfg, np.random.default_rng(seed), evaluate)
    return policy, history, acc


@pytest.mark.parametrize("loss", ["dpo", "ipo", "slic"])
def test_a_trivial_preference_set_is_learned(world, loss):
    _, history, acc = train_tiny(world, dataclasses.replace(TINY, loss=loss))
    assert acc[0] == 0.5  # policy = reference: every margin is exactly 0
    assert acc[-1] > 0.85, acc  # held-out pairs, clean labels
    assert len(history) == 3 * 8 and history[-1]["epoch"] == 3.0
    assert np.mean([h["loss"] for h in history[-8:]]) < np.mean([h["loss"] for h in history[:8]])


def test_the_policy_moves_towards_the_preferred_answers(world):
    """More "a" per sampled answer after training on pairs that prefer more "a"."""
    policy, _, _ = train_tiny(world)
    idx = np.zeros(2000, dtype=int)
    before = world.gold(idx, sample_answers(tiny_policy(world, 1), world, idx, torch.Generator()))
    after = world.gold(idx, sample_answers(policy, world, idx, torch.Generator()))
    assert after.mean() > before.mean() + 0.3, (before.mean(), after.mean())


def test_same_seed_same_training(world):
    cfg = dataclasses.replace(TINY, epochs=1)
    p1, h1, a1 = train_tiny(world, cfg, seed=3)
    p2, h2, a2 = train_tiny(world, cfg, seed=3)
    _, h3, _ = train_tiny(world, cfg, seed=4)
    assert h1 == h2 and a1 == a2
    assert h1 != h3
    for a, b in zip(p1.parameters(), p2.parameters(), strict=True):
        assert torch.equal(a, b)


# ---- the experiment and the CLI ----------------------------------------------------------------

SMALL = [
    "--pairs", "300", "--eval-pairs", "60", "--dpo-epochs", "2", "--dpo-batch-size", "32",
    "--dpo-eval-every", "5",
]  # fmt: skip


def small_config(**changes):
    return get_preset("toy-dpo").replace(
        **{
            "preferences.pairs": 300,
            "preferences.eval_pairs": 60,
            "reward_models.members": 2,
            "reward_models.epochs": 1,
            "dpo.epochs": 2,
            "dpo.batch_size": 32,
            "dpo.eval_every": 5,
            "dpo.first_epoch_evals": 2,
            "dpo.eval_samples": 16,
            **changes,
        }
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_experiment_layout_and_reproducibility(cache):
    calls = []
    out = run_experiment(
        small_config(), progress=lambda f, m: calls.append(m), cache=ArtifactCache(cache)
    )
    again = run_experiment(small_config(), cache=ArtifactCache(cache))
    r = out.result
    assert r["curves"] == again.result["curves"] and r["samples"] == again.result["samples"]
    (curve,) = r["curves"]
    assert curve["method"] == "dpo" and curve["objective"] == "dpo" and curve["beta"] == 0.03
    per_epoch = r["pairs"]["steps_per_epoch"]
    assert per_epoch == math.ceil(r["pairs"]["train"] / 32)
    assert r["pairs"]["train"] < r["pairs"]["train_all"] == 300  # held-out prompts' pairs out
    steps = [p["step"] for p in curve["points"]]
    assert steps == eval_schedule(per_epoch, 2, 5, 2)
    first = curve["points"][0]
    assert set(first) >= {"step", "epoch", "kl", "gold", "implicit_acc", "implicit_margin"}
    assert first["kl"] == 0.0 and first["gold"] == pytest.approx(0.0, abs=1e-9)
    assert first["implicit_acc"] == 0.5 and first["implicit_margin"] == 0.0
    assert first["proxy"] is None  # no ensemble trained by default
    assert [p["epoch"] for p in curve["points"]] == [s / per_epoch for s in steps]
    assert curve["points"][-1]["epoch"] == 2.0 and curve["points"][-1]["kl"] > 0
    assert curve["fit"]["form"] == "rl" and curve["fit"]["n_points"] == len(steps)
    assert r["reward_models"] == [] and not any(h.startswith("proxy/") for h in r["cache_hits"])
    assert "epoch_at_peak" in r["summary"][curve["label"]]
    s = r["samples"][0]
    assert set(s) >= {"step", "epoch", "prompt", "answer", "gold", "kl", "implicit_reward"}
    assert s["prompt"] in r["prompts"]["eval"]
    assert len(r["training"]) == 2 * per_epoch
    assert sum("DPO step" in m for m in calls) == 2 * per_epoch + 1
    P = len(r["prompts"]["eval"])
    assert out.arrays["gold"].shape == (P, 16) and out.arrays["proxy"].shape == (P, 16, 0)


def test_proxies_score_the_samples_when_asked(cache):
    r = run_experiment(
        small_config(**{"dpo.score_proxies": True}), cache=ArtifactCache(cache)
    ).result
    assert [m["member"] for m in r["reward_models"]] == [0, 1]
    assert all("standardization" in m for m in r["reward_models"])
    first = r["curves"][0]["points"][0]
    assert first["proxy"] == pytest.approx(0.0, abs=1e-9)  # standardized at step 0
    assert len(r["samples"][0]["members"]) == 2


def test_gold_is_standardized_like_ppo_on_the_same_prompts(cache):
    """A DPO and a PPO run of one seed: the same held-out prompts, the same step-0 answers,
    hence the same gold standardization (so their curves share one axis)."""
    from tests.test_ppo import small_config as ppo_config

    d = run_experiment(small_config(seed=5), cache=ArtifactCache(cache)).result
    p = run_experiment(
        ppo_config(seed=5, **{"preferences.pairs": 300, "preferences.eval_pairs": 60}),
        cache=ArtifactCache(cache),
    ).result
    assert d["prompts"] == p["prompts"]
    assert d["normalization"]["gold"] == p["normalization"]["gold"]


@pytest.mark.parametrize("loss", ["ipo", "slic"])
def test_cli_runs_each_loss(tmp_path, monkeypatch, loss):
    monkeypatch.setenv("GOODHART_DATA_DIR", str(tmp_path))
    out = tmp_path / "RESULT.json"
    argv = ["run", "--preset", "toy-dpo", *SMALL, "--dpo-loss", loss, "--dpo-beta", "0.3"]
    assert cli.main([*argv, "--quiet", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["method"] == "dpo" and result["config"]["dpo"]["loss"] == loss
    (curve,) = result["curves"]
    assert curve["objective"] == loss and curve["beta"] == 0.3 and "beta=0.3" in curve["label"]


@pytest.mark.parametrize(
    ("args", "option", "allowed"),
    [
        (["--dpo-beta", "0"], "--dpo-beta", "between 0.0001 and 100"),
        (["--dpo-loss", "kto"], "--dpo-loss", "dpo, ipo, slic"),
        (["--dpo-epochs", "0"], "--dpo-epochs", "between 1 and 1000"),
        (["--dpo-lr", "2"], "--dpo-lr", "between 1e-08 and 1.0"),
        (["--dpo-batch-size", "x"], "--dpo-batch-size", "expected int"),
        (["--dpo-proxies", "maybe"], "--dpo-proxies", "true or false"),
    ],
)
def test_cli_bad_values_exit_2(tmp_path, capsys, args, option, allowed):
    out = tmp_path / "RESULT.json"
    code = cli.main(["run", "--preset", "toy-dpo", *SMALL, *args, "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert option in err and allowed in err
    assert not out.exists()
