"""One config in, stages run with progress callbacks, one result out.

Stages and what their cache key hashes (each includes the key of what it reads):
  sft        world name + SftConfig                     the initial policy (shipped in assets/)
  prefs      sft + PreferenceConfig + seed               noisy train pairs, clean held-out pairs
  proxy_i    prefs + RewardModelConfig (not K) + i       one trained member and its accuracy
  samples    sft + P + N + seed                          N answers for P prompts and their gold
  scores_i   proxy_i + samples                           member i's raw scores of those answers
The hf world (backend/worlds/hf.py) has no SFT stage: its key (policy and gold files, prompts,
lengths, dtypes) stands in for the sft key, and each member's key adds the proxy base's files.
Member artifacts are per member, so growing an ensemble from 5 to 8 trains only 3 new members,
and changing an objective or lambda reuses everything: only the curves are recomputed.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from backend import assets
from backend.best_of_n import bon_curves
from backend.cache import ArtifactCache, stable_hash
from backend.config import ExperimentConfig, validate
from backend.objectives import standard_objectives, standardize
from backend.policy import sample_answers
from backend.ppo import run_ppo
from backend.preferences import PreferenceSplit, make_preferences
from backend.reward_models import heldout_accuracy, score, train_proxy, unique_rows
from backend.runtime import Progress, RunContext
from backend.seeding import stage_seed, torch_generator
from backend.summary import summarize_curves
from backend.worlds.base import World
from backend.worlds.registry import check_prompt_counts, make_world


@dataclass
class ExperimentOutput:
    """result: the RESULT.json layout. arrays: the standardized score matrix and the answers
    (gold (P,N), proxy (P,N,K), prompt_idx (P,), answers (P,N,T) token ids, vocab (V,),
    prompts (P,))."""

    result: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def versions() -> dict:
    import transformers

    from backend import __version__

    return {
        "goodhart_lab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


class Runner(RunContext):
    """Runs the stages of one experiment: the shared ones (initial policy, preference pairs,
    proxies) here, then the method's (best-of-n here, PPO in backend/ppo.py)."""

    def __init__(self, cfg: ExperimentConfig, cache: ArtifactCache, progress, should_stop):
        super().__init__(validate(cfg), cache, progress, should_stop)
        self.world: World = make_world(cfg, self.device)
        check_prompt_counts(cfg, len(self.world.prompts()))

    # ---- stages -------------------------------------------------------------------------------

    def sft(self):
        """The initial policy and its key (the SFT policy of a toy world, or the hf world's
        loaded policy: the world knows which)."""
        self.stage("sft", 0.0, self.world.initial_policy_message)
        return self.timed("sft_s", self.world.initial_policy, self.cfg, self.cache, self.device)

    def preferences(self, sft_key: str) -> tuple[str, PreferenceSplit, PreferenceSplit]:
        self.stage("preferences", 0.05, "sampling and labelling preference pairs")
        key = stable_hash(sft_key, dataclasses.asdict(self.cfg.preferences), self.cfg.seed)

        def build(folder: Path) -> None:
            train, heldout = make_preferences(
                self.world, self.policy, self.cfg.preferences, stage_seed(self.cfg.seed, "prefs")
            )
            train.save(folder / "train.npz")
            heldout.save(folder / "heldout.npz")

        def load(folder: Path) -> tuple[PreferenceSplit, PreferenceSplit]:
            return PreferenceSplit.load(folder / "train.npz"), PreferenceSplit.load(
                folder / "heldout.npz"
            )

        train, heldout = self.timed(
            "preferences_s", self.cache.load_or_create, "prefs", key, build, load
        )
        return key, train, heldout

    def member(self, prefs_key: str, i: int, train, heldout):
        rm = dataclasses.asdict(self.cfg.reward_models)
        rm.pop("members")  # member i does not depend on how many others there are
        key = stable_hash(prefs_key, rm, i, *self.world.proxy_key_parts())

        def build(folder: Path) -> None:
            seq = stage_seed(self.cfg.seed, "proxy", i)
            proxy = self.new_proxy(int(seq.generate_state(1)[0]))
            losses = train_proxy(
                proxy, self.world, train, self.cfg.reward_models, torch_generator(seq, "cpu")
            )
            assets.save_state(proxy, folder / "model.safetensors")
            acc = heldout_accuracy(proxy, self.world, heldout)
            stats = {"heldout_acc_gold": acc, "train_loss": losses}
            (folder / "stats.json").write_text(json.dumps(stats))

        def load(folder: Path):
            proxy = self.new_proxy(0)
            assets.load_state(proxy, folder / "model.safetensors")
            return proxy, json.loads((folder / "stats.json").read_text())

        proxy, stats = self.timed(
            "reward_models_s", self.cache.load_or_create, "proxy", key, build, load
        )
        return key, proxy, stats

    def new_proxy(self, seed: int):
        """A proxy with a newly initialized head, as the world builds them."""
        return self.world.new_proxy(self.policy, self.cfg.reward_models, seed)

    def samples(self, sft_key: str) -> tuple[str, dict[str, np.ndarray]]:
        P, N = self.cfg.bon.num_prompts, self.cfg.bon.samples
        key = stable_hash(sft_key, P, N, self.cfg.seed)

        def build(folder: Path) -> None:
            seq = stage_seed(self.cfg.seed, "samples")
            rng = np.random.default_rng(seq)
            n_prompts = len(self.world.prompts())
            # Every prompt once before any repeats, in a seeded order.
            prompt_idx = np.concatenate(
                [rng.permutation(n_prompts) for _ in range(-(-P // n_prompts))]
            )[:P]
            flat_idx = np.repeat(prompt_idx, N)  # (P*N,)
            answers = sample_answers(
                self.policy, self.world, flat_idx, torch_generator(seq, self.device)
            )  # (P*N, T)
            gold = self.world.gold(flat_idx, answers)
            np.savez(
                folder / "samples.npz",
                prompt_idx=prompt_idx,
                answers=answers.reshape(P, N, -1),
                gold=gold.reshape(P, N),
            )

        def load(folder: Path) -> dict[str, np.ndarray]:
            with np.load(folder / "samples.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("prompt_idx", "answers", "gold")}
            if arrays["answers"].shape[:2] != (P, N) or arrays["gold"].shape != (P, N):
                raise ValueError(f"samples.npz holds {arrays['gold'].shape}, not ({P}, {N})")
            return arrays

        return key, self.timed("sampling_s", self.cache.load_or_create, "samples", key, build, load)

    def member_scores(self, member_key: str, samples_key: str, proxy, samples) -> np.ndarray:
        key = stable_hash(member_key, samples_key)

        def build(folder: Path) -> None:
            P, N, T = samples["answers"].shape
            flat_idx = np.repeat(samples["prompt_idx"], N)
            flat_answers = samples["answers"].reshape(P * N, T)
            first, inverse = unique_rows(flat_idx, flat_answers)
            raw = score(proxy, self.world, flat_idx[first], flat_answers[first])[inverse]
            np.save(folder / "scores.npy", raw.reshape(P, N))

        def load(folder: Path) -> np.ndarray:
            raw = np.load(folder / "scores.npy", allow_pickle=False)
            if raw.shape != samples["gold"].shape:
                raise ValueError(f"scores.npy holds {raw.shape}, not {samples['gold'].shape}")
            return raw

        return self.timed("scoring_s", self.cache.load_or_create, "scores", key, build, load)

    # ---- the whole run ------------------------------------------------------------------------

    def ensemble(self) -> tuple[str, list[str], list, list[dict]]:
        """Shared by every method: SFT policy, preference pairs, and the K trained proxies.

        Returns (sft_key, member_keys, proxies, reward_model_stats)."""
        self.policy, sft_key = self.sft()
        prefs_key, train, heldout = self.preferences(sft_key)
        K = self.cfg.reward_models.members
        keys, proxies, stats = [], [], []
        for i in range(K):
            self.stage("reward_models", 0.1 + 0.3 * i / K, f"training proxy {i + 1} of {K}")
            key, proxy, st = self.member(prefs_key, i, train, heldout)
            keys.append(key)
            proxies.append(proxy)
            stats.append({"member": i, **st})
        return sft_key, keys, proxies, stats

    def run(self) -> ExperimentOutput:
        t_start = time.perf_counter()
        sft_key, member_keys, proxies, reward_models = self.ensemble()
        run_method = {"bon": self.run_bon, "ppo": self.run_ppo}[self.cfg.method]
        result, arrays = run_method(sft_key, member_keys, proxies, reward_models)
        self.timings["total_s"] = time.perf_counter() - t_start
        self.progress(1.0, "done")
        result.update(
            {
                "config": self.cfg.to_dict(),
                "world": {
                    "name": self.world.name,
                    "gold_description": self.world.gold_description,
                },
                "reward_models": reward_models,
                "summary": summarize_curves(result["curves"]),
                "timings": {k: round(v, 4) for k, v in self.timings.items()},
                "cache_hits": list(self.cache.hits),
                "cache_repairs": list(self.cache.repairs),
                "device": str(self.device),
                "versions": versions(),
            }
        )
        return ExperimentOutput(result, arrays)

    def run_bon(self, sft_key, member_keys, proxies, reward_models) -> tuple[dict, dict]:
        """Best-of-n: sample once, score with gold and every member, curves from the matrix."""
        cfg = self.cfg
        self.stage("samples", 0.4, f"sampling {cfg.bon.samples} answers for each prompt")
        samples_key, samples = self.samples(sft_key)
        raw_scores = []
        for i, (key, proxy) in enumerate(zip(member_keys, proxies, strict=True)):
            self.stage("scoring", 0.6 + 0.3 * i / len(proxies), f"scoring with proxy {i + 1}")
            raw_scores.append(self.member_scores(key, samples_key, proxy, samples))
        self.stage("curves", 0.95, "computing best-of-n curves")
        t0 = time.perf_counter()
        # Standardize on the initial policy's answers (this very matrix): population std, over
        # all P*N answers. Gold: shift so n = 1 scores 0, scale to unit std.
        gold, gold_mu, gold_sd = standardize(samples["gold"])
        proxy, proxy_mu, proxy_sd = standardize(np.stack(raw_scores, axis=-1), axis=(0, 1))
        for rm, mu, sd in zip(reward_models, proxy_mu, proxy_sd, strict=True):
            rm["standardization"] = {"mean": float(mu), "std": float(sd)}
        K = len(proxies)
        curves = bon_curves(gold, proxy, standard_objectives(K, cfg.bon.uwo_lambda))
        self.timings["curves_s"] = time.perf_counter() - t0
        result = {
            "normalization": {
                "gold": {"mean": float(gold_mu), "std": float(gold_sd)},
                "convention": "gold and each member standardized over the P*N answers of the "
                "initial policy (population std); UWO uses the population variance over members",
            },
            "curves": curves,
        }
        world = self.world
        arrays = {
            "gold": gold,
            "proxy": proxy,
            "prompt_idx": samples["prompt_idx"],
            "answers": samples["answers"],
            "prompts": np.array([world.prompts()[i] for i in samples["prompt_idx"]]),
            "vocab": world.vocab(),
        }
        return result, arrays

    def run_ppo(self, sft_key, member_keys, proxies, reward_models) -> tuple[dict, dict]:
        """PPO against one objective of the same (cached) proxies as best-of-n: backend/ppo.py."""
        return run_ppo(self, proxies, reward_models)


def run_experiment(
    cfg: ExperimentConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache: ArtifactCache | None = None,
) -> ExperimentOutput:
    """Run one experiment. progress(fraction, message) is called at each stage; should_stop() is
    checked at every stage boundary and raises Cancelled when it returns True."""
    return Runner(cfg, cache or ArtifactCache(), progress, should_stop).run()
