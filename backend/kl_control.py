"""KL controllers: the coefficient beta of the per-token penalty -beta * (log pi - log pi_ref).

One small interface, two implementations behind one factory (as in AlpacaFarm and Ziegler et
al. 2019):
- fixed: beta never changes (beta = 0 is plain PPO against the reward).
- adaptive: beta follows a target KL. After each PPO step with measured KL (nats per answer),
      error = clip(KL / target - 1, -0.2, 0.2),   beta <- beta * (1 + error / horizon),
  so beta grows while the policy is further from the reference than the target and shrinks while
  it is closer; `horizon` (in PPO steps) sets how fast. It is multiplicative, so it needs beta > 0.

>>> ctl = make_kl_controller(0.1, target=2.0, horizon=10)
>>> ctl.update(4.0)  # twice the target: error clipped to +0.2
>>> round(ctl.value, 4)
0.102
>>> fixed = make_kl_controller(0.01)
>>> fixed.update(100.0)
>>> fixed.value
0.01
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class KLController(ABC):
    """Holds the current coefficient `value`; `update(kl)` is called once per PPO step."""

    value: float

    @abstractmethod
    def update(self, kl: float) -> None:
        """Adjust `value` after a step whose rollouts had mean KL `kl` (nats per answer)."""


class FixedKLController(KLController):
    def __init__(self, coef: float) -> None:
        self.value = float(coef)

    def update(self, kl: float) -> None:
        pass


class AdaptiveKLController(KLController):
    """Proportional control of log beta towards a target KL (Ziegler et al. 2019, eq. 2)."""

    def __init__(self, init_coef: float, target: float, horizon: float) -> None:
        if init_coef <= 0 or target <= 0 or horizon <= 0:
            raise ValueError("the adaptive KL controller needs init_coef, target, horizon > 0")
        self.value = float(init_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, kl: float) -> None:
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error / self.horizon


def make_kl_controller(coef: float, target: float = 0.0, horizon: float = 10.0) -> KLController:
    """Adaptive to `target` nats when target > 0, otherwise fixed at `coef`."""
    if target > 0:
        return AdaptiveKLController(coef, target, horizon)
    return FixedKLController(coef)
