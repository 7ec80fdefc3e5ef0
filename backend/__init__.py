__version__ = "0.1.0"

# The arithmetic a result's numbers come from: bump a part's number when the same config starts
# to give other numbers (a result stores them in versions["arithmetic"]; the reproduction suite
# reuses a finished run only if every part its numbers come from is today's; results from before
# a part was stored count as 1). A method's own stage, and "proxies" for the runs that train the
# ensemble (best-of-n, PPO, DPO when its proxies score the samples).
# ppo 2: its forward passes stop at the longest answer (2026-12-06).
# proxies 2: one-block toy proxies train by backend/proxy_step.py's written-out backward, other
# summation orders than autograd's (2026-12-06).
# proxies 3: each minibatch's table holds its own rows only, and a pair's two sequences sit side
# by side: other summation orders again (2026-12-06, evening).
ARITHMETIC = {"bon": 1, "ppo": 2, "dpo": 1, "proxies": 3}


def arithmetic_parts(config: dict) -> tuple[str, ...]:
    """The parts of ARITHMETIC the numbers of a run with this config (ExperimentConfig.to_dict)
    come from."""
    method = config.get("method", "bon")
    trains_proxies = method != "dpo" or (config.get("dpo") or {}).get("score_proxies", False)
    return (method, "proxies") if trains_proxies else (method,)


def same_arithmetic(versions: dict | None, config: dict) -> bool:
    """Whether a result with these `versions` and `config` has the numbers today's code gives."""
    stored = (versions or {}).get("arithmetic") or {}
    return all(stored.get(part, 1) == ARITHMETIC[part] for part in arithmetic_parts(config))
