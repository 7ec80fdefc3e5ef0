"""Tables of a stored result for display: headline numbers, fits, members, PPO's samples.

No Streamlit here (so it is tested directly) and no new math: the numbers come from the result
(backend/summary.py, backend/fits.py) as stored.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd

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
    bad = next((k for k, v in summary.items() if not isinstance(v, dict)), None)
    if bad is not None:  # a malformed stored result: say so rather than draw a row of blanks
        raise ValueError(f"malformed summary: curve {bad!r} holds {summary[bad]!r}, not numbers")
    df = pd.DataFrame.from_dict(summary, orient="index")
    df.index.name = "curve"
    keep = [
        c
        for c in (
            "gold_start",
            "gold_peak",
            "n_at_peak",
            "step_at_peak",
            "epoch_at_peak",
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
    """Per member: held-out accuracy against clean gold labels, the last epoch's training and
    held-out loss, whether it is near chance, and its standardization."""

    def last(values):
        return values[-1] if isinstance(values, list) and values else values

    rows = []
    for m in result.get("reward_models") or []:
        std = m.get("standardization") or {}
        row = {
            "member": m.get("member"),
            "heldout_acc_gold": m.get("heldout_acc_gold"),
            "final_train_loss": last(m.get("train_loss")),
        }
        if m.get("heldout_loss"):
            row["final_heldout_loss"] = last(m["heldout_loss"])
        if "near_chance" in m:
            row["near_chance"] = bool(m["near_chance"])
        row.update(raw_mean=std.get("mean"), raw_std=std.get("std"))
        rows.append(row)
    return pd.DataFrame(rows)


# ---- arrays ---------------------------------------------------------------------------------


def as_float(arrays: dict) -> dict:
    """Score arrays as float64 (shipped examples store float16 to stay small)."""
    out = dict(arrays)
    for k in ("gold", "proxy"):
        if k in out and out[k].dtype != np.float64:
            out[k] = out[k].astype(np.float64)
    return out


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


# ---- the same tables in words, for the pages ---------------------------------------------------

SUMMARY_WORDS = {
    "gold_start": "gold at the start",
    "gold_peak": "peak gold",
    "n_at_peak": "n at the peak",
    "step_at_peak": "step at the peak",
    "epoch_at_peak": "epoch at the peak",
    "kl_at_peak": "KL at the peak (nats)",
    "gold_final": "gold at the end",
    "proxy_final": "proxy at the end",
    "overoptimization": "peak gain lost by the end (%)",
}
FIT_WORDS = {
    "form": "form",
    "alpha": "α",
    "alpha_se": "α std error",
    "beta": "β",
    "beta_se": "β std error",
    "r2": "R²",
    "n_points": "points",
    "reason": "why no fit",
}
MEMBER_WORDS = {
    "member": "member",
    "heldout_acc_gold": "held-out accuracy (clean labels)",
    "final_train_loss": "training loss (last epoch)",
    "final_heldout_loss": "held-out loss (last epoch)",
    "near_chance": "near chance",
    "raw_mean": "raw score mean",
    "raw_std": "raw score std",
}


def summary_words(summary: dict | None, single_label: str) -> pd.DataFrame:
    """summary_frame in words: plain column names, the share of the peak gain lost as a
    percentage, and the single members' average under `single_label`."""
    df = summary_frame(summary)
    if df.empty:
        return df
    if "overoptimization" in df.columns:
        df["overoptimization"] = 100.0 * df["overoptimization"].astype(float)
    df = df.rename(index={"single_avg": single_label}, columns=SUMMARY_WORDS)
    df.index.name = "curve"
    return df


def fits_words(curves: list[dict]) -> pd.DataFrame:
    return fits_frame(curves).rename(columns=FIT_WORDS)


def members_words(result: dict) -> pd.DataFrame:
    return members_frame(result).rename(columns=MEMBER_WORDS)


# ---- small tables as HTML ----------------------------------------------------------------------

# A page's few-row tables (the Result page's headline numbers and fits) are drawn as HTML:
# st.dataframe's grid (a canvas and its JavaScript chunk) kept that page about 0.5 s longer in
# the browser on this machine (docs/benchmarks.md), for tables of ten rows that need no scrolling.
TABLE_CSS = (
    "<style>.gl-table{border-collapse:collapse;font-size:0.875rem;margin:0.25rem 0 1rem 0}"
    ".gl-table th,.gl-table td{border-bottom:1px solid rgba(49,51,63,0.1);padding:0.3rem 0.6rem}"
    ".gl-table thead th{color:rgba(49,51,63,0.6);font-weight:600;vertical-align:bottom}"
    ".gl-table td,.gl-table thead th{text-align:right;font-variant-numeric:tabular-nums}"
    ".gl-table tbody th,.gl-table .text{text-align:left}"
    ".gl-wide{overflow-x:auto}.gl-wide .gl-table{white-space:nowrap}</style>"
)


def _cell(value, decimals: int, percent: bool) -> tuple[str, bool]:
    """(the cell's text, whether it is a number): floats to `decimals` places (or as a whole
    percentage), -0.000 shown as 0.000, missing values as an en dash."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–", True
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return html.escape(str(value)), False
    if percent:
        return f"{float(value):.0f}%".replace("-0%", "0%"), True
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", True
    text = f"{float(value):.{decimals}f}"
    return (text[1:] if float(text) == 0 and text.startswith("-") else text), True


def html_block(
    df: pd.DataFrame, decimals: int = 3, percent: tuple[str, ...] = (), wide: bool = False
) -> str:
    """html_table with its style, for st.html; `wide` (one column per run, say) scrolls
    sideways inside the page instead of squeezing its cells."""
    table = html_table(df, decimals, percent)
    return TABLE_CSS + (f'<div class="gl-wide">{table}</div>' if wide else table)


def html_table(df: pd.DataFrame, decimals: int = 3, percent: tuple[str, ...] = ()) -> str:
    """A small DataFrame as an HTML table (escaped; TABLE_CSS styles it): a named index becomes
    the first column, numbers right-aligned, the columns in `percent` as whole percentages."""
    if df.index.name is not None:
        df = df.reset_index()
    rows, numeric = [], [True] * len(df.columns)
    for row in df.itertuples(index=False):
        cells = []
        for j, (col, v) in enumerate(zip(df.columns, row, strict=True)):
            text, number = _cell(v, decimals, col in percent)
            numeric[j] &= number
            if j == 0 and not number:
                cells.append(f"<th>{text}</th>")
            else:
                cells.append(f"<td>{text}</td>" if number else f'<td class="text">{text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    side = {True: "<th>", False: '<th class="text">'}  # a column's name on its values' side
    head = "".join(
        f"{side[number]}{html.escape(str(c))}</th>"
        for c, number in zip(df.columns, numeric, strict=True)
    )
    return (
        f'<table class="gl-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
