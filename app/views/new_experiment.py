"""New experiment: the same config objects as the CLI, checked as you type, put on the queue."""

import streamlit as st

from app import access, form, store
from app.describe import config_summary
from app.escape import md
from app.nav import PAGES
from backend import estimate
from backend.config import HF_WORLD, ConfigError, ExperimentConfig
from backend.presets import PRESETS, get_preset
from backend.worlds.registry import world_names

SUBMIT_ERROR = "new_submit_error"  # (the form's values, the ConfigError Submit raised for them)
fields = form.config_fields()
if "load_preset" in st.session_state:  # "Adjust" on the Learn page
    form.load_config(get_preset(st.session_state.pop("load_preset")))
defaults = {f.key: f.default for f in fields} | {form.SEEDS_KEY: str(ExperimentConfig().seed)}
defaults |= {form.SWEEP_OBJECTIVES_KEY: False, form.SWEEP_BETAS_KEY: ""}
for key, value in defaults.items():  # first visit, or widgets Streamlit dropped while hidden
    st.session_state.setdefault(key, value)

st.title("New experiment")
st.caption(
    "Every option of `python -m backend run`, with the same names and limits. The run goes on the "
    "queue; a worker (`python -m backend worker`) picks it up and its page updates as it goes."
)
with st.container(horizontal=True):
    st.markdown("**Presets:**")
    for name, (description, cfg) in PRESETS.items():
        st.button(
            name, key=f"preset_{name}", help=description, on_click=form.load_config, args=(cfg,)
        )

# Check the values the widgets hold now, so each message can be drawn under its field. The range
# checks run on every change; the world's checks (model files, the hub, the prompt file) run when
# Submit is pressed, and their message stays under its field until a value changes.
values = {f.dotted: st.session_state[f.key] for f in fields}
sweep = (st.session_state[form.SWEEP_OBJECTIVES_KEY], st.session_state[form.SWEEP_BETAS_KEY])
snapshot = repr(sorted(values.items())) + st.session_state[form.SEEDS_KEY] + repr(sweep)
error, configs = None, []
try:
    configs = form.build(values, st.session_state[form.SEEDS_KEY], *sweep)
except ConfigError as e:
    error = e
failed = st.session_state.get(SUBMIT_ERROR)
if error is None and failed is not None and failed[0] == snapshot:
    error = failed[1]
method = st.session_state["f_method"]
shown: set[str] = set()
by_name = {f.dotted: f for f in fields}


def cost_estimate(configs: list) -> None:
    """What the runs reuse from the cache, what they must compute, and about how long that
    takes (backend/estimate.py: fixed rates, so a rough figure)."""
    try:
        plans = [store.estimate(cfg) for cfg in configs]
    except Exception as e:  # a world that cannot be read yet: Submit's checks will say why
        st.caption(md(f"No estimate: {access.error_text(e)}"))
        return
    total = sum(sum(c.seconds for c in plan) for plan in plans)
    first = plans[0]
    reused = [c.what.removesuffix(": reused") for c in first if c.reused]
    todo = [f"{c.what} ({estimate.duration_text(c.seconds) or '?'})" for c in first if not c.reused]
    each = " for the first seed" if len(plans) > 1 else ""
    when = estimate.duration_text(total) or "not known (a stage is not estimated)"
    st.markdown(
        f"**Estimated time: about {when}**"
        + (f" for {len(plans)} runs" if len(plans) > 1 else "")
        + f"  \nReused from the cache{each}: "
        + (", ".join(reused) or "nothing")
        + f"  \nTo compute{each}: "
        + "; ".join(todo)
    )
    factor = store.machine_pace()
    pace = (
        f"at this machine's pace over its recent runs ({factor:.2g}x the rates)"
        if factor is not None
        else "no finished run here yet to measure this machine's pace"
    )
    st.caption(
        "A rough estimate from fixed rates per unit of work measured on an idle 2-core CPU (toy "
        f"world; a Hugging Face world's models take far longer), {pace}; for one worker, and "
        "other runs in the queue come first."
    )


def draw(f: form.Field, choices: tuple | None = None) -> None:
    form.widget(f, choices)
    form.show_error(error, {f.error_name})
    shown.add(f.error_name)


c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
c1.text_input("Name (optional)", key="f_name", max_chars=200, placeholder="e.g. noise 0 vs 0.25")
with c2:
    draw(by_name["method"])
with c3:
    draw(by_name["world"], tuple(world_names()))
with c4:
    st.text_input(
        "Seeds", key=form.SEEDS_KEY, help="One experiment per seed: 0, or 0, 1, 2, or 0-4."
    )
    form.show_error(error, {"--seed"})
    shown.add("--seed")

hf_world = st.session_state["f_world"] == HF_WORLD
NO_HF = {"reward_models.layers"}  # proxy capacity in SFT blocks: the hf world's is the proxy base
if hf_world:  # the same fields as `--world hf --policy P --gold G --proxy-base B --prompt-file F`
    st.subheader(form.SECTIONS["hf"])
    st.caption(
        "Model ids (from the local Hugging Face cache when offline) or folders on the worker's "
        "machine; prompts from a .jsonl or .csv file there. See docs/hf_world.md."
    )
    hf_fields = [f for f in fields if f.stage == "hf" and f.option]
    for i, col in enumerate(st.columns(3)):
        with col:
            for f in hf_fields[i::3]:
                draw(f)

stages = ["preferences", "reward_models", form.METHOD_STAGES.get(method, "bon")]
for col, stage in zip(st.columns(len(stages)), stages, strict=True):
    with col:
        st.subheader(form.SECTIONS[stage])
        if stage == "reward_models" and method == "dpo":
            st.caption(
                "Direct alignment trains no reward model: these proxies are trained only when "
                "'proxies score the samples' is ticked, to show what they would have said."
            )
        for f in fields:
            if f.stage == stage and f.option and not (hf_world and f.dotted in NO_HF):
                draw(f)
        if stage == "ppo":  # a sweep from one form, opened as one comparison
            st.checkbox(
                "Sweep: one run per objective (single, mean, WCO, UWO)",
                key=form.SWEEP_OBJECTIVES_KEY,
                help="Replaces the objective above; opened together on Compare.",
            )
        elif stage == "dpo":
            st.text_input(
                "Sweep beta (optional): one run per value",
                key=form.SWEEP_BETAS_KEY,
                placeholder="e.g. 0.03, 0.1, 0.3, 1",
                help="Replaces beta above; the runs open together on Compare.",
            )
            form.show_error(error, {form.BETAS_OPTION})
            shown.add(form.BETAS_OPTION)

with st.expander("Advanced: every other option"):
    last = "hf" if hf_world else "sft"  # the hf world has no SFT stage
    for stage in ["", "preferences", "reward_models", form.METHOD_STAGES.get(method), last]:
        extra = [f for f in fields if f.stage == stage and (not f.option or f.dotted == "device")]
        if not extra:
            continue
        st.markdown(f"**{form.SECTIONS[stage]}**")
        cols = st.columns(3)
        for i, f in enumerate(extra):
            with cols[i % 3]:
                draw(f)

if error is not None and error.option not in shown:
    st.error(md(f"{error.option}: {access.error_text(error)}"))
if configs:
    n = len(configs)
    seeds = len({c.seed for c in configs})
    swept = n // seeds
    what = f" · {seeds} seeds" if seeds > 1 else ""
    what += f" · {swept} {'objectives' if method == 'ppo' else 'betas'}" if swept > 1 else ""
    st.info(md(config_summary(configs[0].to_dict())) + what)
    cost_estimate(configs)
label = "Submit" if len(configs) <= 1 else f"Submit {len(configs)} experiments"
if not access.can_change():
    access.read_only_note("Submitting")
elif st.button(label, type="primary", disabled=error is not None, key="submit"):
    name = st.session_state["f_name"].strip() or None
    try:
        ids = [store.submit(cfg, name=name) for cfg in configs]
    except ConfigError as e:
        st.session_state[SUBMIT_ERROR] = (snapshot, e)
        st.rerun()
    except ValueError as e:
        st.error(md(e))
    else:
        if len(ids) == 1:
            st.switch_page(PAGES["result"].file, query_params={"run": ids[0]})
        st.switch_page(PAGES["compare"].file, query_params={"compare": ",".join(ids)})
