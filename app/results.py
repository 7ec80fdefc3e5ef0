"""Reading a stored result for display: tables, recomputed best-of-n curves, the answer explorer.

No Streamlit here (so it is tested directly) and no new math: curves come from
backend.best_of_n.bon_curves and objectives from backend.objectives. Shape letters: P prompts,
N answers per prompt, K members, T answer tokens.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd

# Token strings that end an answer in the stored vocab (toy worlds use the first two).
STOP_TOKENS = frozenset({"[EOS]", "[PAD]", "<|endoftext|>", "</s>", "<pad>", "<eos>"})

CONVENTIONS = (
    "Conventions: gold and each proxy member are standardized over the initial policy's answers "
    "(mean 0, population std 1), so n = 1 scores 0 and members are comparable. UWO uses the "
    "population variance over members (divide by K): UWO = mean − λ·Var_k. KL is in nats; for "
    "best-of-n KL = log n − (n − 1)/n."
)


def x_key(curve: dict) -> str:
    """ "n" for best-of-n curves, "step" for PPO curves."""
    first = curve["points"][0] if curve["points"] else {}
    return "step" if "step" in first else "n"


def method_of(result: dict) -> str:
    curves = result.get("curves") or []
    return curves[0]["method"] if curves else result.get("config", {}).get("method", "bon")


def curves_frame(curves: list[dict]) -> pd.DataFrame:
    """Every point of every curve, one row each (long format), with sqrt_kl added."""
    rows = []
    for c in curves:
        head = {k: c.get(k) for k in ("label", "method", "objective", "member", "lambda")}
        for p in c["points"]:
            row = {**head, **{k: v for k, v in p.items() if not isinstance(v, dict | list)}}
            row["sqrt_kl"] = math.sqrt(max(p["kl"], 0.0))
            rows.append(row)
    return pd.DataFrame(rows)


def curves_csv(curves: list[dict]) -> str:
    buf = io.StringIO()
    curves_frame(curves).to_csv(buf, index=False)
    return buf.getvalue()


def result_json(result: dict, curves: list[dict] | None = None) -> str:
    """The stored result; with `curves`, those (e.g. recomputed with another lambda) replace its
    curves and the note says so."""
    out = dict(result)
    if curves is not None and curves is not result.get("curves"):
        out["curves"] = curves
        out["note"] = "curves recomputed in the app from the stored score matrix"
    return json.dumps(out, indent=1, default=str)


def summary_frame(summary: dict | None) -> pd.DataFrame:
    """Headline numbers per curve (backend.summary's layout) as a table."""
    if not summary:
        return pd.DataFrame()
    df = pd.DataFrame.from_dict(summary, orient="index")
    df.index.name = "curve"
    keep = [
        c
        for c in (
            "gold_start",
            "gold_peak",
            "n_at_peak",
            "step_at_peak",
            "kl_at_peak",
            "gold_final",
            "proxy_final",
            "overoptimization",
        )
        if c in df.columns
    ]
    return df[keep]


FIT_COLUMNS = ("form", "alpha", "alpha_se", "beta", "beta_se", "r2", "n_points", "reason")


def fits_frame(curves: list[dict]) -> pd.DataFrame:
    """The fitted functional form of each curve that has one (backend.fits): form, alpha ± se,
    beta ± se, r2, the number of points, and why there is no fit where there is none."""
    rows = []
    for c in curves:
        fit = c.get("fit")
        if isinstance(fit, dict):
            rows.append({"curve": c["label"], **{k: fit[k] for k in FIT_COLUMNS if k in fit}})
    return pd.DataFrame(rows)


def members_frame(result: dict) -> pd.DataFrame:
    """Per member: held-out accuracy against clean gold labels, standardization, last loss."""
    rows = []
    for m in result.get("reward_models") or []:
        std = m.get("standardization") or {}
        loss = m.get("train_loss")
        last = loss[-1] if isinstance(loss, list) and loss else loss
        rows.append(
            {
                "member": m.get("member"),
                "heldout_acc_gold": m.get("heldout_acc_gold"),
                "raw_mean": std.get("mean"),
                "raw_std": std.get("std"),
                "final_train_loss": last,
            }
        )
    return pd.DataFrame(rows)


# ---- best-of-n from the stored score matrix ----------------------------------------------------


def as_float(arrays: dict) -> dict:
    """Score arrays as float64 (shipped examples store float16 to stay small)."""
    out = dict(arrays)
    for k in ("gold", "proxy"):
        if k in out and out[k].dtype != np.float64:
            out[k] = out[k].astype(np.float64)
    return out


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level BPE alphabet: every byte as one printable character."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


_BYTE_OF = {c: b for b, c in _bytes_to_unicode().items()}  # "Ġ" -> 32 (space), ...


def _byte_level(vocab: np.ndarray) -> bool:
    """A byte-level BPE vocabulary (GPT-2, Pythia): pieces carry "Ġ" for a leading space."""
    return len(vocab) > 256 and any("Ġ" in str(w) for w in vocab[:2000])


def decode(ids: np.ndarray, vocab: np.ndarray) -> str:
    """Readable text of one answer (T,) of token ids: tokens up to the first stop token.
    Byte-level BPE pieces (GPT-2's "Ġ") are joined the way that tokenizer writes them."""
    words = []
    for t in np.asarray(ids):
        w = str(vocab[t]) if 0 <= t < len(vocab) else "?"
        if w in STOP_TOKENS:
            break
        words.append(w)
    if any(w.startswith("Ġ") for w in words) or _byte_level(vocab):
        raw = bytes(_BYTE_OF.get(c, ord("?")) for c in "".join(words))
        return raw.decode("utf-8", errors="replace").strip()
    if any(w.startswith("▁") for w in words):  # SentencePiece
        return "".join(words).replace("▁", " ").strip()
    return " ".join(words)


def objective_from_name(name: str, lam: float):
    """ "mean" | "wco" | "uwo" | "single #i" -> backend Objective."""
    from backend.objectives import Objective

    if name.startswith("single"):
        return Objective("single", member=int(name.split("#")[1]))
    return Objective(name, lam=float(lam) if name == "uwo" else None)


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
    obj = objective_from_name(objective_name, lam)
    sub = proxy[idx][:, members]  # (u, k)
    score = proxy[idx, obj.member] if obj.name == "single" else obj(sub)  # (u,)
    order = np.argsort(-score, kind="stable")[:top]
    rows = []
    for rank, j in enumerate(order, start=1):
        a = idx[j]
        row = {
            "rank": rank,
            "answer": decode(arrays["answers"][prompt, a], arrays["vocab"]),
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
        obj = objective_from_name(name, lam)
        score = proxy[idx, obj.member] if obj.name == "single" else obj(proxy[idx][:, members])
        j = int(np.argmax(score))
        a = idx[j]
        rows.append(
            {
                "objective": name,
                "picked answer": decode(arrays["answers"][prompt, a], arrays["vocab"]),
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


# ---- PPO samples ------------------------------------------------------------------------------


def samples_frame(samples: list[dict], step: int | None = None) -> pd.DataFrame:
    """PPO's logged answers (all steps, or one), list-valued fields spread into columns."""
    rows = []
    for s in samples:
        if step is not None and s.get("step") != step:
            continue
        row = {}
        for k, v in s.items():
            if isinstance(v, list) and all(isinstance(x, int | float) for x in v):
                row.update({f"{k}[{i}]": x for i, x in enumerate(v)})
                if len(v) > 1:
                    row[f"{k} spread"] = float(np.std(v))
            elif isinstance(v, dict):
                row.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                row[k] = v
        rows.append(row)
    return pd.DataFrame(rows)


def sample_steps(samples: list[dict]) -> list[int]:
    return sorted({s["step"] for s in samples if "step" in s})


# ---- comparing runs ----------------------------------------------------------------------------


def flatten_config(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flatten_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def used_config(cfg: dict) -> dict:
    """The flattened config without the stage of the method the run did not use."""
    unused = {"bon", "ppo"} - {cfg.get("method")}
    return {k: v for k, v in flatten_config(cfg).items() if k.split(".", 1)[0] not in unused}


def config_differences(configs: list[dict]) -> list[str]:
    """Dotted names of the config fields that differ between runs (the ones worth a label),
    ignoring each run's unused method stage (ppo.* of a best-of-n run)."""
    flats = [used_config(c) for c in configs]
    keys = sorted(set().union(*flats))
    return [k for k in keys if len({json.dumps(f.get(k)) for f in flats}) > 1]


# Fields that name a run best when they differ, most telling first.
LABEL_PRIORITY = (
    "method",
    "preferences.label_noise",
    "reward_models.members",
    "ppo.objective",
    "ppo.kl_coef",
    "bon.uwo_lambda",
    "ppo.uwo_lambda",
    "reward_models.layers",
    "preferences.pairs",
    "world",
    "seed",
)


def run_label(exp: dict, diff: list[str]) -> str:
    """A short legend label: the name, else up to three differing fields, else the id."""
    if exp.get("name"):
        return exp["name"]
    flat = used_config(exp.get("config") or {})
    rank = {k: i for i, k in enumerate(LABEL_PRIORITY)}
    keys = sorted((k for k in diff if k in flat), key=lambda k: rank.get(k, len(rank)))
    parts = [f"{k.split('.')[-1]}={flat[k]}" for k in keys[:3]]
    return ", ".join(parts) if parts else exp["id"]


def _model_name(name: str | None) -> str:
    return str(name or "?").rstrip("/").rsplit("/", 1)[-1]


def config_summary(cfg: dict) -> str:
    """One line a person can read: world, method, ensemble, data and the method's budget."""
    if not cfg:
        return ""
    rm, prefs = cfg.get("reward_models", {}), cfg.get("preferences", {})
    hf = cfg.get("hf") if cfg.get("world") == "hf" else None
    parts = [cfg.get("world", "?")]
    if hf:  # the models by their last path part: "hf: pythia-1.4b-sft, gold reward-model-human"
        parts = [f"hf: {_model_name(hf.get('policy'))}, gold {_model_name(hf.get('gold'))}"]
    if cfg.get("method") == "ppo":
        ppo = cfg.get("ppo", {})
        obj = ppo.get("objective", "?")
        if obj == "single":
            obj = f"single #{ppo.get('member', 0)}"
        elif obj == "uwo":
            obj = f"uwo (λ={ppo.get('uwo_lambda')})"
        parts.append(f"PPO on {obj}, β={ppo.get('kl_coef')}, {ppo.get('steps')} steps")
    else:
        bon = cfg.get("bon", {})
        parts.append(f"best-of-n, P={bon.get('num_prompts')} prompts × N={bon.get('samples')}")
    size = f"on {_model_name(hf.get('proxy_base'))}" if hf else f"{rm.get('layers')} layer"
    parts.append(f"K={rm.get('members')} proxies ({size})")
    parts.append(f"{prefs.get('pairs')} pairs, {prefs.get('label_noise', 0):.0%} label noise")
    parts.append(f"seed {cfg.get('seed')}")
    return " · ".join(str(p) for p in parts)
