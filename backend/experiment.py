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
import math
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from backend import ARITHMETIC, assets, runtime
from backend.best_of_n import bon_curves
from backend.cache import ArtifactCache, stable_hash
from backend.config import ExperimentConfig, validate
from backend.diagnostics import ensemble_stats
from backend.dpo import run_dpo
from backend.estimate import ProgressScale, StageCost, stage_costs
from backend.forked import Child, at_once, run_forked
from backend.objectives import standard_objectives, standardize
from backend.policy import SAMPLER_KEY as SAMPLER
from backend.policy import sample_answers
from backend.ppo import norm_answers_key, norm_key, run_ppo
from backend.preferences import PreferenceSplit, make_preferences
from backend.reward_models import heldout_accuracy, score, train_proxy, unique_rows
from backend.runtime import Cancelled, Progress, RunContext, T, cpu_workers
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
    from importlib.metadata import PackageNotFoundError, version

    from backend import __version__

    try:  # from the installed package's metadata: importing transformers takes seconds
        tf_version = version("transformers")
    except PackageNotFoundError:
        tf_version = None
    return {
        "goodhart_lab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": tf_version,
        "numpy": np.__version__,
        "arithmetic": dict(ARITHMETIC),
    }


NEAR_CHANCE = 0.55  # held-out accuracy below this is flagged: chance is 0.5, and with ~1,000
# held-out pairs one standard error of an accuracy near 0.5 is 0.016


class Runner(RunContext):
    """Runs the stages of one experiment: the shared ones (initial policy, preference pairs,
    proxies) here, then the method's (best-of-n here, PPO in backend/ppo.py, DPO in
    backend/dpo.py)."""

    def __init__(self, cfg: ExperimentConfig, cache: ArtifactCache, progress, should_stop):
        super().__init__(validate(cfg), cache, progress, should_stop)
        self.world: World = make_world(cfg, self.device)
        check_prompt_counts(cfg, len(self.world.prompts()))
        self.sampler: Child | None = None  # best-of-n answers sampled beside (samples_beside)

    # ---- cache keys (also what plan_run checks: the estimate trains nothing) ----------------

    def preferences_key(self, sft_key: str, member: int | None = None) -> str:
        own = () if member is None else (("member", member),)
        prefs = dataclasses.asdict(self.cfg.preferences)
        return stable_hash(sft_key, prefs, self.cfg.seed, SAMPLER, *own)

    def member_data_key(self, i: int, sft_key: str, prefs_key: str) -> str:
        """The key of the pairs member i trains on (member_pairs)."""
        if self.cfg.reward_models.diversity == "independent" and i > 0:
            return self.preferences_key(sft_key, member=i)
        return prefs_key  # bootstrap: RewardModelConfig (diversity) and i in the member's key

    def member_key(self, i: int, data_key: str, backbone_key: tuple) -> str:
        rm = dataclasses.asdict(self.cfg.reward_models)
        rm.pop("members")  # member i does not depend on how many others there are
        trainer = ("proxies", ARITHMETIC["proxies"])  # how training rounds
        return stable_hash(data_key, rm, i, *self.world.proxy_key_parts(), *backbone_key, trainer)

    def samples_key(self, sft_key: str) -> str:
        return stable_hash(sft_key, self.cfg.bon.num_prompts, self.cfg.bon.samples,
                           self.cfg.seed, SAMPLER)  # fmt: skip

    def scores_key(self, member_key: str, samples_key: str) -> str:
        return stable_hash(member_key, samples_key)

    def cache_plan(self) -> dict:
        """What of this run the cache holds already (True) or must be computed (False), from
        the keys the stages use; nothing is loaded or trained. {"sft": bool, "prefs": bool,
        "proxies", "scores", "ppo_norm": [bool] * K (only the ones the method uses), "samples":
        bool, "samples_early": bool (best-of-n answers to sample beside the pairs and the
        proxies: samples_early), "member_prefs": [bool] (an "independent" ensemble's members 1..
        whose own pairs a member to train needs), "member_sft": [bool] (likewise a "pretrain"
        member's own SFT run)}."""
        cfg, cache, world = self.cfg, self.cache, self.world
        K = cfg.reward_models.members
        uses_proxies = cfg.method != "dpo" or cfg.dpo.score_proxies
        sft_key = world.initial_policy_key(cfg)
        plan = {"sft": world.has_initial_policy(cfg, cache), "prefs": False, "samples": False}
        if sft_key is None:  # not known before loading: everything counts as to compute
            none = [False] * K
            plan.update(proxies=none if uses_proxies else [], scores=none, ppo_norm=none)
            return plan
        prefs_key = self.preferences_key(sft_key)
        plan["prefs"] = cache.has("prefs", prefs_key)
        keys: list[str | None] = []
        for i in range(K if uses_proxies else 0):
            backbone: tuple | None = ()
            if cfg.reward_models.diversity == "pretrain" and i > 0:
                bk = world.member_backbone_key(cfg, i)
                backbone = (("backbone", bk),) if bk else None
            data_key = self.member_data_key(i, sft_key, prefs_key)
            keys.append(None if backbone is None else self.member_key(i, data_key, backbone))
        plan["proxies"] = [k is not None and cache.has("proxy", k) for k in keys]
        # What a member still to train needs beyond the shared pairs and initial policy.
        todo = [i for i, done in enumerate(plan["proxies"]) if i > 0 and not done]
        diversity = cfg.reward_models.diversity
        plan["member_prefs"] = [
            cache.has("prefs", self.preferences_key(sft_key, member=i))
            for i in (todo if diversity == "independent" else [])
        ]
        pretrain = todo if diversity == "pretrain" else []
        plan["member_sft"] = [world.has_member_backbone(cfg, i, cache) for i in pretrain]
        samples_key = self.samples_key(sft_key)
        plan["samples"] = cache.has("samples", samples_key)
        plan["samples_early"] = self.samples_early(plan["samples"])
        plan["scores"] = [k is not None and cache.has("scores", self.scores_key(k, samples_key))
                          for k in keys]  # fmt: skip
        answers = norm_answers_key(cfg, sft_key)
        plan["ppo_norm"] = [k is not None and cache.has("ppo_norm", norm_key(k, answers))
                            for k in keys]  # fmt: skip
        return plan

    def costs(self) -> list[StageCost]:
        """The stages with what is reused and rough seconds (backend/estimate.py)."""
        workers = cpu_workers() if self.device.type == "cpu" and self.world.thread_safe else 1
        return stage_costs(self.cfg, self.cache_plan(), workers)

    # ---- stages -------------------------------------------------------------------------------

    def sft(self):
        """The initial policy and its key (the SFT policy of a toy world, or the hf world's
        loaded policy: the world knows which)."""
        self.stage("sft", 0.0, self.world.initial_policy_message)
        return self.timed("sft_s", self.world.initial_policy, self.cfg, self.cache, self.device)

    def preferences(
        self, sft_key: str, member: int | None = None
    ) -> tuple[str, PreferenceSplit, PreferenceSplit]:
        """The experiment's pairs, or (member i of an "independent" ensemble) a member's own
        freshly sampled and labelled ones."""
        key = self.preferences_key(sft_key, member)
        seq = stage_seed(self.cfg.seed, "prefs", *([] if member is None else [member]))

        def build(folder: Path) -> None:
            train, heldout = make_preferences(self.world, self.policy, self.cfg.preferences, seq)
            train.save(folder / "train.npz")
            heldout.save(folder / "heldout.npz")

        def load(folder: Path) -> tuple[PreferenceSplit, PreferenceSplit]:
            return PreferenceSplit.load(folder / "train.npz"), PreferenceSplit.load(
                folder / "heldout.npz"
            )

        train, heldout = self.cache.load_or_create("prefs", key, build, load)
        return key, train, heldout

    def member(self, i: int, sft_key: str, prefs_key: str, train, heldout, on_batch=None):
        """Member i of the ensemble, trained once and cached: (key, proxy, stats). on_batch(done,
        total) after each training minibatch (progress)."""
        data_key, pairs = self.member_pairs(i, sft_key, prefs_key, train)
        backbone, backbone_key = self.member_backbone(i)
        key = self.member_key(i, data_key, backbone_key)

        def build(folder: Path) -> None:
            seq = stage_seed(self.cfg.seed, "proxy", i)
            head_seed = int(seq.generate_state(1)[0])
            proxy = self.world.new_proxy(backbone, self.cfg.reward_models, head_seed)
            stats = train_proxy(
                proxy, self.world, pairs, self.cfg.reward_models, torch_generator(seq, "cpu"),
                heldout, on_batch,
            )  # fmt: skip
            assets.save_state(proxy, folder / "model.safetensors")
            acc = heldout_accuracy(proxy, self.world, heldout)
            stats = {"heldout_acc_gold": acc, **stats, "near_chance": acc < NEAR_CHANCE}
            (folder / "stats.json").write_text(json.dumps(stats))

        def load(folder: Path):
            proxy = self.world.new_proxy(backbone, self.cfg.reward_models, 0)
            assets.load_state(proxy, folder / "model.safetensors")
            return proxy, json.loads((folder / "stats.json").read_text())

        proxy, stats = self.cache.load_or_create("proxy", key, build, load)
        return key, proxy, stats

    def member_pairs(self, i: int, sft_key: str, prefs_key: str, train) -> tuple[str, object]:
        """(key of the data, the pairs) member i trains on, as the ensemble's diversity says."""
        diversity = self.cfg.reward_models.diversity
        if diversity == "bootstrap":  # the key's RewardModelConfig (diversity) and i tell them
            rng = np.random.default_rng(stage_seed(self.cfg.seed, "bootstrap", i))
            return prefs_key, train.take(rng.integers(0, len(train), size=len(train)))
        if diversity == "independent" and i > 0:
            key, own, _ = self.preferences(sft_key, member=i)
            return key, own  # key == member_data_key(i, ...)
        return prefs_key, train

    def member_backbone(self, i: int) -> tuple[object, tuple]:
        """(the model member i's proxy starts from, what of it goes into its key): the initial
        policy, or with "pretrain" diversity member i's own SFT run (the world builds it)."""
        if self.cfg.reward_models.diversity != "pretrain" or i == 0:
            return self.policy, ()
        model, key = self.world.member_backbone(self.cfg, i, self.cache, self.device)
        return model, (("backbone", key),)

    def samples(self, sft_key: str) -> tuple[str, dict[str, np.ndarray]]:
        P, N = self.cfg.bon.num_prompts, self.cfg.bon.samples
        key = self.samples_key(sft_key)

        def build(folder: Path) -> None:
            rng = np.random.default_rng(stage_seed(self.cfg.seed, "samples"))
            n_prompts = len(self.world.prompts())
            # Every prompt once before any repeats, in a seeded order.
            prompt_idx = np.concatenate(
                [rng.permutation(n_prompts) for _ in range(-(-P // n_prompts))]
            )[:P]

            done = []

            def one_prompt(j: int) -> np.ndarray:  # its own random stream: prompts run in parallel
                gen = torch_generator(stage_seed(self.cfg.seed, "samples", j), self.device)
                out = sample_answers(self.policy, self.world, np.full(N, prompt_idx[j]), gen)
                done.append(j)
                self.tick(0.4 + 0.2 * len(done) / P, f"sampling {N} answers for each prompt: "
                          f"{len(done)} of {P} prompts")  # fmt: skip
                return out

            answers = np.stack(self.parallel(one_prompt, range(P)))  # (P, N, T)
            flat_idx = np.repeat(prompt_idx, N)  # (P*N,)
            gold = self.world.gold(flat_idx, answers.reshape(P * N, -1))
            np.savez(folder / "samples.npz", prompt_idx=prompt_idx, answers=answers,
                     gold=gold.reshape(P, N))  # fmt: skip

        def load(folder: Path) -> dict[str, np.ndarray]:
            with np.load(folder / "samples.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("prompt_idx", "answers", "gold")}
            if arrays["answers"].shape[:2] != (P, N) or arrays["gold"].shape != (P, N):
                raise ValueError(f"samples.npz holds {arrays['gold'].shape}, not ({P}, {N})")
            return arrays

        return key, self.timed("sampling_s", self.cache.load_or_create, "samples", key, build, load)

    def samples_early(self, cached: bool) -> bool:
        """Whether the best-of-n answers are sampled early, in a forked child beside the
        preference pairs and the proxies' training (samples_beside): they need the initial
        policy only, and the pairs are one random stream on one core, so the other core would
        idle through them (0.6 s of a cold toy-bon run)."""
        return self.cfg.method == "bon" and not cached and self.can_fork()

    def samples_beside(self, sft_key: str) -> Child | None:
        """Start sampling the best-of-n answers in a forked child, which stores them in the
        cache (bon_samples collects them); None where samples_early says no. The child's
        progress is not shown (the parent's stages are), and its numbers are the ones the
        parent would compute: each prompt has its own random stream."""
        if not self.samples_early(self.cache.has("samples", self.samples_key(sft_key))):
            return None

        def job(send) -> tuple[float, list, list]:
            os.environ["GOODHART_THREADS"] = "1"  # one core: the parent's work has the others
            self.timings = {}

            def work() -> float:
                self.samples(sft_key)
                return self.timings["sampling_s"]

            # Its progress is dropped by the parent: sending it checks that the parent lives.
            return self.child_work(lambda frac, msg: send(None), work)

        return Child(job)

    def bon_samples(self, sft_key: str) -> tuple[str, dict[str, np.ndarray]]:
        """The best-of-n answers: the early sampler's (waited for, then loaded from the cache;
        its time is the sampling's), else sampled here."""
        sampler, self.sampler = self.sampler, None
        if sampler is None:
            return self.samples(sft_key)
        seconds, hits, repairs = sampler.result(
            self.should_stop, lambda: Cancelled("cancelled while sampling the answers")
        )
        out = self.from_children(lambda: self.samples(sft_key), [(hits, repairs)])
        self.add_time("sampling_s", seconds)
        return out

    def member_scores(self, member_key: str, samples_key: str, proxy, samples) -> np.ndarray:
        key = self.scores_key(member_key, samples_key)

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

        return self.cache.load_or_create("scores", key, build, load)

    # ---- the whole run ------------------------------------------------------------------------

    def ensemble(self) -> tuple[str, list[str], list, list[dict]]:
        """Shared by every method: SFT policy, preference pairs, and the K trained proxies
        (members train side by side: RunContext.parallel).

        Returns (sft_key, member_keys, proxies, reward_model_stats)."""
        self.policy, sft_key = self.sft()
        self.sampler = self.samples_beside(sft_key)
        beside = " (and best-of-n answers beside them)" if self.sampler else ""
        self.stage("preferences", 0.05, f"sampling and labelling preference pairs{beside}")
        prefs_key, train, heldout = self.timed("preferences_s", self.preferences, sft_key)
        keys, proxies, stats = self.proxies(sft_key, prefs_key, train, heldout)
        return sft_key, keys, proxies, stats

    def proxies(self, sft_key: str, prefs_key: str, train, heldout) -> tuple[list, list, list]:
        """The K trained proxies, side by side: members still to train in forked processes
        (train_forked) where the run may fork, else in threads (RunContext.parallel):
        (member_keys, proxies, reward_model_stats)."""
        K = self.cfg.reward_models.members
        self.stage("reward_models", 0.1, f"training {K} proxies")
        finished = []
        share = [0.0] * K  # each member's fraction of its training batches done
        E = self.cfg.reward_models.epochs

        def on_batch(i: int, done: int, total: int) -> None:
            share[i] = done / total
            epoch = min(E, 1 + done * E // total)
            self.tick(0.1 + 0.3 * sum(share) / K, f"training proxy {i + 1} of {K}, epoch "
                      f"{epoch} of {E} ({len(finished)} of {K} ready)")  # fmt: skip

        def ready(i: int) -> None:
            share[i] = 1.0
            finished.append(i)
            self.progress(0.1 + 0.3 * sum(share) / K, f"{len(finished)} of {K} proxies ready")

        def train_one(i: int, report):
            return self.member(i, sft_key, prefs_key, train, heldout, report)

        def one_member(i: int):
            self.stage("reward_models", 0.1 + 0.3 * sum(share) / K, f"training proxy {i + 1}")
            out = train_one(i, lambda done, total: on_batch(i, done, total))
            ready(i)
            return out

        t0 = time.perf_counter()
        todo = [i for i, done in enumerate(self.cache_plan()["proxies"]) if not done]
        if len(todo) > 1 and self.can_fork():
            built = self.train_forked(todo, train_one, on_batch, ready)
            members = [built[i] if i in built else one_member(i) for i in range(K)]
        else:
            members = self.parallel(one_member, range(K))
        self.add_time("reward_models_s", time.perf_counter() - t0)
        keys = [key for key, _, _ in members]
        proxies = [proxy for _, proxy, _ in members]
        stats = [{"member": i, **st} for i, (_, _, st) in enumerate(members)]
        return keys, proxies, stats

    def train_forked(self, todo: list[int], train_one, on_batch, ready) -> dict[int, tuple]:
        """Members `todo` trained in forked processes, as many at a time as forked.at_once says
        for cpu_workers() cores (backend/forked.py: threads of one process do not run these
        small steps side by side), then loaded here
        from the cache: {i: train_one(i, None)}. Each child runs train_one(i, report), which
        trains the member and stores it, and reports through this process (on_batch(i, done,
        total), ready(i)); the cache's hits and repairs are the children's, not this process's
        loads of what they built."""

        def job(i: int):
            def run(send) -> tuple[None, list, list]:
                last = [-float("inf")]

                def report(done: int, total: int) -> None:
                    if time.monotonic() - last[0] >= runtime.TICK_S / 4 or done == total:
                        last[0] = time.monotonic()
                        send(("batch", done, total))

                def work() -> None:
                    train_one(i, report)
                    send(("ready",))

                return self.child_work(lambda frac, msg: send(("progress", frac, msg)), work)

            return run

        def on_message(j: int, message: tuple) -> None:
            kind, *args = message
            if kind == "progress":
                self.relay(*args)
            elif kind == "batch":
                on_batch(todo[j], *args)
            else:
                ready(todo[j])

        children = run_forked(
            [job(i) for i in todo], at_once(len(todo), cpu_workers()), on_message, self.should_stop,
            lambda: Cancelled("cancelled while training the proxies"),
        )  # fmt: skip
        return self.from_children(
            lambda: {i: train_one(i, None) for i in todo}, [(h, r) for _, h, r in children]
        )

    def child_work(self, report: Progress, work: Callable[[], T]) -> tuple[T, list, list]:
        """`work()` in a forked child of this run (backend/forked.py), for its parent: the
        child's own lock (nothing else reports here), progress through `report` (to the parent),
        no stop checks (the parent asks, and ends the child). Returns (work's value, the cache
        hits and repairs it made), for the parent's from_children."""
        self._lock = threading.Lock()
        self._report = report
        self.should_stop = lambda: False
        hits, repairs = len(self.cache.hits), len(self.cache.repairs)
        value = work()
        return value, self.cache.hits[hits:], self.cache.repairs[repairs:]

    def from_children(self, load: Callable[[], T], logs: list[tuple[list, list]]) -> T:
        """`load()` what forked children built and stored, from the cache, with the cache's log
        made theirs: their hits and repairs (`logs`, of child_work), not this process's loads
        of what they built."""
        n = len(self.cache.hits)
        out = load()
        del self.cache.hits[n:]
        for hits, repairs in logs:
            self.cache.hits.extend(hits)
            self.cache.repairs.extend(repairs)
        return out

    def run(self) -> ExperimentOutput:
        """Every stage, on one torch thread per piece of work (RunContext.parallel)."""
        threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            return self._run()
        finally:
            torch.set_num_threads(threads)
            if self.sampler is not None:  # the run failed or was cancelled before it waited
                self.sampler.stop()
                self.sampler = None

    def _run(self) -> ExperimentOutput:
        t_start = time.perf_counter()
        # Progress becomes roughly the fraction of the estimated time, so the pages can tell
        # how long is left (backend/estimate.py).
        costs = self.costs()
        self.scale = ProgressScale(self.cfg.method, costs)
        if self.cfg.method == "dpo":  # trains no reward model: the proxies only when asked for
            result, arrays, reward_models = self.run_dpo()
        else:
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
                # what the estimate said at the start, per stage (backend.estimate.pace)
                "estimate": {
                    c.stage: round(c.seconds, 3) for c in costs if math.isfinite(c.seconds)
                },
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
        if self.sampler is not None:
            self.stage("samples", 0.4, "collecting the answers sampled beside the proxies")
        else:
            self.stage("samples", 0.4, f"sampling {cfg.bon.samples} answers for each prompt")
        samples_key, samples = self.bon_samples(sft_key)
        K = len(proxies)
        self.stage("scoring", 0.6, f"scoring the answers with {K} proxies")
        scored = []

        def one_member(i: int) -> np.ndarray:
            out = self.member_scores(member_keys[i], samples_key, proxies[i], samples)
            scored.append(i)
            self.tick(0.6 + 0.35 * len(scored) / K, f"scoring the answers: {len(scored)} of {K} "
                      "proxies done")  # fmt: skip
            return out

        raw_scores = self.timed("scoring_s", self.parallel, one_member, range(K))
        self.stage("curves", 0.95, "computing best-of-n curves")
        t0 = time.perf_counter()
        # Standardize on the initial policy's answers (this very matrix): population std, over
        # all P*N answers. Gold: shift so n = 1 scores 0, scale to unit std.
        gold, gold_mu, gold_sd = standardize(samples["gold"])
        proxy, proxy_mu, proxy_sd = standardize(np.stack(raw_scores, axis=-1), axis=(0, 1))
        for rm, mu, sd in zip(reward_models, proxy_mu, proxy_sd, strict=True):
            rm["standardization"] = {"mean": float(mu), "std": float(sd)}
        curves = bon_curves(gold, proxy, standard_objectives(K, cfg.bon.uwo_lambda))
        ensemble = ensemble_stats(gold, proxy, cfg.reward_models.diversity)
        self.timings["curves_s"] = time.perf_counter() - t0
        result = {
            "normalization": {
                "gold": {"mean": float(gold_mu), "std": float(gold_sd)},
                "convention": "gold and each member standardized over the P*N answers of the "
                "initial policy (population std); UWO uses the population variance over members",
            },
            "curves": curves,
            "ensemble": ensemble,
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
        return run_ppo(self, proxies, reward_models, member_keys, sft_key)

    def run_dpo(self) -> tuple[dict, dict, list[dict]]:
        """DPO (IPO, SLiC) on the same preference pairs: backend/dpo.py. The proxies (the same
        cached artifacts as best-of-n's) are trained only with dpo.score_proxies, to score the
        policy's samples. Returns (result, arrays, reward_model_stats)."""
        self.policy, sft_key = self.sft()
        self.stage("preferences", 0.05, "sampling and labelling preference pairs")
        prefs_key, train, heldout = self.timed("preferences_s", self.preferences, sft_key)
        proxies, stats = [], []
        if self.cfg.dpo.score_proxies:
            _, proxies, stats = self.proxies(sft_key, prefs_key, train, heldout)
        result, arrays = run_dpo(self, train, heldout, proxies, stats)
        return result, arrays, stats


def run_experiment(
    cfg: ExperimentConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache: ArtifactCache | None = None,
) -> ExperimentOutput:
    """Run one experiment. progress(fraction, message) is called at each stage; should_stop() is
    checked at every stage boundary and raises Cancelled when it returns True."""
    return Runner(cfg, cache or ArtifactCache(), progress, should_stop).run()


def plan_run(cfg: ExperimentConfig, cache: ArtifactCache | None = None) -> list[StageCost]:
    """What `cfg` would reuse from the cache and what it must compute, with rough seconds
    (backend/estimate.py), without loading or training anything: the form's cost estimate."""
    return Runner(cfg, cache or ArtifactCache(), None, None).costs()
