"""The suite's experiments: how big they are (SIZES) and which they are (plan)."""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.config import ExperimentConfig
from backend.presets import get_preset

ENSEMBLE = 5  # the paper's ensemble size: best-of-n objectives are compared over members 0..4
NOISES = (0.25, 0.0)  # label noise of the best-of-n experiments (the first is the main setting)
BETAS = (0.0, 0.01)  # PPO's KL penalties in the paper
LAMBDAS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)  # UWO lambdas, from the score matrix (0 = mean)
DPO_BETAS = (
    0.03,
    0.1,
    0.3,
    1.0,
)  # the direct-alignment sweep (Rafailov et al. 2024): small to large


@dataclass(frozen=True)
class Size:
    """How big the suite's experiments are: changes to the toy-bon, toy-ppo and toy-dpo presets
    (and, for the best-of-n run without label noise, `clean` on top of `bon`)."""

    name: str
    doc: str
    bon: dict
    ppo: dict
    ppo_objectives: tuple[str, ...]
    clean: dict = field(default_factory=dict)
    #: Changes to toy-dpo for the beta sweep (run at every beta of DPO_BETAS).
    dpo: dict = field(default_factory=dict)
    #: Members PPO's single objective is run against; the claims use their average (members
    #: differ a lot: on toy-ppo, one member's final gold ranges from -0.6 to -9 over seeds).
    ppo_members: tuple[int, ...] = (0,)


_TINY_DATA = {
    "preferences.pairs": 200,
    "preferences.eval_pairs": 50,
    "reward_models.members": 3,
}
SIZES = {
    "full": Size(
        "full",
        "the presets: toy-bon with 8 proxies (P = 20 x N = 4096), toy-ppo (200 steps) against "
        "single (each of members 0-4, averaged), mean, WCO and UWO, toy-dpo at beta "
        + ", ".join(f"{b:g}" for b in DPO_BETAS),
        {"reward_models.members": 8},
        {},
        ("single", "mean", "wco", "uwo"),
        ppo_members=(0, 1, 2, 3, 4),
    ),
    # Quick shares one ensemble between best-of-n and PPO (toy-bon and toy-ppo train the same
    # members: member i is one cached artifact for both), so it trains 8 + 5 proxies. 100 PPO
    # steps: at 60 the single proxy had not yet fallen below the ensembles.
    "quick": Size(
        "quick",
        "best-of-n with 8 proxies (5 without label noise), N = 1024 answers per prompt; toy-ppo "
        "for 100 steps with 32 evaluation answers per prompt, "
        "against single member 0, WCO and UWO; toy-dpo at each beta for 3 epochs with 64 "
        "evaluation answers per prompt (<= 10 min on 2 CPU cores)",
        {"reward_models.members": 8, "bon.samples": 1024},
        {"ppo.steps": 100, "ppo.eval_samples": 32, "ppo.norm_samples": 1024},
        ("single", "wco", "uwo"),
        clean={"reward_models.members": 5},
        dpo={"dpo.epochs": 3, "dpo.eval_samples": 64},
    ),
    "tiny": Size(  # for tests: seconds, numbers meaningless
        "tiny",
        "test size: 200 pairs, 3 proxies, 4 x 64 best-of-n answers, 4 PPO steps",
        {**_TINY_DATA, "bon.num_prompts": 4, "bon.samples": 64},
        {
            **_TINY_DATA,
            "ppo.steps": 4,
            "ppo.eval_every": 2,
            "ppo.batch_size": 16,
            "ppo.eval_samples": 8,
            "ppo.norm_samples": 64,
        },
        ("single", "wco", "uwo"),
        dpo={
            **_TINY_DATA,
            "dpo.epochs": 1,
            "dpo.batch_size": 32,
            "dpo.eval_every": 2,
            "dpo.first_epoch_evals": 2,
            "dpo.eval_samples": 8,
        },
    ),
}


@dataclass(frozen=True)
class Spec:
    """One experiment of the suite. key: "bon/noise0.25/seed0", "ppo/wco/beta0.01/seed0",
    "ppo/single3/beta0/seed0" (single objective against member 3) or "dpo/beta0.1/seed0"
    (beta: PPO's KL penalty, DPO's beta)."""

    key: str
    method: str
    seed: int
    config: ExperimentConfig
    noise: float | None = None
    objective: str | None = None
    beta: float | None = None
    member: int | None = None

    @property
    def name(self) -> str:
        return f"reproduce · {self.key}"


def bon_key(noise: float, seed: int) -> str:
    return f"bon/noise{noise:g}/seed{seed}"


def ppo_key(objective: str, beta: float, seed: int, member: int = 0) -> str:
    name = f"single{member}" if objective == "single" else objective
    return f"ppo/{name}/beta{beta:g}/seed{seed}"


def dpo_key(beta: float, seed: int) -> str:
    return f"dpo/beta{beta:g}/seed{seed}"


def plan(seeds: int, size: str = "full") -> list[Spec]:
    """The suite's experiments for seeds 0..seeds-1: best-of-n first (they train the proxies),
    then PPO, then DPO's beta sweep (no proxies)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}; got {size!r}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1; got {seeds}")
    sz = SIZES[size]
    bon = get_preset("toy-bon").replace(**sz.bon)
    ppo = get_preset("toy-ppo").replace(**sz.ppo)
    specs = []
    for seed in range(seeds):
        for noise in NOISES:
            changes = {"preferences.label_noise": noise, **(sz.clean if noise == 0 else {})}
            cfg = bon.replace(seed=seed, **changes)
            specs.append(Spec(bon_key(noise, seed), "bon", seed, cfg, noise=noise))
    for seed in range(seeds):
        for beta in BETAS:
            for obj in sz.ppo_objectives:
                for member in sz.ppo_members if obj == "single" else (0,):
                    cfg = ppo.replace(
                        seed=seed,
                        **{"ppo.objective": obj, "ppo.kl_coef": beta, "ppo.member": member},
                    )
                    key = ppo_key(obj, beta, seed, member)
                    specs.append(
                        Spec(key, "ppo", seed, cfg, objective=obj, beta=beta, member=member)
                    )
    dpo = get_preset("toy-dpo").replace(**sz.dpo)
    for seed in range(seeds):
        for beta in DPO_BETAS:
            cfg = dpo.replace(seed=seed, **{"dpo.beta": beta})
            specs.append(Spec(dpo_key(beta, seed), "dpo", seed, cfg, beta=beta))
    return specs


def specs_of(manifest: dict) -> list[Spec]:
    """The plan a reproduction's manifest was made from."""
    return plan(len(manifest["seeds"]), manifest["size"])
