"""Ensemble objectives on a (..., K) array of standardized member scores -> (...).

Conventions (also stated in the app):
- Members are standardized first (mean 0, std 1 on the initial policy's answers), so "mean" and
  "min" compare like with like.
- UWO uses the population variance over members, Var = mean_k (r_k - mean)^2 (divide by K, not
  K - 1). With K = 1 it is 0, so UWO equals the single member. The authors' public code mixed
  both conventions; ours is fixed here, once.

Works on numpy arrays and torch tensors alike (PPO scores in torch, best-of-n in numpy).

>>> import numpy as np
>>> r = np.array([[1.0, 2.0, 3.0]])
>>> float(mean(r)[0]), float(wco(r)[0]), round(float(uwo(r, 0.5)[0]), 4)
(2.0, 1.0, 1.6667)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from backend.config import PpoConfig

NAMES = ("single", "mean", "wco", "uwo")
_SINGLE = re.compile(r"single #(\d+)")
_UWO = re.compile(r"uwo \(lambda=([^)]+)\)")


def mean(r):
    return r.mean(-1)


def wco(r):
    """Worst-case optimization: the lowest member (torch tensors have .amin, numpy arrays .min;
    duck-typed so this module does not import torch)."""
    return r.amin(-1) if hasattr(r, "amin") else r.min(-1)


def population_var(r):
    """Var over the last axis with divisor K (not K - 1), for numpy and torch alike."""
    centred = r - r.mean(-1)[..., None]
    return (centred * centred).mean(-1)


def uwo(r, lam: float):
    """Uncertainty-weighted optimization: mean - lambda * population variance."""
    return r.mean(-1) - lam * population_var(r)


@dataclass(frozen=True)
class Objective:
    """One way to turn K member scores into one reward.

    name: "single" | "mean" | "wco" | "uwo"; member: index for "single"; lam: lambda for "uwo".
    """

    name: str
    member: int | None = None
    lam: float | None = None

    def __post_init__(self) -> None:
        if self.name not in NAMES:
            raise ValueError(f"objective must be single, mean, wco or uwo; got {self.name!r}")
        if self.name == "single" and self.member is None:
            raise ValueError("the single objective needs a member index")
        if self.name == "uwo" and self.lam is None:
            raise ValueError("the uwo objective needs lambda")

    def __call__(self, r, members: list[int] | None = None):
        """Apply to standardized scores (..., K), optionally to a subset of members."""
        if members is not None:
            r = r[..., list(members)]
        if self.name == "single":
            return r[..., self.member]
        if self.name == "mean":
            return mean(r)
        if self.name == "wco":
            return wco(r)
        return uwo(r, self.lam)

    @classmethod
    def from_label(cls, label: str, lam: float | None = None) -> Objective:
        """The objective a label names: "single #2", "mean", "wco", "uwo (lambda=0.5)", or a
        bare "uwo" with `lam`. The inverse of `label`; ValueError for anything else."""
        if m := _SINGLE.fullmatch(label):
            return cls("single", member=int(m.group(1)))
        if m := _UWO.fullmatch(label):
            return cls("uwo", lam=float(m.group(1)))
        if label == "uwo":
            return cls("uwo", lam=None if lam is None else float(lam))
        return cls(label)

    @classmethod
    def of_ppo(cls, cfg: PpoConfig) -> Objective:
        """The objective a PPO config optimizes."""
        return cls(
            cfg.objective,
            member=cfg.member if cfg.objective == "single" else None,
            lam=cfg.uwo_lambda if cfg.objective == "uwo" else None,
        )

    @property
    def label(self) -> str:
        if self.name == "single":
            return f"single #{self.member}"
        if self.name == "uwo":
            return f"uwo (lambda={self.lam:g})"
        return self.name

    def to_dict(self) -> dict:
        d: dict = {"objective": self.name}
        if self.name == "single":
            d["member"] = self.member
        if self.name == "uwo":
            d["lambda"] = self.lam
        return d


def standard_objectives(k: int, uwo_lambda: float) -> list[Objective]:
    """Every single member, then mean, WCO and UWO: the curves a run reports."""
    singles = [Objective("single", member=i) for i in range(k)]
    return [*singles, Objective("mean"), Objective("wco"), Objective("uwo", lam=uwo_lambda)]


def standardize(x: np.ndarray, axis=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x - mean) / std with the population std (ddof=0); returns (z, mean, std)."""
    mu = x.mean(axis=axis)
    sd = x.std(axis=axis)
    sd = np.where(sd > 0, sd, 1.0)
    return (x - mu) / sd, mu, sd
