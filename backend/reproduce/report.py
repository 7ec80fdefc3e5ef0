"""report.md: the claims table, the criteria, the setup and a link to every run."""

from __future__ import annotations

from backend.reproduce.claims import THRESHOLDS
from backend.reproduce.plan import SIZES


def run_link(app_url: str, eid: str) -> str:
    return f"{app_url.rstrip('/')}/?run={eid}"


def setup_text(analysis: dict) -> str:
    """How to read the numbers (report.md, report.html and the app say the same)."""
    E, K = analysis["ensemble"], len(analysis["sizes"]["k"])
    return (
        "Numbers are means ± sample standard deviation over seeds; gold is in units of the "
        "initial policy's gold std (initial policy = 0); a curve's overoptimization is the "
        "share of its peak gain it loses by its last point, (peak − final) / (peak − start). "
        f"Best-of-n objectives use members 0-{E - 1} of an ensemble of {K} (single RM: those "
        f"members' curves averaged; ensemble sizes and UWO λ use the same score matrix, "
        f"UWO λ = {analysis['uwo_lambda_bon']:g} elsewhere); PPO's single RM: "
        f"{analysis.get('ppo_single', 'member 0')}. "
        "A member's error on an answer is its standardized score minus the standardized gold; "
        "the shared share is the fraction of the members' squared error at the answer "
        "best-of-n keeps that is common to all of them, which no objective of their scores can "
        "see (Eisenstein et al. 2024). "
        + (
            "DPO (claims 7a-7c) trains no reward model: it learns from the same noisy pairs, "
            "KL is measured on its own samples as for PPO, and gold is standardized on the same "
            "held-out prompts. "
            if analysis.get("dpo")
            else ""
        )
        + "Verdicts come from the criteria below, computed from these numbers."
    )


def report_markdown(
    meta: dict, claims: list[dict], analysis: dict, runs: dict[str, str], app_url: str
) -> str:
    """report.md: the claims table, the criteria, the setup and a link to every run."""
    seeds = meta["seeds"]
    lines = [
        "# Goodhart Lab: reproduction report",
        "",
        f"Made {meta['created_at']} · size **{meta['size']}** ({SIZES[meta['size']].doc}) · "
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}).",
        "",
        setup_text(analysis),
        "",
        "| # | claim | paper | measured | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        cells = [c["id"], c["claim"], c["paper"], c["measured"], f"**{c['verdict']}**"]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    lines += ["", "## Criteria", ""]
    lines += [f"- **{c['id']}** {c['claim']}: {c['criterion']}." for c in claims]
    lines += ["", "Thresholds (backend/reproduce/claims.py):", ""]
    lines += [f"- `{k}` = {v:g}: {doc}" for k, (v, doc) in THRESHOLDS.items()]
    lines += ["", "## Runs", ""]
    lines += [f"- {key}: [{eid}]({run_link(app_url, eid)})" for key, eid in runs.items()]
    lines += ["", "Figures: report.html (standalone) or the app's Reproduction page.", ""]
    return "\n".join(lines)
