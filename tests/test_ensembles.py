"""How ensemble members differ (reward_models.diversity), what each member reports (train and
held-out loss per epoch, held-out accuracy, the near-chance flag), and the CLI's checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.cache import ArtifactCache
from backend.config import DIVERSITIES, ExperimentConfig
from backend.experiment import Runner, run_experiment
from backend.reward_models import build_proxy, train_proxy
from backend.seeding import stage_seed, torch_generator

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "preferences.pairs": 240,
    "preferences.eval_pairs": 80,
    "reward_models.members": 3,
    "reward_models.epochs": 2,
    "bon.num_prompts": 4,
    "bon.samples": 32,
}


def runner(tmp_path: Path, diversity: str, **changes) -> Runner:
    cfg = ExperimentConfig().replace(**{**TINY, "reward_models.diversity": diversity, **changes})
    r = Runner(cfg, ArtifactCache(tmp_path / "cache"), None, None)
    r.policy, r.sft_key = r.sft()
    r.prefs_key, r.train, r.heldout = r.preferences(r.sft_key)
    return r


def pairs_of(r: Runner, i: int):
    return r.member_pairs(i, r.sft_key, r.prefs_key, r.train)


def rows(split) -> set:
    return {(int(p), c.tobytes(), j.tobytes()) for p, c, j in zip(
        split.prompt_idx, split.chosen, split.rejected, strict=True)}  # fmt: skip


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_finetune_members_share_the_pairs_and_the_initial_policy(tmp_path):
    r = runner(tmp_path, "finetune")
    for i in range(3):
        key, pairs = pairs_of(r, i)
        assert key == r.prefs_key and pairs is r.train
        assert r.member_backbone(i) == (r.policy, ())


def test_bootstrap_members_resample_the_pairs_with_replacement(tmp_path):
    r = runner(tmp_path, "bootstrap")
    (_, a), (_, b) = pairs_of(r, 0), pairs_of(r, 1)
    assert len(a) == len(b) == len(r.train)
    assert rows(a) <= rows(r.train) and rows(b) <= rows(r.train)  # drawn from the pairs
    assert len(rows(a)) < len(r.train)  # with replacement: some pairs twice, some never
    assert not np.array_equal(a.chosen, b.chosen)
    key_a, _ = pairs_of(r, 0)
    assert key_a == pairs_of(runner(tmp_path, "bootstrap"), 0)[0]  # seeded: the same again


def test_independent_members_get_their_own_pairs(tmp_path):
    r = runner(tmp_path, "independent")
    (k0, a), (k1, b), (k2, c) = (pairs_of(r, i) for i in range(3))
    assert a is r.train and k0 == r.prefs_key  # member 0: the experiment's own pairs
    assert len({k0, k1, k2}) == 3 and len(b) == len(c) == len(r.train)
    assert len(rows(b) & rows(a)) < 0.2 * len(b) and len(rows(b) & rows(c)) < 0.2 * len(b)
    assert 0.2 < b.flipped.mean() < 0.3  # labelled with the same 25% noise


def test_pretrain_members_start_from_their_own_sft_run(tmp_path):
    r = runner(tmp_path, "pretrain")
    assert r.member_backbone(0) == (r.policy, ())
    (b1, key1), (b2, key2) = r.member_backbone(1), r.member_backbone(2)
    assert key1 != key2 and not same_weights(b1, r.policy) and not same_weights(b1, b2)
    assert pairs_of(r, 1)[1] is r.train  # same pairs as everyone


def test_finetune_members_are_the_plain_training_recipe_bit_for_bit(tmp_path):
    """The diversity plumbing changes nothing for finetune: member i is the SFT policy's first
    blocks under a head from seed stage_seed(seed, "proxy", i), trained on the experiment's
    pairs in the order of the same stream, exactly as before the option existed."""
    r = runner(tmp_path, "finetune")
    _, proxy, _ = r.member(1, r.sft_key, r.prefs_key, r.train, r.heldout)
    seq = stage_seed(r.cfg.seed, "proxy", 1)
    plain = build_proxy(r.policy, r.cfg.reward_models.layers, int(seq.generate_state(1)[0]))
    train_proxy(plain, r.world, r.train, r.cfg.reward_models, torch_generator(seq, "cpu"))
    assert same_weights(proxy, plain)


def test_members_report_losses_per_epoch_and_near_chance_ones_are_flagged(tmp_path):
    clean = run_experiment(
        ExperimentConfig().replace(**TINY, **{"preferences.label_noise": 0.0}),
        cache=ArtifactCache(tmp_path / "a"),
    ).result
    for m in clean["reward_models"]:
        assert len(m["train_loss"]) == len(m["heldout_loss"]) == 2
        assert m["heldout_loss"][-1] < np.log(2)  # learned something: better than a coin
        assert m["near_chance"] is False and m["heldout_acc_gold"] > 0.6
    noise = run_experiment(
        ExperimentConfig().replace(**TINY, **{"preferences.label_noise": 0.5}),
        cache=ArtifactCache(tmp_path / "b"),
    ).result  # half the labels flipped: the pairs say nothing about gold
    flagged = [m["near_chance"] for m in noise["reward_models"]]
    assert sum(flagged) >= 2, [m["heldout_acc_gold"] for m in noise["reward_models"]]
    assert clean["ensemble"]["diversity"] == "finetune"


def cli(*args: str, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOODHART_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_bad_diversity_exits_2_naming_the_option_and_its_choices(tmp_path):
    p = cli("run", "--out", str(tmp_path / "r.json"), "--diversity", "seeds", data=tmp_path)
    assert p.returncode == 2 and "--diversity" in p.stderr
    assert all(d in p.stderr for d in DIVERSITIES)
    p = cli("run", "--out", str(tmp_path / "r.json"), "--world", "hf", "--policy", "p",
            "--gold", "g", "--proxy-base", "b", "--prompt-file", "f.jsonl", "--diversity",
            "pretrain", data=tmp_path)  # fmt: skip
    assert p.returncode == 2 and "--diversity: pretrain needs a world with an SFT stage" in p.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_every_diversity_runs_end_to_end_and_trains_its_own_members(tmp_path):
    for d in DIVERSITIES:
        out = run_experiment(
            ExperimentConfig().replace(**{**TINY, "reward_models.diversity": d}),
            cache=ArtifactCache(tmp_path),
        ).result
        assert out["ensemble"]["diversity"] == d == out["config"]["reward_models"]["diversity"]
        assert not [h for h in out["cache_hits"] if h.startswith("proxy/")]  # none shared
    assert len([p for p in (tmp_path / "proxy").iterdir() if not p.name.startswith(".")]) == 12
