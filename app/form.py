"""The experiment form, generated from the config dataclasses' field metadata (doc, CLI option,
range), so it shows every option the CLI has and checks them with the same backend.config.validate.

Widget keys are "f_<dotted field>", e.g. "f_preferences.label_noise"; several seeds are one text
field ("f_seeds") that gives one experiment per seed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app import access
from app.escape import md
from backend.admission import check_admission
from backend.config import OBJECTIVES, ConfigError, ExperimentConfig, validate

SECTIONS = {  # stage -> title; top-level fields are "Experiment"
    "": "Experiment",
    "preferences": "Preference data",
    "reward_models": "Proxy reward models",
    "bon": "Best-of-n",
    "ppo": "PPO",
    "dpo": "Direct alignment (DPO, IPO, SLiC)",
    "sft": "Initial policy (SFT, part of the world)",
    "hf": "Hugging Face world: models and prompts",
}
METHOD_STAGES = {"bon": "bon", "ppo": "ppo", "dpo": "dpo"}  # method -> the stage only it uses
METHOD_NAMES = {"bon": "best-of-n", "ppo": "PPO", "dpo": "DPO / IPO / SLiC"}
STEPS = {
    "preferences.label_noise": 0.05,
    "bon.uwo_lambda": 0.1,
    "ppo.uwo_lambda": 0.05,
    "ppo.kl_coef": 0.01,
    "ppo.kl_target": 1.0,
    "dpo.beta": 0.01,
}
SEEDS_KEY = "f_seeds"
MAX_SEEDS = 20
# Sweeps from one form, opened as one comparison: PPO against every objective, DPO over betas.
SWEEP_OBJECTIVES_KEY = "f_sweep_objectives"  # a checkbox
SWEEP_BETAS_KEY = "f_sweep_betas"  # "0.03, 0.1, 0.3, 1"; empty: the beta field's one value
BETAS_OPTION = "beta sweep"  # how a ConfigError names the betas field
MAX_RUNS = 40  # one submission's experiments (seeds x swept values)


@dataclass(frozen=True)
class Field:
    dotted: str  # "preferences.label_noise"
    stage: str  # "preferences" ("" for top-level fields)
    default: Any
    doc: str
    option: str | None  # CLI flag; None: an advanced field
    lo: Any
    hi: Any
    choices: tuple | None

    @property
    def key(self) -> str:
        return f"f_{self.dotted}"

    @property
    def error_name(self) -> str:
        """How validate() names this field in a ConfigError."""
        return self.option or self.dotted

    @property
    def label(self) -> str:
        return self.doc[0].upper() + self.doc[1:]

    @property
    def help(self) -> str:
        parts = [f"`{self.option}`" if self.option else f"`{self.dotted}`"]
        if self.choices:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        elif self.lo is not None and self.hi is not None:
            parts.append(f"from {self.lo} to {self.hi}")
        elif self.lo is not None:
            parts.append(f"at least {self.lo}")
        parts.append(f"default {self.default}")
        return "; ".join(parts)


def config_fields(cfg: ExperimentConfig | None = None) -> list[Field]:
    """Every field of ExperimentConfig (stages flattened), defaults taken from cfg."""
    cfg = cfg or ExperimentConfig()
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            items = [(f.name, sub, getattr(value, sub.name)) for sub in dataclasses.fields(value)]
        else:
            items = [("", f, value)]
        for stage, sub, default in items:
            m = sub.metadata
            out.append(
                Field(
                    dotted=f"{stage}.{sub.name}" if stage else sub.name,
                    stage=stage,
                    default=default,
                    doc=m.get("doc", sub.name),
                    option=m.get("option"),
                    lo=m.get("lo"),
                    hi=m.get("hi"),
                    choices=tuple(m["choices"]) if m.get("choices") else None,
                )
            )
    return out


def load_config(cfg: ExperimentConfig) -> None:
    """Put a config's values into the form's widgets (call before the widgets are drawn)."""
    for f in config_fields(cfg):
        st.session_state[f.key] = f.default
    st.session_state[SEEDS_KEY] = str(cfg.seed)


def parse_seeds(text: str) -> list[int]:
    """ "0" or "0, 1, 2" or "0-4" -> seeds; ConfigError("--seed", ...) when malformed."""
    seeds: list[int] = []
    try:
        for piece in text.replace(" ", "").split(","):
            if not piece:
                continue
            if "-" in piece[1:]:
                a, b = piece.split("-", 1)
                seeds.extend(range(int(a), int(b) + 1))
            else:
                seeds.append(int(piece))
    except ValueError:
        message = f"seeds are whole numbers like 0 or 0, 1, 2 or 0-4; got {text!r}"
        raise ConfigError("--seed", message) from None
    if not seeds:
        raise ConfigError("--seed", "give at least one seed, e.g. 0")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError("--seed", f"at most {MAX_SEEDS} seeds at once; got {len(seeds)}")
    return list(dict.fromkeys(seeds))


def parse_betas(text: str) -> list[float]:
    """ "0.03, 0.1, 0.3" -> betas (empty text: none); ConfigError(BETAS_OPTION, ...) when
    malformed. Ranges are validate()'s (it names --dpo-beta)."""
    try:
        betas = [float(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        message = f"betas are numbers separated by commas, like 0.03, 0.1, 0.3; got {text!r}"
        raise ConfigError(BETAS_OPTION, message) from None
    return list(dict.fromkeys(betas))


def sweep_values(values: dict[str, Any], every_objective: bool, betas_text: str) -> list[dict]:
    """The changes each run of a sweep makes: [{}] without one; PPO against every objective
    (single at the form's member, mean, WCO, UWO); DPO at each beta of the list."""
    method = values.get("method", "bon")
    if method == "ppo" and every_objective:
        return [{"ppo.objective": o} for o in OBJECTIVES]
    if method == "dpo" and betas_text.strip():
        return [{"dpo.beta": b} for b in parse_betas(betas_text)]
    return [{}]


def build(
    values: dict[str, Any],
    seeds_text: str,
    every_objective: bool = False,
    betas_text: str = "",
) -> list[ExperimentConfig]:
    """One validated config per seed (and swept value: sweep_values) from the form's values
    {dotted: value}. Raises ConfigError naming the option (as the CLI does)."""
    seeds = parse_seeds(seeds_text)
    sweep = sweep_values(values, every_objective, betas_text)
    if len(seeds) * len(sweep) > MAX_RUNS:
        message = f"at most {MAX_RUNS} experiments at once; {len(seeds)} seeds x {len(sweep)}"
        raise ConfigError("--seed", message)
    values = dict(values)
    # The CLI's --uwo-lambda sets UWO's lambda of both methods; a changed lambda does so here.
    method = values.get("method", "bon")
    other = {"bon": "ppo", "ppo": "bon"}.get(method)
    mine = f"{method}.uwo_lambda"
    default = getattr(getattr(ExperimentConfig(), method, None), "uwo_lambda", None)
    if other and mine in values and values[mine] != default:
        values[f"{other}.uwo_lambda"] = values[mine]
    try:
        base = ExperimentConfig().replace(**{k: v for k, v in values.items() if k != "seed"})
    except TypeError as e:
        raise ConfigError("config", str(e)) from None
    return [
        check_admission(validate(base.replace(seed=s, **change))) for change in sweep for s in seeds
    ]


def _step(f: Field) -> float:
    if f.dotted in STEPS:
        return STEPS[f.dotted]
    return 10.0 ** math.floor(math.log10(abs(f.default))) if f.default else 0.01


def widget(f: Field, choices: tuple | None = None) -> Any:
    """Draw the widget of one field; its value is also in st.session_state[f.key]."""
    choices = choices or f.choices
    if choices:
        fmt = METHOD_NAMES.get if f.dotted == "method" else str
        return st.selectbox(
            f.label, list(choices), key=f.key, help=f.help, format_func=lambda c: fmt(c) or c
        )
    if isinstance(f.default, bool):
        return st.checkbox(f.label, key=f.key, help=f.help)
    if isinstance(f.default, int):
        return st.number_input(f.label, step=1, key=f.key, help=f.help)
    if isinstance(f.default, float):
        return st.number_input(f.label, step=_step(f), format="%g", key=f.key, help=f.help)
    return st.text_input(f.label, key=f.key, help=f.help)


def show_error(error: ConfigError | None, names: set[str]) -> bool:
    """Show error under the widget just drawn when it names one of `names` (as plain text,
    without file contents on a shared server)."""
    if error is not None and error.option in names:
        st.error(md(access.error_text(error)), icon=":material/error:")
        return True
    return False
