"""Named starting points. The CLI's --preset and the app's preset buttons use these."""

from __future__ import annotations

from backend.config import ExperimentConfig

PRESETS: dict[str, tuple[str, ExperimentConfig]] = {
    "toy-bon": (
        "Best-of-n in the toy world with 25% label noise and 5 proxies (Coste et al.'s noisy "
        "setting at CPU scale)",
        ExperimentConfig(),
    ),
    "toy-ppo": (
        "PPO in the toy world against proxy 0 with no KL penalty, on the same 5 noisy proxies as "
        "toy-bon (pick --objective, --kl-coef, --steps)",
        ExperimentConfig(method="ppo"),
    ),
}


def get_preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        from backend.config import ConfigError

        raise ConfigError("--preset", f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name][1]
