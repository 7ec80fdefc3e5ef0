__version__ = "0.1.0"

# The arithmetic each method's numbers come from: bump a method's number when the same config
# starts to give other numbers (a result stores them in versions["arithmetic"]; the reproduction
# suite reuses a finished run only if its method's number is today's; results from before this
# was stored count as 1). 2 for PPO: its forward passes stop at the longest answer (2026-12-06).
ARITHMETIC = {"bon": 1, "ppo": 2, "dpo": 1}


def same_arithmetic(versions: dict | None, method: str) -> bool:
    """Whether a result with these `versions` has the numbers today's code gives its method."""
    stored = ((versions or {}).get("arithmetic") or {}).get(method, 1)
    return stored == ARITHMETIC.get(method, 1)
