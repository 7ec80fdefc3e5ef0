"""The Hugging Face world on tiny models built from configs (tests/hf_support.py): two policy
architectures (GPT-2, GPT-NeoX as Pythia), two gold architectures (DeBERTa-v2 as OpenAssistant's
reward model, GPT-2), proxies from a causal LM and from a BERT encoder; left padding, the gold's
own tokenizer, EOS, a full best-of-n run, a short PPO run, the CLI, and every error a user meets."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.batching import AdaptiveBatch
from backend.cache import ArtifactCache
from backend.config import ConfigError, ExperimentConfig, HfWorldConfig, validate
from backend.dpo import sequence_logprobs
from backend.experiment import run_experiment
from backend.policy import sample_answers
from backend.ppo import response_mask, sequence_ids, token_logprobs
from backend.seeding import stage_seed, torch_generator
from backend.worlds.hf.world import HfWorld
from backend.worlds.registry import check_world
from tests.hf_support import build_zoo, write_prompts

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    return {**build_zoo(root), "prompts": write_prompts(root / "prompts.jsonl")}


def hf_cfg(zoo, policy="gpt2", gold="deberta_gold", proxy="neox", **kw) -> HfWorldConfig:
    return HfWorldConfig(
        policy=zoo[policy], gold=zoo[gold], proxy_base=zoo[proxy], prompt_file=zoo["prompts"],
        max_answer_tokens=8, **kw,
    )  # fmt: skip


def tiny(zoo, method="bon", **kw) -> ExperimentConfig:
    changes = {
        "preferences.pairs": 64, "preferences.eval_pairs": 32, "reward_models.members": 2,
        "reward_models.epochs": 1, "bon.num_prompts": 4, "bon.samples": 16,
    }  # fmt: skip
    return ExperimentConfig(world="hf", method=method, device="cpu", hf=hf_cfg(zoo, **kw)).replace(
        **changes
    )


# ---- the world: prompts, padding, EOS, tokenizers --------------------------------------------


def test_prompts_are_left_padded_and_masked(zoo):
    world = HfWorld(hf_cfg(zoo), CPU)
    assert len(world.prompts()) == 32
    assert world.tokenizer.pad_token == world.tokenizer.eos_token  # GPT-2 has no pad token
    assert world.tokenizer.padding_side == "left"
    idx = np.arange(32)
    ids, mask = world.prompt_ids(idx), world.prompt_mask(idx)  # (32, Tp)
    lengths = [len(world.tokenizer(p)["input_ids"]) for p in world.prompts()]
    assert ids.shape == (32, world.prompt_len) and world.prompt_len == max(lengths)
    assert mask.sum(1).tolist() == lengths
    assert (mask[:, -1] == 1).all() and (ids[mask == 0] == world.pad_id).all()
    short = int(np.argmin(lengths))
    real = ids[short][mask[short] == 1].tolist()
    assert world.tokenizer.decode(real) == world.prompts()[short]


def test_long_prompts_keep_their_end(zoo):
    world = HfWorld(hf_cfg(zoo, max_prompt_tokens=12), CPU)
    assert world.prompt_len == 12
    assert world.tokenizer.decode(world.prompt_ids([0])[0]).endswith("### Response:")


@pytest.mark.parametrize("policy", ["gpt2", "neox"])
def test_padding_does_not_change_the_policy_logprobs(zoo, policy):
    """A short prompt left-padded in the batch gets the same answer log-probs as alone."""
    world = HfWorld(hf_cfg(zoo, policy=policy), CPU)
    model = world.load_policy()
    idx = np.array([int(world.prompt_mask(np.arange(32)).sum(1).argmin())])
    answers = torch.randint(0, len(world.tokenizer), (1, 8))
    ids = sequence_ids(world, idx, answers, CPU)  # (1, Tp+T), left-padded
    padded = token_logprobs(
        model, ids, world.prompt_len, **world.model_inputs(idx, ids.shape[1], CPU)
    )
    real = world.prompt_ids(idx)[world.prompt_mask(idx) == 1][None]  # (1, Tp') no padding
    alone = token_logprobs(model, torch.cat([real, answers], 1), real.shape[1])
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)
    without_mask = token_logprobs(model, ids, world.prompt_len)
    assert not torch.allclose(without_mask, alone, atol=1e-3)  # the mask matters


@pytest.mark.parametrize("policy", ["gpt2", "neox"])
def test_sampler_logprobs_equal_a_full_forward(zoo, policy):
    """The KV-cache sampler with its growing mask and position ids gives the log-probs that one
    masked forward pass over prompt + answer gives (what PPO trains on)."""
    world = HfWorld(hf_cfg(zoo, policy=policy, sample_batch_size=7), CPU)
    model = world.load_policy()
    idx = np.arange(32)
    gen = torch_generator(stage_seed(0, "t"), CPU)
    answers, lp = sample_answers(model, world, idx, gen, return_logprobs=True)  # (32, 8)
    ids = sequence_ids(world, idx, answers, CPU)
    inputs = world.model_inputs(idx, ids.shape[1], CPU)
    mask = response_mask(ids[:, world.prompt_len :], world.eos_id)
    full = token_logprobs(model, ids, world.prompt_len, **inputs) * mask
    torch.testing.assert_close(lp, full, atol=1e-4, rtol=1e-4)


def test_answers_stop_at_eos_and_decode_without_it(zoo):
    world = HfWorld(hf_cfg(zoo, policy="neox"), CPU)
    model = copy.deepcopy(world.load_policy())
    with torch.no_grad():  # every hidden state = b, and EOS's logit about 3 above the rest
        model.gpt_neox.final_layer_norm.weight.zero_()
        b = torch.randn(32)
        model.gpt_neox.final_layer_norm.bias.copy_(b)
        model.get_output_embeddings().weight[world.eos_id] = 3.0 * b / b.dot(b)
    gen = torch_generator(stage_seed(0, "eos"), CPU)
    answers = sample_answers(model, world, np.repeat(np.arange(32), 4), gen)  # (128, 8)
    ended = (answers == world.eos_id).any(1)
    assert 0.2 < ended.mean() < 1.0  # some answers end early, some are cut at 8 tokens
    for row, text in zip(answers, world.decode_answers(answers), strict=True):
        stop = np.flatnonzero(row == world.eos_id)
        if len(stop):
            assert (row[stop[0] + 1 :] == world.pad_id).all()
            assert text == world.tokenizer.decode(row[: stop[0]])
    lengths = world.answer_lengths(answers)
    assert (lengths[~ended] == 8).all() and (lengths[ended] < 8).all()


@pytest.mark.parametrize("gold", ["deberta_gold", "gpt2_gold"])
def test_gold_scores_prompt_and_answer_text_with_its_own_tokenizer(zoo, gold):
    """Batched, right-padded gold scores equal scoring each (prompt, answer) text alone."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    world = HfWorld(hf_cfg(zoo, gold=gold), CPU)
    idx = np.array([0, 1, 2, 5])
    answers = np.array(
        [world.tokenizer.encode(t) for t in ["apple pear", " cat", "x", " red"]], dtype=object
    )
    rows = np.full((4, 8), world.pad_id)
    for i, a in enumerate(answers):
        rows[i, : len(a)] = a
        rows[i, len(a)] = world.eos_id
    got = world.gold(idx, rows)
    tok = AutoTokenizer.from_pretrained(zoo[gold])
    model = AutoModelForSequenceClassification.from_pretrained(zoo[gold]).eval()
    with torch.no_grad():
        want = [
            model(**tok(world.prompts()[i], a, return_tensors="pt")).logits[0, 0].item()
            for i, a in zip(idx, world.decode_answers(rows), strict=True)
        ]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert world.decode_answers(rows)[:2] == ["apple pear", " cat"]
    assert world.gold_tokenizer.padding_side == "right"


def test_proxies_differ_by_seed_in_their_new_head_only(zoo):
    world = HfWorld(hf_cfg(zoo, proxy="bert_base"), CPU)
    a, b, a2 = world.build_proxy(1), world.build_proxy(2), world.build_proxy(1)
    sa, sb, sa2 = (p.model.state_dict() for p in (a, b, a2))
    head = [k for k in sa if not k.startswith(a.model.base_model_prefix + ".")]
    assert head and all(torch.equal(sa[k], sa2[k]) for k in sa)
    assert any(not torch.equal(sa[k], sb[k]) for k in head if "weight" in k)
    assert all(torch.equal(sa[k], sb[k]) for k in sa if k not in head)


def test_bfloat16_models_sample_score_and_give_values(zoo):
    """What `--policy-dtype bfloat16 --gold-dtype bfloat16` (auto on a GPU) runs through."""
    from backend.ppo import ValueModel

    world = HfWorld(hf_cfg(zoo, policy_dtype="bfloat16", gold_dtype="bfloat16"), CPU)
    policy = world.load_policy()
    assert policy.dtype == torch.bfloat16 and world.gold_model.dtype == torch.bfloat16
    idx = np.arange(6)
    answers = sample_answers(policy, world, idx, torch_generator(stage_seed(0, "bf16"), CPU))
    gold = world.gold(idx, answers)
    assert gold.dtype == np.float64 and np.isfinite(gold).all()
    ids = sequence_ids(world, idx, answers, CPU)
    values = ValueModel(policy)(ids, world.prompt_len, **world.model_inputs(idx, ids.shape[1], CPU))
    assert values.shape == (6, 8) and values.dtype == torch.float32


# ---- whole runs ---------------------------------------------------------------------------------


def test_full_best_of_n_run_and_its_cache(zoo, tmp_path):
    from app.describe import config_summary
    from backend.worlds.base import decode_tokens

    cache = ArtifactCache(tmp_path / "cache")
    cfg = tiny(zoo)
    out = run_experiment(cfg, cache=cache)
    r, z = out.result, out.arrays
    assert r["world"]["name"] == "hf" and zoo["deberta_gold"] in r["world"]["gold_description"]
    assert r["config"]["hf"]["policy"] == zoo["gpt2"]
    assert [m["member"] for m in r["reward_models"]] == [0, 1]
    assert all(0.0 <= m["heldout_acc_gold"] <= 1.0 for m in r["reward_models"])
    for c in r["curves"]:
        assert [p["n"] for p in c["points"]] == [1, 2, 4, 8, 16]
        assert c["points"][0]["gold"] == pytest.approx(0.0, abs=1e-9)
    assert z["gold"].shape == (4, 16) and z["proxy"].shape == (4, 16, 2)
    assert z["answers"].shape == (4, 16, 8) and len(z["vocab"]) == len(
        HfWorld(cfg.hf, CPU).tokenizer
    )
    np.testing.assert_allclose(z["proxy"].std(axis=(0, 1)), 1.0)
    assert z["gold"].std() == pytest.approx(1.0)
    world = HfWorld(cfg.hf, CPU)
    text = world.decode_answers(z["answers"][0])
    assert decode_tokens(z["answers"][0], z["vocab"]) == [t.strip() for t in text]
    assert str(z["prompts"][0]).endswith("### Response:")
    summary = config_summary(r["config"])
    assert summary.startswith("hf: gpt2-policy, gold deberta-gold")
    assert "(on neox-policy)" in summary

    again = run_experiment(cfg, cache=ArtifactCache(cache.root))
    assert {h.split("/")[0] for h in again.result["cache_hits"]} == {
        "prefs",
        "proxy",
        "samples",
        "scores",
    }
    np.testing.assert_array_equal(again.arrays["proxy"], z["proxy"])
    # Another proxy base: new proxies and scores, the same preference data and samples.
    other_cfg = cfg.replace(**{"hf.proxy_base": zoo["bert_base"]})
    other = run_experiment(other_cfg, cache=ArtifactCache(cache.root))
    hits = {h.split("/")[0] for h in other.result["cache_hits"]}
    assert hits == {"prefs", "samples"}
    np.testing.assert_array_equal(other.arrays["gold"], z["gold"])


def test_short_ppo_run(zoo, tmp_path):
    cfg = tiny(zoo, "ppo", policy="neox", gold="gpt2_gold", proxy="bert_base").replace(
        **{
            "ppo.steps": 3, "ppo.eval_every": 2, "ppo.batch_size": 8, "ppo.eval_samples": 4,
            "ppo.norm_samples": 32, "ppo.eval_prompts": 4, "ppo.lr": 1e-3,
        }
    )  # fmt: skip
    out = run_experiment(cfg, cache=ArtifactCache(tmp_path / "cache"))
    r = out.result
    (curve,) = r["curves"]
    assert [p["step"] for p in curve["points"]] == [0, 2, 3]
    assert curve["points"][0]["kl"] == 0.0 and curve["points"][0]["gold"] == pytest.approx(0.0)
    assert curve["points"][-1]["kl"] != 0.0  # the policy moved
    assert [t["step"] for t in r["training"]] == [1, 2, 3]
    assert all(t["first_ratio_dev"] < 1e-5 for t in r["training"])  # same masks as the rollout
    assert len(r["prompts"]["eval"]) == 4 and len(r["prompts"]["train"]) == 28
    assert r["samples"][0]["prompt"].startswith("Below is an instruction")
    assert out.arrays["gold"].shape == (4, 4) and out.arrays["proxy"].shape == (4, 4, 2)


@pytest.mark.parametrize("policy", ["gpt2", "neox"])
def test_dpo_logprobs_of_a_padded_batch_equal_each_sequence_alone(zoo, policy):
    """Prompts of different lengths (left-padded) and answers of different lengths (right of
    EOS padded) in one batch: each answer's summed log-prob is what it gets alone, unpadded."""
    world = HfWorld(hf_cfg(zoo, policy=policy), CPU)
    model = world.load_policy()
    idx = np.arange(0, 32, 3)  # prompts of every length
    answers = sample_answers(model, world, idx, torch_generator(stage_seed(0, "p"), CPU))
    answers[::2, 3] = world.eos_id  # half of them end early
    batch = sequence_logprobs(model, world, idx, answers)
    for i, p in enumerate(idx):
        real = world.prompt_ids([p])[world.prompt_mask([p]) == 1][None]  # (1, Tp')
        n = int(response_mask(torch.as_tensor(answers[i : i + 1]), world.eos_id).sum())
        ids = torch.cat([real, torch.as_tensor(answers[i : i + 1, :n])], 1)
        alone = token_logprobs(model, ids, real.shape[1]).sum(1)
        torch.testing.assert_close(batch[i : i + 1], alone, atol=1e-4, rtol=1e-5)


def test_short_dpo_run(zoo, tmp_path):
    cfg = tiny(zoo, "dpo", policy="neox", gold="gpt2_gold").replace(
        **{
            "dpo.epochs": 1, "dpo.batch_size": 16, "dpo.eval_every": 2, "dpo.first_epoch_evals": 0,
            "dpo.eval_samples": 4, "dpo.eval_prompts": 4, "dpo.lr": 1e-3,
        }
    )  # fmt: skip
    out = run_experiment(cfg, cache=ArtifactCache(tmp_path / "cache"))
    r = out.result
    (curve,) = r["curves"]
    assert curve["method"] == "dpo" and curve["points"][0]["kl"] == 0.0
    assert curve["points"][0]["implicit_acc"] == 0.5 and curve["points"][-1]["kl"] != 0.0
    assert len(r["prompts"]["eval"]) == 4 and r["reward_models"] == []
    assert r["samples"][0]["prompt"].startswith("Below is an instruction")
    assert out.arrays["gold"].shape == (4, 4)


def test_cli_runs_the_hf_world_and_exits_2_on_bad_input(zoo, tmp_path):
    env = {**os.environ, "GOODHART_DATA_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "backend", "run", "--world", "hf", "--policy", zoo["neox"],
            "--gold", zoo["deberta_gold"], "--proxy-base", zoo["gpt2"], "--prompt-file",
            zoo["prompts"], "--prompt-field", "instruction", "--max-answer-tokens", "6",
            "--method", "bon", "--pairs", "40", "--eval-pairs", "20", "--members", "2",
            "--num-prompts", "3", "--samples", "8", "--rm-epochs", "1", "--device", "cpu",
            "--quiet"]  # fmt: skip
    out = tmp_path / "r.json"
    p = subprocess.run(
        [*base, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    assert (
        r["config"]["hf"]["max_answer_tokens"] == 6
        and r["config"]["hf"]["proxy_base"] == zoo["gpt2"]
    )
    bad = tmp_path / "bad.json"
    p = subprocess.run(
        [*base, "--gold", zoo["neox"], "--out", str(bad)], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 2 and not bad.exists()
    assert "--gold" in p.stderr and "not a one-label" in p.stderr


# ---- errors a user meets --------------------------------------------------------------------


def checked(cfg: ExperimentConfig) -> ExperimentConfig:
    """What a submission checks: the ranges, then the world's files and the hub."""
    return check_world(validate(cfg))


def config_error(cfg: ExperimentConfig) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        checked(cfg)
    return e.value


def test_required_models_and_prompts_name_their_option(zoo):
    good = tiny(zoo)
    options = {"policy": "--policy", "gold": "--gold", "proxy_base": "--proxy-base"}
    for field, option in [*options.items(), ("prompt_file", "--prompt-file")]:
        e = config_error(good.replace(**{f"hf.{field}": ""}))
        assert e.option == option
    assert checked(good) is good


def test_a_model_id_that_cannot_be_reached_offline(zoo, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = config_error(tiny(zoo).replace(**{"hf.policy": "nobody/no-such-model"}))
    assert e.option == "--policy" and "cannot be reached offline" in e.message
    assert "hf download nobody/no-such-model" in e.message


def test_a_model_id_fails_fast_when_the_hub_cannot_be_reached(zoo, monkeypatch):
    """Online mode, but the hub endpoint has nothing listening (a closed local port): the error
    comes at once instead of after the hub client's minute of retries."""
    import time

    from huggingface_hub import constants

    from backend.worlds.hf import models as hf_models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hf_models, "_REACHABLE", {})
    t0 = time.perf_counter()
    e = config_error(tiny(zoo).replace(**{"hf.gold": "nobody/no-such-reward-model"}))
    assert e.option == "--gold" and "cannot be reached from this machine" in e.message
    assert time.perf_counter() - t0 < 10


def test_a_folder_that_is_not_a_model(zoo, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    e = config_error(tiny(zoo).replace(**{"hf.gold": str(tmp_path)}))
    assert e.option == "--gold" and "not a model (it has no config.json)" in e.message
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    e = config_error(tiny(zoo).replace(**{"hf.proxy_base": str(tmp_path)}))
    assert e.option == "--proxy-base" and "no weights" in e.message
    e = config_error(tiny(zoo).replace(**{"hf.policy": str(tmp_path / "missing")}))
    assert e.option == "--policy" and "no such model folder" in e.message
    e = config_error(tiny(zoo).replace(**{"hf.policy": str(tmp_path / "notes.txt")}))
    assert e.option == "--policy" and "is a file" in e.message


@pytest.mark.parametrize("gold, words", [("two_label", "2 labels"), ("gpt2", "GPT2LMHeadModel")])
def test_a_gold_that_is_not_a_one_label_classifier(zoo, gold, words):
    e = config_error(tiny(zoo).replace(**{"hf.gold": zoo[gold]}))
    assert e.option == "--gold" and "not a one-label sequence-classification" in e.message
    assert words in e.message


def test_a_policy_that_is_not_a_causal_lm(zoo):
    e = config_error(tiny(zoo).replace(**{"hf.policy": zoo["deberta_gold"]}))
    assert e.option == "--policy" and "not a causal LM" in e.message


def test_empty_and_malformed_prompt_files(zoo, tmp_path):
    empty, broken = tmp_path / "empty.jsonl", tmp_path / "broken.jsonl"
    empty.write_text("")
    broken.write_text('{"instruction": "a"}\n{oops\n')
    e = config_error(tiny(zoo).replace(**{"hf.prompt_file": str(empty)}))
    assert e.option == "--prompt-file" and "empty" in e.message
    e = config_error(tiny(zoo).replace(**{"hf.prompt_file": str(broken)}))
    assert e.option == "--prompt-file" and "line 2 is not valid JSON" in e.message
    e = config_error(tiny(zoo).replace(**{"hf.prompt_field": "question"}))
    assert e.option == "--prompt-field" and "no field 'question'" in e.message


class _Marker:
    """Unpickling this would create a file: proof that a pickle's code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_weights_are_never_unpickled(zoo, tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(Path(zoo["gpt2"], "config.json").read_text())
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_text(Path(zoo["gpt2"], name).read_text())
    marker = tmp_path / "code-ran"
    with (folder / "pytorch_model.bin").open("wb") as fh:
        pickle.dump({"transformer.wte.weight": _Marker(str(marker))}, fh, protocol=2)
    world = HfWorld(dataclasses.replace(hf_cfg(zoo), policy=str(folder)), CPU)
    with pytest.raises(ConfigError) as e:
        world.load_policy()
    assert e.value.option == "--policy" and "weights_only" in e.value.message
    assert not marker.exists()


def test_cache_keys_follow_the_model_files(zoo, tmp_path):
    import shutil

    gold = tmp_path / "gold"
    shutil.copytree(zoo["deberta_gold"], gold)
    cfg = dataclasses.replace(hf_cfg(zoo), gold=str(gold))
    key = HfWorld(cfg, CPU).key
    assert HfWorld(cfg, CPU).key == key
    weights = gold / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # same bytes, new file: a retrained gold
    os.utime(weights, ns=(0, 1))
    assert HfWorld(cfg, CPU).key != key


# ---- memory --------------------------------------------------------------------------------------


def test_batches_halve_on_out_of_memory_and_keep_the_smaller_size():
    """The real exception type, raised by a function that "runs out of memory" above 5 rows:
    with no GPU here, raising torch.cuda.OutOfMemoryError ourselves is the only way to exercise
    the back-off; on a GPU the same handler catches the allocator's error."""
    calls = []

    def fn(start: int, stop: int) -> list[int]:
        calls.append(stop - start)
        if stop - start > 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return list(range(start, stop))

    batch = AdaptiveBatch(32)
    out = batch.map(fn, 23)
    assert [x for part in out for x in part] == list(range(23))
    assert calls[:3] == [23, 11, 5] and batch.size == 5 and batch.backoffs == 2
    assert all(c <= 5 for c in calls[3:])
    calls.clear()
    batch.map(fn, 10)
    assert calls == [5, 5]  # remembered
    never = AdaptiveBatch(4)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        never.map(lambda a, b: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("x")), 3)
    assert never.size == 1


# ---- the app's form ---------------------------------------------------------------------------


def test_new_experiment_form_offers_the_hf_world_with_the_cli_fields(zoo, tmp_path, monkeypatch):
    from backend.cli import build_parser, config_from_args
    from db import api
    from tests.app_support import no_exceptions, open_page, use_temp_db

    use_temp_db(tmp_path, monkeypatch)
    at = open_page("views/new_experiment.py")
    with pytest.raises(KeyError):
        at.text_input(key="f_hf.policy")  # toy world: no model fields
    at.selectbox(key="f_world").set_value("hf").run()
    no_exceptions(at)
    assert "--policy" in at.text_input(key="f_hf.policy").help
    (err,) = at.error
    assert "required for --world hf" in err.value and at.button(key="submit").disabled
    with pytest.raises(KeyError):
        at.number_input(key="f_reward_models.layers")  # no SFT blocks in this world
    for key, value in [("policy", zoo["gpt2"]), ("gold", zoo["neox"]), ("proxy_base", zoo["neox"]),
                       ("prompt_file", zoo["prompts"])]:  # fmt: skip
        at.text_input(key=f"f_hf.{key}").set_value(value).run()
    assert not at.error  # the files are checked once, on Submit
    at.button(key="submit").click().run()
    (err,) = at.error  # drawn under the gold's field
    assert "not a one-label sequence-classification" in err.value
    at.text_input(key="f_hf.gold").set_value(zoo["deberta_gold"]).run()
    at.number_input(key="f_hf.max_answer_tokens").set_value(16).run()
    assert not at.error and not at.button(key="submit").disabled
    at.button(key="submit").click().run()
    no_exceptions(at)
    (row,) = api.list_experiments()
    cli = ["run", "--world", "hf", "--policy", zoo["gpt2"], "--gold", zoo["deberta_gold"],
           "--proxy-base", zoo["neox"], "--prompt-file", zoo["prompts"],
           "--max-answer-tokens", "16", "--out", "x.json"]  # fmt: skip
    assert row["config"] == config_from_args(build_parser().parse_args(cli)).to_dict()
