"""Named starting points. The CLI's --preset and the app's preset buttons use these."""

from __future__ import annotations

from backend.config import ExperimentConfig

PRESETS: dict[str, tuple[str, ExperimentConfig]] = {
    "toy-bon": (
        "Best-of-n in the toy world with 25% label noise and 5 proxies (Coste et al.'s noisy "
        "setting at CPU scale)",
        ExperimentConfig(),
    ),
    # PPO searches far harder than best-of-n (KL 10-80 nats against best-of-n's 7), so it needs
    # better proxies before the ensemble's benefit shows: with 8,000 pairs the five members share
    # exploits (prompt words, one favourite item repeated) and every objective collapses alike;
    # with 12,000, WCO and UWO beat the single proxy on every seed (docs/ppo.md).
    "toy-ppo": (
        "PPO in the toy world against proxy 0 with no KL penalty: 25% label noise, 12,000 pairs, "
        "5 proxies (pick --objective, --kl-coef, --steps; --pairs 12000 gives best-of-n the same "
        "proxies)",
        ExperimentConfig(method="ppo").replace(**{"preferences.pairs": 12_000}),
    ),
    # Direct alignment on toy-bon's very pairs. Chosen by measurement over 3 seeds (docs/dpo.md):
    # with Adam, every beta up to about 0.1 moves the policy alike at first (the loss is nearly
    # linear in the margin there); beta only bites once beta * margin reaches about 1. At beta
    # 0.03 (lr 5e-4, 5 epochs) gold peaks near one epoch and ends below the initial policy on
    # every seed; at beta 0.1 it falls less, at 0.3 and 1 hardly (a smaller KL budget).
    "toy-dpo": (
        "DPO in the toy world on toy-bon's noisy preference pairs (25% label noise, 8,000 "
        "pairs), no reward model, beta 0.03, 5 epochs (pick --dpo-loss dpo|ipo|slic, --dpo-beta, "
        "--dpo-epochs; --dpo-proxies true lets toy-bon's proxies score its samples)",
        ExperimentConfig(method="dpo").replace(**{"dpo.beta": 0.03}),
    ),
}


def get_preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        from backend.config import ConfigError

        raise ConfigError("--preset", f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name][1]
