"""Words for runs: a one-line summary of a config, what differs between runs, legend labels."""

from __future__ import annotations

import json

from backend.config import DPO_LOSS_NAMES, PpoConfig
from backend.objectives import Objective


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
    unused = {"bon", "ppo", "dpo"} - {cfg.get("method")}
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
    "dpo.loss",
    "dpo.beta",
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
    proxies = True
    if cfg.get("method") == "ppo":
        ppo = cfg.get("ppo", {})
        obj = Objective.of_ppo(PpoConfig(**ppo)).label
        parts.append(f"PPO on {obj}, β={ppo.get('kl_coef')}, {ppo.get('steps')} steps")
    elif cfg.get("method") == "dpo":
        dpo = cfg.get("dpo", {})
        loss = DPO_LOSS_NAMES.get(dpo.get("loss"), dpo.get("loss"))
        parts.append(
            f"{loss} on the pairs (no reward model), β={dpo.get('beta')}, "
            f"{dpo.get('epochs')} epochs, lr {dpo.get('lr')}"
        )
        proxies = bool(dpo.get("score_proxies"))
    else:
        bon = cfg.get("bon", {})
        parts.append(f"best-of-n, P={bon.get('num_prompts')} prompts × N={bon.get('samples')}")
    size = f"on {_model_name(hf.get('proxy_base'))}" if hf else f"{rm.get('layers')} layer"
    if proxies:
        parts.append(f"K={rm.get('members')} proxies ({size})")
    parts.append(f"{prefs.get('pairs')} pairs, {prefs.get('label_noise', 0):.0%} label noise")
    parts.append(f"seed {cfg.get('seed')}")
    return " · ".join(str(p) for p in parts)


def errors_sentence(curves: list[dict], ensemble: dict | None) -> str:
    """One sentence that reads the shared-error numbers for the user: at the last point of the
    most conservative ensemble curve shown (WCO, else UWO, else the mean), how much of the
    members' error at the kept answer is shared, and how correlated their errors are."""
    by_name = {
        c["objective"]: c for c in curves if c["points"] and "shared_error" in c["points"][0]
    }
    name = next((o for o in ("wco", "uwo", "mean") if o in by_name), None)
    if name is None:
        return ""
    curve = by_name[name]
    last = curve["points"][-1]
    K = len(curve.get("members") or []) or None
    err, sd, share = last["shared_error"], last["member_sd"], last.get("shared_share")
    rated = "over-rated" if err >= 0 else "under-rated"
    text = (
        f"At n = {last['n']:,} the answer {curve['label'].upper() if name != 'uwo' else 'UWO'} "
        f"keeps is {rated} by {abs(err):.2f} by the members alike (their shared error, in gold "
        f"std units), while they disagree by ±{sd:.2f} around it"
    )
    if share is not None:
        text += (
            f": {share:.0%} of their squared error there is shared, and no objective of the "
            "members' scores can see that part"
        )
    text += "."
    if ensemble and ensemble.get("error_corr") is not None:
        k = len(ensemble.get("gold_corr") or []) or K
        text += (
            f" Over the initial policy's answers the members' errors correlate at "
            f"{ensemble['error_corr']:.2f}, so averaging all {k} keeps "
            f"{ensemble['averaging_ceiling']:.0%} of one member's error variance."
        )
    return text


SINGLE_GROUP = "single members (average)"  # the single members drawn as one line with a band


def _short(curve: dict) -> str:
    label = curve["label"]
    if curve["objective"] in ("mean", "wco"):
        return label.upper() if curve["objective"] == "wco" else label
    if curve["objective"] == "uwo" and curve.get("lambda") is not None:
        return f"UWO (λ={curve['lambda']:g})"
    return label


def takeaway(curves: list[dict], lead: str = "") -> str:
    """A chart title that states what its curves show, from their numbers: how much of the gold
    each one gained by its peak it loses again by its last point (backend.summary's
    overoptimization, as a percentage). Single members shown one by one count as their
    average. `lead` ("UWO at λ = 1: ") starts the title. Curve names are escaped for plotly;
    the one line break is plotly's <br>."""
    head, parts = takeaway_parts(curves, lead)
    return f"{head}<br>" + " · ".join(text for _, text in parts) if parts else ""


def takeaway_parts(curves: list[dict], lead: str = "") -> tuple[str, list[tuple[str, str]]]:
    """takeaway() in pieces: (its first line, [(objective, its words), ...]), so that a chart
    whose objectives pill hides curves in the browser (app/plot.py) states only the shown ones."""
    from app.escape import plotly as escaped
    from backend.summary import average_points, curve_stats

    shown = [c for c in curves if c["points"]]
    if not shown:
        return "", []
    singles = [c for c in shown if c["objective"] == "single" and "group_size" not in c]
    rest = [c for c in shown if c not in singles]
    named = [("single", "single members", average_points(singles))] if len(singles) > 1 else []
    named += [("single", _short(c), c["points"]) for c in singles if len(singles) == 1]
    named += [
        (c["objective"], "single members" if "group_size" in c else _short(c), c["points"])
        for c in rest
    ]
    x = "step" if "step" in shown[0]["points"][0] else "n"
    last = max(c["points"][-1][x] for c in shown)
    parts = []
    for objective, name, pts in named:
        s = curve_stats(pts, x)
        if s["gold_peak"] - s["gold_start"] <= 0:
            parts.append((objective, f"{escaped(name)} never rises"))
        else:
            parts.append((objective, f"{escaped(name)} {100 * s['overoptimization']:.0f}%"))
    head = f"share of the gain up to the peak (★) lost by {x} = {last:,}:"
    head = f"{escaped(lead)}{head}" if lead else head[0].upper() + head[1:]
    return head, parts


def gold_units(result: dict) -> str:
    """What an answer's gold number means, from the result's normalization (backend/experiment:
    one mean and std over all P*N answers of the initial policy, every prompt together)."""
    norm = (result.get("normalization") or {}).get("gold") or {}
    if "mean" not in norm or "std" not in norm:
        return "Gold is standardized over the initial policy's answers."
    return (
        f"Gold is standardized globally, not per prompt: one mean ({norm['mean']:.2f} points) "
        f"and one population std ({norm['std']:.2f} points) over all answers of the initial "
        "policy to every prompt, so 0 is its average answer and +1 is one std "
        f"({norm['std']:.2f} points of the world's gold reward) better; an answer's gold in "
        "points = gold × std + mean."
    )
