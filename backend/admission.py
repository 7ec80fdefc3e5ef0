"""Admission limits: what one submission may cost, from its sizes alone.

The ranges of backend/config.py say what each value may be; a config at several range limits at
once (10,000 prompts x 65,536 answers, 16 members) would still run for days or exhaust memory.
`cost(cfg)` counts the work that dominates a run, and `check_admission` refuses a config whose
count passes its limit with a ConfigError naming the option that drives it. The defaults admit
every preset and the full reproduction suite with room to spare (about 20x toy-bon); a machine
owner raises them with GOODHART_MAX_<NAME> (e.g. GOODHART_MAX_ANSWERS=20000000). Pure: no files,
no imports, so the form checks it on every change.

    answers       answers the initial policy generates: preference pairs (2 each), best-of-n's
                  P x N, PPO's rollouts, its standardization and its evaluations
    scores        answers scored by the proxies (answers x members)
    pair_updates  reward-model training: pairs x epochs x members
    ppo_updates   PPO's minibatch passes over answers: steps x batch x epochs
    sft_answers   SFT training answers (steps x batch; only when the SFT policy is not shipped)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from backend.config import ConfigError, ExperimentConfig, SftConfig


@dataclass(frozen=True)
class Limits:
    answers: int = 2_000_000
    scores: int = 20_000_000
    pair_updates: int = 5_000_000
    ppo_updates: int = 5_000_000
    sft_answers: int = 20_000_000

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Limits:
        """The defaults, each replaced by GOODHART_MAX_<NAME> when set (a whole number)."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(f"GOODHART_MAX_{f.name.upper()}")
            if raw is not None:
                try:
                    values[f.name] = int(float(raw))
                except ValueError:
                    raise ConfigError(
                        f"GOODHART_MAX_{f.name.upper()}", f"expected a whole number, got {raw!r}"
                    ) from None
        return cls(**values)


def cost(cfg: ExperimentConfig) -> dict[str, tuple[int, str]]:
    """{Limits field: (count, the option that drives it)} of one config (see the module
    docstring)."""
    prefs, rm, bon, ppo = cfg.preferences, cfg.reward_models, cfg.bon, cfg.ppo
    K = rm.members
    pair_answers = 2 * (prefs.pairs + prefs.eval_pairs)
    if cfg.method == "ppo":
        evals = ppo.steps // ppo.eval_every + 2  # step 0, every E steps, the last
        method_answers = (
            ppo.steps * ppo.batch_size
            + ppo.norm_samples
            + evals * ppo.eval_prompts * ppo.eval_samples
        )
        ppo_updates, option = ppo.steps * ppo.batch_size * ppo.epochs, "--steps"
    else:
        method_answers, ppo_updates, option = bon.num_prompts * bon.samples, 0, "--samples"
    shipped = cfg.sft == SftConfig()
    return {
        "answers": (
            pair_answers + method_answers,
            "--pairs" if pair_answers > method_answers else option,
        ),
        "scores": (method_answers * K, option),
        "pair_updates": (prefs.pairs * rm.epochs * K, "--pairs"),
        "ppo_updates": (ppo_updates, "--steps"),
        "sft_answers": (0 if shipped else cfg.sft.steps * cfg.sft.batch_size, "sft.steps"),
    }


_WHAT = {
    "answers": "answers to generate",
    "scores": "proxy scores to compute (answers x members)",
    "pair_updates": "reward-model pair updates (pairs x epochs x members)",
    "ppo_updates": "PPO answer updates (steps x batch x epochs)",
    "sft_answers": "SFT training answers (steps x batch)",
}


def check_admission(cfg: ExperimentConfig, limits: Limits | None = None) -> ExperimentConfig:
    """Refuse a config that costs more than `limits` (default: Limits.from_env()) with a
    ConfigError naming the option that drives the count. Returns cfg."""
    limits = limits or Limits.from_env()
    for name, (count, option) in cost(cfg).items():
        limit = getattr(limits, name)
        if count > limit:
            raise ConfigError(
                option,
                f"this run would need {count:,} {_WHAT[name]}; one submission may need at most "
                f"{limit:,} here (GOODHART_MAX_{name.upper()}): lower this or a related size",
            )
    return cfg
