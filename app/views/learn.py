"""Learn: a guided walk through overoptimization on real runs shipped with the app
(assets/examples/), one chart and one computed sentence per step, then free play. Each step is a
fragment: its knobs rerun that step only, from precomputed curves. The words and numbers come
from app/lessons.py. The address holds the open step (`step`), step 1's n (`n`) and the view of
step 3 or free play (lam, members, objectives, x, show), so a link opens what is on screen."""

import streamlit as st

from app import access, charts, lessons, plot, store
from app.describe import config_differences, gold_units, takeaway, takeaway_parts
from app.nav import PAGES
from app.result_panel import curve_pills, render_result, seed_widgets
from app.view_state import OBJECTIVES, View, merged_query, read_view

KEY = "learn"
CHART = {"displaylogo": False}
X_LABELS = {"KL": "kl", "√KL": "sqrt_kl", "n": "n"}
NOISY, CLEAN, SHARED = "toy-bon", "toy-bon-clean", "toy-bon-shared"
UNSHARED = ("toy-bon-pretrain", "toy-bon-clean")


def example(name: str):
    ex = store.shipped(name)
    if ex is None:
        st.warning(f"The shipped example {name} (assets/examples/) is missing.")
        st.stop()
    return ex


st.title("Goodhart Lab")
st.markdown(
    "**When a measure becomes a target, it ceases to be a good measure.** In RLHF a policy is "
    "optimized against a *proxy* reward model trained on human preferences. Push hard enough and "
    "the policy finds answers the proxy loves and people do not: the proxy reward keeps rising "
    "while the true (*gold*) reward peaks and falls. This is **reward-model overoptimization** "
    "(Gao, Schulman, Hilton 2023). Coste et al. (ICLR 2024) proposed **ensembles** of proxies "
    "with *conservative* objectives against it. The five steps (tabs) below show both on real runs "
    "shipped with the app (seed 0 of each preset); every number in their sentences is read from "
    "those runs."
)
noisy = example(NOISY)
K = noisy.arrays["proxy"].shape[-1]
link = read_view(st.query_params.to_dict(), members_total=K)
for problem in link.problems:
    st.caption(f"This link's view could not be read in full: {problem}; showing the default.")


# ---- 1. one proxy ------------------------------------------------------------------------------


def step_one() -> None:
    st.header("1 · One proxy: push harder, and gold falls")
    st.markdown(
        "Best-of-n draws n answers from the initial policy and keeps the one the proxy scores "
        "highest. Larger n is more optimization pressure. Slide n."
    )
    one_proxy()


ONE_PROXY_KNOB = "n (answers drawn per prompt)"


@st.cache_data(show_spinner=False, max_entries=4)
def one_proxy_frames(name: str) -> tuple[list[str], list[dict]]:
    """Step 1 at every n, computed once per server (about 0.1 s): the n marker, the sentences
    beside the chart and the picked answers under it. Returns (n as shown, frames)."""
    from backend.best_of_n import bon_ns

    ex = example(name)
    curve = ex.curve("single", member=0)
    base = lessons.picks(ex.arrays, ex.result, 0, 1)
    caption = gold_units(ex.result) + " " + ex.result["world"].get("gold_description", "")
    values, frames = [], []
    for n in bon_ns(ex.arrays["gold"].shape[1]):
        table = lessons.picks(ex.arrays, ex.result, 0, n)
        words = lessons.picks_sentence(
            lessons.describe_picks(table), lessons.describe_picks(base), n, curve["label"]
        )
        marker = charts.n_marker(go_figure(), n)
        side = plot.md(lessons.one_proxy_sentence(curve, n) + "\n\n" + words)
        below = plot.table(table, caption)
        values.append(f"{n:,}")
        frames.append(plot.frame(marker, layout=("shapes", "annotations"), side=side, below=below))
    return values, frames


def go_figure():
    import plotly.graph_objects as go

    return go.Figure()


@st.fragment
def one_proxy() -> None:
    from backend.best_of_n import bon_ns

    curve = noisy.curve("single", member=0)
    ns = bon_ns(noisy.arrays["gold"].shape[1])
    values, frames = one_proxy_frames(NOISY)
    at, _ = plot.state(f"{KEY}_n", len(ns))
    i = at if at is not None else link_n(ns)
    title = takeaway([curve], "One proxy (member #0): ")
    fig = charts.n_marker(charts.curves_figure([curve], "n", show_fits=False, title=title), ns[i])
    f = frames[i]
    plot.show(
        fig,
        key=f"{KEY}_n",
        knob=plot.Knob(ONE_PROXY_KNOB, values, i, frames),
        side=f["side"],
        below=f["below"],
    )
    query = {k: v for k, v in st.query_params.to_dict().items() if k != "n"}
    write_query(query if i == len(ns) - 1 else {**query, "n": str(ns[i])})


def link_n(ns: list[int]) -> int:
    """Step 1's n from the address (`n`: one of the n values, else the largest), as an index."""
    asked = st.query_params.get("n")
    if asked is None:
        return len(ns) - 1
    if asked.isdigit() and int(asked) in ns:
        return ns.index(int(asked))
    st.caption(f"This link's n={asked!r} is not one of {', '.join(map(str, ns))}; n = {ns[-1]:,}.")
    return len(ns) - 1


# ---- 2. why: shared errors ---------------------------------------------------------------------


def step_two() -> None:
    st.header("2 · Why: what the members get wrong together, no ensemble can see")
    st.markdown(
        "A member's error on an answer is its score minus gold (both standardized). Part of it "
        "all members share; the rest is each one's own. Mean, WCO and UWO only see where the "
        "members disagree (Eisenstein et al. 2024). Two worlds: in one the proxies are "
        "under-trained (8,000 pairs, 2 epochs: they all learn the same shallow rule); in the "
        "other they differ."
    )
    shared_errors()


WORLD_NAMES = {
    "toy-bon-pretrain": "toy-bon-pretrain (each member from its own SFT run)",
    "toy-bon-clean": "toy-bon-clean (clean labels, better trained)",
}


def errors_chart(name: str):
    """WCO's shared and own error in one world, titled with the share at the end; (figure,
    the world's facts)."""
    ex = example(name)
    f = lessons.errors_facts(ex)
    fig = charts.errors_figure([ex.curve("wco")], "kl")
    fig.update_layout(title={"text": f"{name}: {f['share']:.0%} of WCO's error shared at the end"})
    return fig, f


@st.cache_data(show_spinner=False, max_entries=2)
def world_frames() -> list[dict]:
    """Step 2's right-hand chart for each world whose members differ: its figure (every trace:
    the worlds' charts have as many), title and sentences."""
    _, shared = errors_chart(SHARED)
    frames = []
    for name in UNSHARED:
        fig, f = errors_chart(name)
        below = plot.md(lessons.errors_world_sentence(f) + "\n\n**"
                        + lessons.errors_compare_sentence(shared, f) + "**")  # fmt: skip
        frames.append(plot.frame(fig, layout=("title",), below=below))
    return frames


@st.fragment
def shared_errors() -> None:
    frames = world_frames()
    at, _ = plot.state(f"{KEY}_unshared", len(UNSHARED))
    i = at if at is not None else 0
    left, right = st.columns(2)
    with left:
        fig, f = errors_chart(SHARED)
        plot.show(fig, key=f"{KEY}_err_shared", below=plot.md(lessons.errors_world_sentence(f)))
    with right:
        fig, _ = errors_chart(UNSHARED[i])
        knob = plot.Knob("the world whose members differ", [WORLD_NAMES[n] for n in UNSHARED],
                         i, frames, kind="radio")  # fmt: skip
        plot.show(fig, key=f"{KEY}_unshared", knob=knob, below=frames[i]["below"])


# ---- 3. conservative objectives and lambda -----------------------------------------------------


def step_three() -> None:
    st.header("3 · Conservative objectives, and λ")
    st.markdown(
        "With K members' standardized scores r₁ … r_K, best-of-n can keep the answer with the "
        "highest **mean**, the highest **minimum** (WCO, worst-case optimization), or the "
        "highest **mean − λ·variance** (UWO, uncertainty-weighted; population variance). Move "
        "λ: UWO's curve is read from a grid computed when the example was built "
        f"({NOISY}, 25% label noise)."
    )
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.latex(r"R_{\text{mean}} = \frac{1}{K}\sum_k r_k")
    c2.latex(r"R_{\text{WCO}} = \min_k r_k")
    c3.latex(
        r"R_{\text{UWO}} = \frac{1}{K}\sum_k r_k - \lambda\,\frac{1}{K}\sum_k (r_k - \bar r)^2"
    )
    conservative()


STORED_LAM = float(noisy.result["config"]["bon"]["uwo_lambda"])
DEFAULT_OBJECTIVES = OBJECTIVES  # single, mean, wco, uwo
DEFAULT_SHOW = frozenset({"proxy", "band"})
show = link.show if link.show is not None else DEFAULT_SHOW
START_LAM = float(min(link.lam if link.lam is not None else STORED_LAM, 5.0))
seed_widgets(
    {
        f"{KEY}_x": next((k for k, v in X_LABELS.items() if v == link.x), "KL"),
        f"{KEY}_proxy": "proxy" in show,
        f"{KEY}_band": "band" in show,
    }
)


LAM_GRID = [round(0.05 * i, 9) for i in range(101)]  # the shipped grid (app/make_example.py)
LAM_KNOB = "UWO λ"


def lam_index(lam: float) -> int:
    return min(range(len(LAM_GRID)), key=lambda i: abs(LAM_GRID[i] - lam))


def lead(lam: float) -> str:
    return f"UWO at λ = {lam:g}: "


def step_curves(members: tuple, lam: float) -> dict:
    """Step 3's curves over these members at λ: {"single" (their group), "mean", "wco", "uwo"};
    the shipped ones for all members, else recomputed from the shipped matrix (cached for every
    later visitor)."""
    if len(members) == K and all(noisy.uwo_at(a) is not None for a in (lam, 0.0, 5.0)):
        mean, wco, uwo = noisy.curve("mean"), noisy.curve("wco"), noisy.uwo_at(lam)
    else:
        got = store.bon_curves_for(
            store.example_key(NOISY), float(lam), members, noisy.result["curves"], noisy.arrays
        )
        by_objective = {c["objective"]: c for c in got if c["objective"] != "single"}
        mean, wco, uwo = by_objective["mean"], by_objective["wco"], by_objective["uwo"]
    return {"single": lessons.singles_group(noisy, list(members)), "mean": mean, "wco": wco,
            "uwo": uwo}  # fmt: skip


def sentence(curves: dict, lam: float) -> str:
    c = curves
    return plot.md("**" + lessons.objective_sentence(c["single"], c["mean"], c["wco"], c["uwo"],
                                                     lam) + "**")  # fmt: skip


def objectives_figure(curves: dict, x: str, proxy: bool, band: bool):
    """Every objective's curve (the objectives pill shows or hides them in the browser)."""
    drawn = [curves[o] for o in OBJECTIVES]
    return charts.curves_figure(drawn, x, show_proxy=proxy, show_band=band)


def title_of(curves: dict, lam: float) -> dict:
    return plot.title_arg(*takeaway_parts([curves[o] for o in OBJECTIVES], lead(lam)))


def uwo_frames(curves: dict, uwo_at, x: str, proxy: bool, band: bool) -> list:
    """Step 3 at every λ of the grid whose UWO curve `uwo_at(λ)` has (None: the server computes
    it when the knob gets there): UWO's traces (the figure's last), the title and the sentence
    under the chart. `curves`: the single members' group, mean and WCO of these members."""
    others = [curves[o] for o in OBJECTIVES if o != "uwo"]
    full = len(charts.curves_figure(others, x, show_proxy=proxy, show_band=band).data)
    frames: list[dict | None] = []
    for lam in LAM_GRID:
        uwo = uwo_at(lam)
        if uwo is None:
            frames.append(None)
            continue
        at_lam = {**curves, "uwo": uwo}
        tail = charts.curves_figure([uwo], x, show_proxy=proxy, show_band=band)
        below = sentence(at_lam, lam)
        frames.append(plot.frame(tail, at=full, title=title_of(at_lam, lam), below=below))
    return frames


@st.cache_data(show_spinner=False, max_entries=64)
def lam_frames(x: str, proxy: bool, band: bool) -> list[dict]:
    """uwo_frames of all members from the shipped grid (about 0.5 s, once per view)."""
    curves = {"single": lessons.singles_group(noisy, list(range(K))),
              "mean": noisy.curve("mean"), "wco": noisy.curve("wco")}  # fmt: skip
    return uwo_frames(curves, noisy.uwo_at, x, proxy, band)


def subset_frames(members: tuple, lam: float, moved: bool, curves: dict, *view) -> list:
    """uwo_frames of a member subset: the λ values the server has computed (the next step now
    when the knob has moved, two more each way in the background)."""
    key = store.example_key(NOISY)
    store.curves_around(key, LAM_GRID, lam, members, noisy.arrays, moved)
    return uwo_frames(curves, lambda a: store.cached_curve(key, "uwo", a, members), *view)


def member_frames(members: tuple, lam: float, *view) -> dict:
    """The members pill's frames: each choice one click away (a member left out or added back)
    at this λ, the whole figure with its title and sentence (recomputed ones: about 35 ms of one
    core each, once per server)."""
    frames = {}
    for subset in plot.one_click(list(range(K)), members):
        curves = step_curves(subset, lam)
        frames[plot.subset_key(subset)] = plot.frame(
            objectives_figure(curves, *view), whole=True, title=title_of(curves, lam),
            below=sentence(curves, lam),
        )  # fmt: skip
    return frames


@st.fragment
def conservative() -> None:
    chart, controls = st.columns([3, 1])
    with controls:
        x = st.radio("x axis", list(X_LABELS), horizontal=True, key=f"{KEY}_x")
        proxy = st.checkbox("proxy (dashed)", key=f"{KEY}_proxy")
        band = st.checkbox("band of the single members", key=f"{KEY}_band")
    at, on = plot.state(f"{KEY}_lam", len(LAM_GRID))
    i = at if at is not None else lam_index(START_LAM)
    lam = LAM_GRID[i]
    picked = on.get("objectives", link.objectives or DEFAULT_OBJECTIVES)
    picked = tuple(o for o in OBJECTIVES if o in picked)
    members = tuple(sorted(m for m in on.get("members") or link.members or range(K) if 0 <= m < K))
    members = members or tuple(range(K))
    curves = step_curves(members, lam)
    view = (X_LABELS[x], proxy, band)
    if len(members) == K:
        frames = lam_frames(*view)
    else:
        others = {o: curves[o] for o in ("single", "mean", "wco")}
        frames = subset_frames(members, lam, at is not None, others, *view)
    title = title_of(curves, lam)
    fig = objectives_figure(curves, *view)
    fig.update_layout(title=plot.title_text(title, set(picked)))
    help_ = ("All members: every λ read from the shipped grid, redrawn in the browser. A "
             "subset: each λ computed here (the next ones ahead, as you move λ).")  # fmt: skip
    pills = curve_pills(picked, K, members, member_frames(members, lam, *view), help_)
    with chart:
        plot.show(
            fig,
            key=f"{KEY}_lam",
            knob=plot.Knob(LAM_KNOB, [f"{a:g}" for a in LAM_GRID], i, frames),
            pills=pills,
            title=title,
            below=sentence(curves, lam),
        )
    toggles = frozenset(t for t, flag in (("proxy", proxy), ("band", band)) if flag)
    view = View(
        lam=None if abs(lam - STORED_LAM) < 1e-9 else float(lam),
        members=None if len(members) == K else members,
        objectives=None if picked == DEFAULT_OBJECTIVES else picked,
        x=None if X_LABELS[x] == "kl" else X_LABELS[x],
        show=None if toggles == DEFAULT_SHOW else toggles,
    )
    write_query(merged_query(st.query_params.to_dict(), view))


# ---- 4. label noise ----------------------------------------------------------------------------


def step_four() -> None:
    st.header("4 · Label noise")
    clean = example(CLEAN)
    diff = config_differences([noisy.result["config"], clean.result["config"]])
    st.markdown(
        f"The same world with {noisy.result['config']['preferences']['label_noise']:.0%} of the "
        f"preference labels flipped ({NOISY}) and with none ({CLEAN}). The two presets also "
        "differ in "
        + ", ".join(f"`{k}`" for k in diff if k != "preferences.label_noise")
        + " (each preset's recipe was chosen by measurement; backend/presets.py)."
    )
    label_noise()


@st.fragment
def label_noise() -> None:
    clean = example(CLEAN)
    for col, ex in zip(st.columns(2), (noisy, clean), strict=True):
        curves = [lessons.singles_group(ex), ex.curve("wco"), ex.curve("uwo")]
        noise = ex.result["config"]["preferences"]["label_noise"]
        title = takeaway(curves, f"{noise:.0%} noise: ")
        fig = charts.curves_figure(curves, "kl", show_proxy=False, title=title)
        with col:
            plot.show(fig, key=f"{KEY}_noise_{ex.name}")
    st.markdown("**" + lessons.noise_sentence(noisy, clean) + "**")


# ---- 5. PPO and direct alignment ---------------------------------------------------------------


def step_five() -> None:
    st.header("5 · Not only best-of-n: PPO, and direct alignment without a reward model")
    st.markdown(
        "PPO trains the policy against proxy #0 (no KL penalty); DPO trains it on the very "
        "preference pairs the proxies learned from, with no reward model at all (Rafailov et al. "
        "2024). KL is measured on each policy's own samples; best-of-n's is the bound."
    )
    methods()


@st.fragment
def methods() -> None:
    ppo, dpo = example("toy-ppo"), example("toy-dpo")
    named = [
        ("best-of-n on proxy #0", noisy.curve("single", member=0)),
        ("PPO on proxy #0", ppo.result["curves"][0]),
        (f"DPO (β={dpo.result['config']['dpo']['beta']:g})", dpo.result["curves"][0]),
    ]
    curves = [{**c, "label": name, "objective": "method"} for name, c in named]
    x = st.radio("x axis", ["√KL", "KL"], horizontal=True, key=f"{KEY}_methods_x")
    fig = charts.curves_figure(
        curves,
        X_LABELS[x],
        show_proxy=False,
        colours=["#555555", "#d62728", "#ff7f0e"],
        title=lessons.methods_title(named),
    )
    plot.show(fig, key=f"{KEY}_methods_chart")
    st.markdown("**" + lessons.methods_sentence(named) + "**")


# ---- free play --------------------------------------------------------------------------------


def free_play() -> None:
    st.header("Free play")
    st.markdown(
        f"The full result panel of {NOISY}: every knob, the answer explorer, the numbers, "
        "downloads; the chart's view is written into the address, as on a Result page."
    )
    view = render_result(
        noisy.result,
        noisy.arrays,
        key=store.example_key(NOISY),
        title="Goodhart Lab example",
        first_tab="Answers",
        link=link,
    )
    write_query(merged_query(st.query_params.to_dict(), view))


def write_query(query: dict) -> None:
    if query != st.query_params.to_dict():
        st.query_params.from_dict(query)


STEPS = {
    "1 · One proxy": step_one,
    "2 · Shared errors": step_two,
    "3 · Objectives and λ": step_three,
    "4 · Label noise": step_four,
    "5 · PPO and DPO": step_five,
    "Free play": free_play,
}
NAMES = list(STEPS)


def next_step(name: str) -> None:
    st.session_state[f"{KEY}_step"] = NAMES[NAMES.index(name) + 1]


# The open step is in the address (`step`: 1-5 or free); a link with a view but no step (older
# links) opens step 3. Only the open step is computed and drawn.
STEP_IDS = dict(zip(["1", "2", "3", "4", "5", "free"], NAMES, strict=True))
asked = st.query_params.get("step")
if asked is not None and asked not in STEP_IDS:
    st.caption(f"This link's step={asked!r} is not one of {', '.join(STEP_IDS)}; step 1 opens.")
has_view = any(getattr(link, k) is not None for k in ("lam", "members", "objectives", "x", "show"))
# The step the session opened on: a default that changed would make the tabs a new widget.
opens = st.session_state.setdefault(
    f"{KEY}_opens", STEP_IDS.get(asked or "", NAMES[2] if has_view else NAMES[0])
)
tabs = st.tabs(NAMES, key=f"{KEY}_step", on_change="rerun", default=opens)
for name, tab in zip(NAMES, tabs, strict=True):
    if tab.open:
        query = st.query_params.to_dict()
        step = next(i for i, n in STEP_IDS.items() if n == name)
        if step == "1" and set(query) <= {"step", "n"}:  # the plain address opens step 1
            query.pop("step", None)
        else:
            query["step"] = step
        write_query(query)
        with tab:
            STEPS[name]()
            if name != NAMES[-1]:
                after = NAMES[NAMES.index(name) + 1]
                st.button(f"Next: {after} →", key=f"{KEY}_next", on_click=next_step, args=(name,))

with st.expander("How best-of-n is measured, and the toy world"):
    st.markdown(
        "Sample N answers per prompt once and score them with gold and every member. For any "
        "n ≤ N the expected gold of the best-of-n answer has a closed form (sort by the "
        "objective, weight position i by C(i−1, n−1)/C(N, n)), so every objective, λ and member "
        "subset is computed from the same score matrix without resampling. Optimization "
        "pressure is KL from the initial policy, for best-of-n the bound"
    )
    st.latex(r"\mathrm{KL}_{\text{bon}} = \log n - \frac{n-1}{n}\ \text{nats}")
    st.markdown(
        "Gao et al. fit gold against d = √KL: best-of-n R(d) = d(α − βd), RL "
        "R(d) = d(α − β log d). Prompts ask for a list: *list 3 fruits :* → *apple pear plum*. "
        + noisy.result["world"].get("gold_description", "")
    )

st.header("Try it")
from backend.presets import PRESETS  # noqa: E402  (after the page shows: imports torch)

may_change = access.can_change()
for name, (description, cfg) in PRESETS.items():
    c1, c2, c3 = st.columns([4, 1, 1])
    c1.markdown(f"**{name}**: {description}")
    if may_change and c2.button("Run it", key=f"run_{name}", type="primary"):
        eid = store.submit(cfg, name=f"{name} (preset)")
        st.switch_page(PAGES["result"].file, query_params={"run": eid})
    if c3.button("Adjust", key=f"adjust_{name}"):
        st.session_state["load_preset"] = name
        st.switch_page(PAGES["new"].file)
if not may_change:
    access.read_only_note("Running a preset")
