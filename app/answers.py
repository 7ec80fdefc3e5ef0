"""The answer explorer: best-of-n made visible for one prompt of a stored score matrix (the answers
an objective picks, their gold and every member's score). Shape letters: P prompts, N answers per
prompt, K members, T answer tokens.

No Streamlit here and no new math: objectives come from backend.objectives, answers are read with
backend.worlds.text.decode_tokens.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.objectives import Objective
from backend.worlds.text import decode_tokens


def _text(arrays: dict, prompt: int, answer: int) -> str:
    return decode_tokens(arrays["answers"][prompt, answer][None], arrays["vocab"])[0]


def draw(N: int, n: int, seed: int) -> np.ndarray:
    """Indices of n of the N answers, without replacement (all of them when n >= N)."""
    if n >= N:
        return np.arange(N)
    return np.sort(np.random.default_rng(seed).choice(N, size=n, replace=False))


def explore_prompt(
    arrays: dict,
    prompt: int,
    objective_name: str,
    lam: float,
    members: list[int],
    n: int,
    seed: int = 0,
    top: int = 10,
) -> pd.DataFrame:
    """Best-of-n for one prompt, made visible: draw n of its N answers, rank the distinct ones by
    the objective (over `members`), and show the top ones with gold and each member's
    standardized score. Rank 1 is the answer best-of-n returns for this draw; "copies" counts
    how often it was drawn; "spread" is the population std of the members' scores: where they
    disagree."""
    gold = arrays["gold"][prompt]  # (N,)
    proxy = arrays["proxy"][prompt]  # (N, K)
    idx = draw(len(gold), n, seed)  # (n,)
    _, first, copies = np.unique(
        arrays["answers"][prompt, idx], axis=0, return_index=True, return_counts=True
    )  # distinct answers among the n drawn (equal answers have equal scores)
    idx = idx[first]
    obj = Objective.from_label(objective_name, lam)
    sub = proxy[idx][:, members]  # (u, k)
    score = proxy[idx, obj.member] if obj.name == "single" else obj(sub)  # (u,)
    order = np.argsort(-score, kind="stable")[:top]
    rows = []
    for rank, j in enumerate(order, start=1):
        a = idx[j]
        row = {
            "rank": rank,
            "answer": _text(arrays, prompt, a),
            "copies": int(copies[j]),
            "objective": float(score[j]),
            "gold": float(gold[a]),
        }
        row.update({f"r{k}": float(proxy[a, k]) for k in members})
        row["spread"] = float(sub[j].std())
        rows.append(row)
    return pd.DataFrame(rows)


def picks_by_objective(
    arrays: dict, prompt: int, names: list[str], lam: float, members: list[int], n: int, seed: int
) -> pd.DataFrame:
    """For one draw of n answers to a prompt: the answer each objective picks and its gold."""
    gold = arrays["gold"][prompt]
    proxy = arrays["proxy"][prompt]
    idx = draw(len(gold), n, seed)
    rows = []
    for name in names:
        obj = Objective.from_label(name, lam)
        score = proxy[idx, obj.member] if obj.name == "single" else obj(proxy[idx][:, members])
        j = int(np.argmax(score))
        a = idx[j]
        rows.append(
            {
                "objective": name,
                "picked answer": _text(arrays, prompt, a),
                "gold": float(gold[a]),
                "objective score": float(score[j]),
                "spread": float(proxy[a, members].std()),
            }
        )
    return pd.DataFrame(rows)


def disagreement(arrays: dict, prompt: int, members: list[int]) -> pd.DataFrame:
    """Every answer to one prompt: members' mean, their spread, and gold (for a scatter)."""
    proxy = arrays["proxy"][prompt][:, members]  # (N, k)
    return pd.DataFrame(
        {
            "mean": proxy.mean(-1),
            "spread": proxy.std(-1),
            "gold": arrays["gold"][prompt],
        }
    )
