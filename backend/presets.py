"""Named starting points. The CLI's --preset and the app's preset buttons use these.

The best-of-n presets were chosen by measurement over seeds 0-2 (benchmarks/recipes.py; README,
"Choosing the presets"), by claim 3 of Coste et al.: WCO and UWO lose at most 25% of their peak
gain by n = N on average while the average single member loses at least 50%. (Re-measured each
time proxy training's rounding changed, 2026-12-06: that afternoon toy-bon-clean missed it by a
hair, WCO losing 25.3% on average; that evening every preset but toy-bon-shared holds it on
average; README, "Choosing the presets".)
"""

from __future__ import annotations

from backend.config import ExperimentConfig

# The old default recipe (8,000 pairs, 2 epochs): proxies under-trained (held-out loss near
# log 2), errors 88% correlated, and at n = N 97% of the members' squared error is shared, so no
# objective of their scores can avoid the hack.
SHARED = {"preferences.pairs": 8000, "reward_models.epochs": 2}

PRESETS: dict[str, tuple[str, ExperimentConfig]] = {
    "toy-bon": (
        "Best-of-n in the toy world with 25% label noise as in the paper: 5 proxies fine-tuned "
        "from the SFT policy on the same 16,000 pairs (own head init and data order), 8 epochs "
        "(Coste et al.'s noisy setting at CPU scale)",
        ExperimentConfig(),
    ),
    "toy-bon-clean": (
        "Best-of-n with clean labels: 5 proxies on 8,000 pairs, Adam lr 3e-3, 4 epochs: single "
        "proxies lose more than their whole peak gain, WCO and UWO lose 25% and 15% of theirs "
        "(means over seeds 0-2; seed 0: 21% and 36%)",
        ExperimentConfig().replace(
            **{
                "preferences.label_noise": 0.0,
                "preferences.pairs": 8000,
                "reward_models.epochs": 4,
                "reward_models.lr": 3e-3,
            }
        ),
    ),
    "toy-bon-shared": (
        "Best-of-n whose proxies share their errors on purpose: 8,000 noisy pairs and only 2 "
        "epochs, so every member learns the same shallow rule; no objective of their scores can "
        "see the hack they share (Eisenstein et al.)",
        ExperimentConfig().replace(**SHARED),
    ),
    "toy-bon-pretrain": (
        "toy-bon with members that differ by pretraining: each proxy starts from its own SFT "
        "run (SFT seeds 0-4), as Eisenstein et al. recommend",
        ExperimentConfig().replace(**{"reward_models.diversity": "pretrain"}),
    ),
    # PPO on toy-bon's very proxies (the same 16,000 pairs and recipe: member i is one cached
    # artifact for both methods), so best-of-n and PPO of one seed compare like for like.
    "toy-ppo": (
        "PPO in the toy world against proxy 0 with no KL penalty, on toy-bon's 5 proxies (pick "
        "--objective, --kl-coef, --steps)",
        ExperimentConfig(method="ppo"),
    ),
    # Direct alignment on toy-bon's very pairs. Chosen by measurement over 3 seeds (docs/dpo.md):
    # with Adam, every beta up to about 0.1 moves the policy alike at first (the loss is nearly
    # linear in the margin there); beta only bites once beta * margin reaches about 1. At beta
    # 0.03 (lr 5e-4, 5 epochs) gold peaks near one epoch and falls below its peak; at beta 0.1
    # it falls less, at 0.3 and 1 hardly (a smaller KL budget).
    "toy-dpo": (
        "DPO in the toy world on toy-bon's noisy preference pairs (25% label noise), no reward "
        "model, beta 0.03, 5 epochs (pick --dpo-loss dpo|ipo|slic, --dpo-beta, --dpo-epochs; "
        "--dpo-proxies true lets toy-bon's proxies score its samples)",
        ExperimentConfig(method="dpo").replace(**{"dpo.beta": 0.03}),
    ),
}


def get_preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        from backend.config import ConfigError

        raise ConfigError("--preset", f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name][1]
