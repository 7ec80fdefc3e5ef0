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
    # Chosen by measurement over seeds (docs/dpo.md): TENTATIVE.
    "toy-dpo": (
        "DPO in the toy world on toy-bon's noisy preference pairs (25% label noise), no reward "
        "model: pick --dpo-loss dpo|ipo|slic, --dpo-beta, --dpo-epochs; --dpo-proxies true lets "
        "toy-bon's proxies score its samples",
        ExperimentConfig(method="dpo"),
    ),
}


def get_preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        from backend.config import ConfigError

        raise ConfigError("--preset", f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name][1]
