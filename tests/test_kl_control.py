import doctest

import pytest

from backend import kl_control
from backend.kl_control import AdaptiveKLController, FixedKLController, make_kl_controller


def test_docstring_examples():
    assert doctest.testmod(kl_control).failed == 0


def test_factory_picks_the_controller():
    assert isinstance(make_kl_controller(0.01), FixedKLController)
    assert isinstance(make_kl_controller(0.01, target=0.0), FixedKLController)
    assert isinstance(make_kl_controller(0.01, target=3.0), AdaptiveKLController)


def test_fixed_never_moves():
    ctl = make_kl_controller(0.05)
    for kl in (0.0, 1.0, 1e6):
        ctl.update(kl)
    assert ctl.value == 0.05


def test_adaptive_follows_the_target():
    ctl = AdaptiveKLController(0.1, target=2.0, horizon=10)
    ctl.update(2.2)  # 10% above target: beta * (1 + 0.1 / 10)
    assert ctl.value == pytest.approx(0.1 * 1.01)
    ctl = AdaptiveKLController(0.1, target=2.0, horizon=10)
    ctl.update(1.8)  # 10% below
    assert ctl.value == pytest.approx(0.1 * 0.99)
    ctl = AdaptiveKLController(0.1, target=2.0, horizon=10)
    ctl.update(0.0)  # far below: error clipped to -0.2
    assert ctl.value == pytest.approx(0.1 * 0.98)
    ctl = AdaptiveKLController(0.1, target=2.0, horizon=10)
    ctl.update(2.0)  # on target: unchanged
    assert ctl.value == pytest.approx(0.1)


def test_adaptive_converges_from_either_side():
    """With KL a decreasing function of beta, beta settles where KL = target."""
    for start in (0.001, 1.0):
        ctl = AdaptiveKLController(start, target=4.0, horizon=2)
        for _ in range(2000):
            ctl.update(0.4 / ctl.value)  # KL = 4 at beta = 0.1
        assert ctl.value == pytest.approx(0.1, rel=0.02)


def test_adaptive_needs_positive_settings():
    with pytest.raises(ValueError):
        AdaptiveKLController(0.0, target=1.0, horizon=10)
    with pytest.raises(ValueError):
        make_kl_controller(0.0, target=1.0)
