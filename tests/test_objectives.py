import numpy as np
import pytest
import torch

from backend import objectives
from backend.objectives import Objective, standard_objectives, standardize

R = np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 0.0]])  # (2, K=3)


def test_objectives_on_hand_computed_array():
    np.testing.assert_allclose(Objective("mean")(R), [3.0, 0.0])
    np.testing.assert_allclose(Objective("wco")(R), [1.0, 0.0])
    np.testing.assert_allclose(Objective("single", member=2)(R), [6.0, 0.0])
    # population variance of (1, 2, 6): mean 3, squares 4 + 1 + 9 = 14, / 3
    np.testing.assert_allclose(Objective("uwo", lam=0.5)(R), [3.0 - 0.5 * 14 / 3, 0.0])


def test_uwo_uses_population_variance_in_numpy_and_torch():
    t = torch.tensor(R)
    assert objectives.population_var(t)[0].item() == pytest.approx(14 / 3)
    assert objectives.population_var(R)[0] == pytest.approx(14 / 3)
    np.testing.assert_allclose(Objective("uwo", lam=2.0)(t).numpy(), Objective("uwo", lam=2.0)(R))
    np.testing.assert_allclose(Objective("wco")(t).numpy(), [1.0, 0.0])


def test_member_subset():
    np.testing.assert_allclose(Objective("wco")(R, members=[1, 2]), [2.0, 0.0])
    np.testing.assert_allclose(Objective("mean")(R, members=[0]), [1.0, 0.0])


def test_uwo_with_one_member_is_that_member():
    r = np.array([[0.3], [-1.2]])
    np.testing.assert_allclose(Objective("uwo", lam=10.0)(r), r[:, 0])


def test_bad_objectives_are_rejected():
    with pytest.raises(ValueError, match="single, mean, wco or uwo"):
        Objective("max")
    with pytest.raises(ValueError, match="member"):
        Objective("single")


def test_standard_objectives_and_standardize():
    names = [o.label for o in standard_objectives(2, 0.5)]
    assert names == ["single #0", "single #1", "mean", "wco", "uwo (lambda=0.5)"]
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(10, 20, 2))
    z, _, _ = standardize(x, axis=(0, 1))
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=(0, 1)), 1.0)
