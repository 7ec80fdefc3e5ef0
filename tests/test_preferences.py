import numpy as np
import pytest

from backend.preferences import label_pairs


@pytest.mark.parametrize("noise", [0.0, 0.1, 0.25, 0.5])
def test_noise_flips_exactly_that_fraction(noise):
    rng = np.random.default_rng(0)
    gold_a, gold_b = rng.normal(size=1000), rng.normal(size=1000)
    a_wins, flipped, tie = label_pairs(gold_a, gold_b, noise, rng)
    assert flipped.sum() == round(noise * 1000)
    assert not tie.any()
    clean = gold_a > gold_b
    np.testing.assert_array_equal(a_wins, clean ^ flipped)  # exactly the flipped ones are wrong
    assert np.mean(a_wins != clean) == pytest.approx(noise)


def test_ties_are_broken_at_random():
    rng = np.random.default_rng(1)
    g = np.zeros(4000)
    a_wins, flipped, tie = label_pairs(g, g, 0.0, rng)
    assert tie.all() and not flipped.any()
    assert 0.45 < a_wins.mean() < 0.55
