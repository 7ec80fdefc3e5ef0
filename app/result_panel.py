"""Drawing one result: the curves with their controls, fits, members, the answer explorer and the
downloads. Used by the Result page (a stored run) and the Learn page (the shipped example)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import charts, plot, store
from app.answers import disagreement, explore_prompt, picks_by_objective
from app.describe import (
    SINGLE_GROUP,
    config_summary,
    errors_sentence,
    gold_units,
    takeaway,
    takeaway_parts,
)
from app.escape import md
from app.tables import (
    CONVENTIONS,
    fits_words,
    html_block,
    members_words,
    method_of,
    result_json,
    sample_steps,
    samples_frame,
    summary_words,
)
from app.view_state import OBJECTIVES, View
from backend.export import curves_csv
from backend.objectives import Objective
from backend.summary import group_curve, summarize_curves

X_OPTIONS = {"KL": "kl", "√KL": "sqrt_kl"}
EXACT_KL = {"exact KL": "kl_exact"}  # best-of-n only: the bound's exact value on these samples
N_AXIS = {"n": "n"}  # best-of-n only: the number of answers drawn
METHOD_CAPTIONS = {
    "ppo": "PPO: each objective and KL penalty is its own training run.",
    "dpo": "Direct alignment: no reward model; the policy learns from the preference pairs "
    "themselves, and KL is measured on its own samples as for PPO. Each loss and β is its own "
    "training run.",
}
LAMBDA_MAX = 5.0
LAMBDA_STEP = 0.05
DEFAULT_SHOW = frozenset({"proxy"})  # toggles on by default (view_state.TOGGLES): few lines


def seed_widgets(values: dict) -> None:
    """Widget values from the link, set once per session before the widgets are drawn (a
    widget then keeps what the user does with it)."""
    for k, v in values.items():
        if k not in st.session_state:
            st.session_state[k] = v


def x_options(result: dict, arrays: dict | None) -> dict[str, str]:
    stored = result["curves"]
    options = dict(X_OPTIONS)
    if stored and stored[0]["points"] and "kl_exact" in stored[0]["points"][0]:
        options.update(EXACT_KL)
    if method_of(result) == "bon":
        options.update(N_AXIS)
    return options


def single_group(curves: list[dict]) -> list[dict]:
    """Single members as one average curve with a band (two or more of them), the rest as is."""
    singles = [c for c in curves if c["objective"] == "single"]
    if len(singles) < 2:
        return curves
    rest = [c for c in curves if c["objective"] != "single"]
    return [group_curve(singles, SINGLE_GROUP), *rest]


def curve_controls(
    result: dict, arrays: dict | None, key: str, link: View | None = None
) -> tuple[list[dict], dict]:
    """The chart's controls (drawn in the current container, first values from `link`, the view
    in the page's address) and the curves they ask for, recomputed for best-of-n when lambda or
    the members differ from the stored run. Best-of-n's λ knob, objectives and members are the
    chart's own (app/plot.py: redrawn in the browser; read here from what it settled on).
    Returns (curves to draw, view options); view["link"] is the View on screen, for the
    address and the share link."""
    link = link or View()
    stored = result["curves"]
    bon = method_of(result) == "bon" and arrays is not None
    options = x_options(result, arrays)
    by_value = {v: k for k, v in options.items()}
    show = link.show if link.show is not None else DEFAULT_SHOW
    seed_widgets(
        {
            f"{key}_x": by_value.get(link.x or "kl", "KL"),
            f"{key}_proxy": "proxy" in show,
            f"{key}_fits": "fits" in show,
            f"{key}_se": "se" in show,
            f"{key}_each": "singles" in show,
        }
    )
    x = st.radio(
        "x axis",
        list(options),
        horizontal=True,
        key=f"{key}_x",
        help="Best-of-n's KL: log n − (n−1)/n is an upper bound, exact only when no two sampled "
        "answers are equal; exact KL merges equal answers (Beirami et al. 2024). Fits use the "
        "bound. n: the number of answers drawn per prompt (log scale).",
    )
    view = {"x": options[x]}
    out = View(x=options[x] if options[x] != "kl" else None)
    curves = stored
    toggles = set()
    if bon:
        K = arrays["proxy"].shape[-1]
        stored_lam = float(result["config"]["bon"]["uwo_lambda"])
        top = max(LAMBDA_MAX, stored_lam, link.lam or 0.0)
        steps = np.round(np.arange(0.0, top + LAMBDA_STEP / 2, LAMBDA_STEP), 9).tolist()
        extra = [round(a, 9) for a in (stored_lam, link.lam) if a is not None]
        grid = sorted({*steps, *extra})
        at, on = plot.state(f"{key}_chart", len(grid))
        moved = at is not None
        start = link.lam if link.lam is not None else stored_lam
        i = at if moved else min(range(len(grid)), key=lambda j: abs(grid[j] - start))
        lam = grid[i]
        members = sorted(m for m in on.get("members") or link.members or range(K) if 0 <= m < K)
        members = members or list(range(K))
        picked = on.get("objectives", link.objectives or OBJECTIVES)
        order = [o for o in OBJECTIVES if o in picked]
        members_key = tuple(members)
        stored_uwo = next((c for c in stored if c["objective"] == "uwo"), None)
        if stored_uwo is not None and len(members) == K:  # the knob's frame at the run's λ
            store.curve_cache().put((key, "uwo", round(stored_lam, 9), members_key), stored_uwo)
        if lam != stored_lam or len(members) != K:
            curves = store.bon_curves_for(key, float(lam), members_key, stored, arrays)
        store.curves_around(key, grid, lam, members_key, arrays, moved)
        if len(members) > 1:
            each = st.checkbox("each single member as its own line", key=f"{key}_each")
            toggles |= {"singles"} if each else set()
        view["knob"] = {"grid": grid, "index": i, "members": members_key, "K": K}
        view.update(lam=float(lam), members=members, objectives=order, stored=stored,
                    each="singles" in toggles)  # fmt: skip
        out = out.with_(
            lam=float(lam) if abs(lam - stored_lam) > 1e-9 else None,
            members=members_key if len(members_key) != K else None,
            objectives=tuple(order) if len(order) != len(OBJECTIVES) else None,
        )
        chosen = curves if "singles" in toggles else single_group(curves)
    else:
        st.caption(METHOD_CAPTIONS.get(method_of(result), ""))
        labels = [c["label"] for c in curves]
        picked = st.pills(
            "curves", labels, selection_mode="multi", default=labels, key=f"{key}_curves"
        )
        chosen = [c for c in curves if c["label"] in picked]
        if sum(c["objective"] == "single" for c in chosen) > 1:
            if st.checkbox("each single member as its own line", key=f"{key}_each"):
                toggles.add("singles")
            else:
                chosen = single_group(chosen)
    view["changed"] = curves is not stored
    view["curves"] = curves  # every curve at this lambda and these members, shown or not
    view["proxy"] = any(charts.has_proxy(c["points"]) for c in curves) and st.checkbox(
        "proxy (dashed)", key=f"{key}_proxy"
    )
    view["fits"] = any("fit" in c for c in curves) and st.checkbox(
        "fitted forms (dotted)", key=f"{key}_fits"
    )
    view["se"] = st.checkbox("gold ± standard error", key=f"{key}_se")
    toggles |= {t for t in ("proxy", "fits", "se") if st.session_state.get(f"{key}_{t}")}
    if "singles" not in toggles and st.session_state.get(f"{key}_each"):
        toggles.add("singles")  # the box is hidden (one single member shown), its value kept
    view["link"] = out.with_(show=frozenset(toggles) if toggles != DEFAULT_SHOW else None)
    return chosen, view


def curves_section(
    result: dict, arrays: dict | None, key: str, link: View | None = None
) -> tuple[list[dict], dict]:
    """The chart with its controls at its right; its title says what the curves show."""
    chart, controls = st.columns([3, 1])
    with controls:
        curves, view = curve_controls(result, arrays, key, link)
    with chart:
        options = {"show_proxy": view["proxy"], "show_fits": view["fits"], "show_se": view["se"]}
        if "knob" not in view:
            fig = charts.curves_figure(curves, view["x"], title=takeaway(curves), **options)
            plot.show(fig, key=f"{key}_chart")
            return curves, view
        title = plot.title_arg(*takeaway_parts(curves))
        text = plot.title_text(title, set(view["objectives"]))
        fig = charts.curves_figure(curves, view["x"], title=text, **options)
        knob = lambda_knob(curves, view, key, len(fig.data), options)
        pills = ensemble_pills(view, key, arrays, options)
        plot.show(fig, key=f"{key}_chart", knob=knob, pills=pills, title=title)
    return curves, view


def lambda_knob(curves: list[dict], view: dict, key: str, traces: int, options: dict) -> plot.Knob:
    """The chart's λ knob: a frame for each λ whose UWO curve the server has (computed ahead),
    the others computed when the knob gets there. UWO is the chart's last curve."""
    k = view["knob"]
    values = [f"{a:g}" for a in k["grid"]]
    label = "UWO λ (population variance)"
    if not curves or curves[-1]["objective"] != "uwo":  # no UWO curve: λ changes nothing drawn
        return plot.Knob(label, values, k["index"], [{}] * len(values))
    frames: list[dict | None] = []
    tail = len(charts.curves_figure([curves[-1]], view["x"], **options).data)
    for lam in k["grid"]:
        uwo = store.cached_curve(key, "uwo", lam, k["members"])
        if uwo is None:
            frames.append(None)
            continue
        fig = charts.curves_figure([uwo], view["x"], **options)
        title = plot.title_arg(*takeaway_parts([*curves[:-1], uwo]))
        frames.append(plot.frame(fig, at=traces - tail, title=title))
    return plot.Knob(label, values, k["index"], frames)


def ensemble_pills(view: dict, key: str, arrays: dict, options: dict) -> list[plot.Pills]:
    """The chart's objectives and members pills. Members: a frame for each choice one click
    away (a member left out or added back) at this λ, computed now (about 35 ms of one core
    each for a default run, once per server: store.curve_cache)."""
    k = view["knob"]
    lam, frames = view["lam"], {}
    for subset in plot.one_click(list(range(k["K"])), k["members"]):
        got = store.bon_curves_for(key, lam, subset, view["stored"], arrays)
        drawn = got if view["each"] else single_group(got)
        fig = charts.curves_figure(drawn, view["x"], **options)
        title = plot.title_arg(*takeaway_parts(drawn))
        frames[plot.subset_key(subset)] = plot.frame(fig, whole=True, title=title)
    words = "Mean, WCO and UWO over these members only; single members: these."
    return curve_pills(view["objectives"], k["K"], k["members"], frames, words)


def curve_pills(objectives, K: int, members, frames: dict, members_help: str) -> list[plot.Pills]:
    """A best-of-n chart's objectives pill (shows or hides curves) and members pill (`frames`:
    the member choices one click away), as the Result panel and Learn step 3 draw them."""
    return [
        plot.Pills("objectives", "curves", list(OBJECTIVES), list(objectives),
                   labels=["single members", "mean", "wco", "uwo"],
                   help="Which curves the chart shows (redrawn in the browser)."),
        plot.Pills("members", "ensemble members", list(range(K)), list(members),
                   labels=[f"#{m}" for m in range(K)], kind="frames", frames=frames,
                   help=members_help),
    ]  # fmt: skip


def has_errors(view: dict) -> bool:
    """Whether the curves carry the shared-error diagnostics (best-of-n results that have them)."""
    return any(
        c["points"] and "shared_error" in c["points"][0]
        for c in view["curves"]
        if c["objective"] != "single"
    )


def errors_section(result: dict, view: dict, key: str) -> None:
    """What the ensemble can see (best-of-n): the members' shared error and their spread at the
    kept answer, beside one sentence that reads them."""
    ensemble_curves = [c for c in view["curves"] if c["objective"] != "single"]
    chart, words = st.columns([3, 1])
    with chart:
        fig = charts.errors_figure(ensemble_curves, view["x"])
        plot.show(fig, key=f"{key}_errors")
    with words:
        st.markdown("**What the ensemble can see**")
        st.markdown(errors_sentence(ensemble_curves, result.get("ensemble")))
        st.caption(
            "A member's error on an answer is its standardized score minus the standardized gold. "
            "Shared error: the members' mean error at the answer best-of-n keeps; spread: their "
            "population std there. Only the spread is visible to an ensemble objective "
            "(Eisenstein et al. 2024)."
        )


def numbers(result: dict, view: dict) -> None:
    changed = view["changed"]
    summary = summarize_curves(view["curves"]) if changed else result.get("summary")
    st.markdown(
        f"**Headline numbers** ({'at the λ and members chosen above' if changed else 'as run'}). "
        "Gold and proxy in std units of the initial policy's answers (its average answer: 0). "
        "*Peak gain lost by the end*: of the gold a curve gained from its start to its peak, "
        "the share it loses again by its last point (0%: it holds its peak; 100%: back where "
        f"it started; over 100%: below it). *{SINGLE_GROUP}*: the single members averaged "
        "point by point."
    )
    table = summary_words(summary, SINGLE_GROUP)
    lost = ("peak gain lost by the end (%)",)
    st.html(html_block(table, decimals=3, percent=lost))
    fits = fits_words(view["curves"])
    if not fits.empty:
        which = "at the λ and members chosen above" if changed else "as run"
        st.markdown(
            f"**Fitted functional forms** ({which}; Gao et al., d = √KL): best-of-n "
            "R(d) = d(α − βd), RL R(d) = d(α − β log d); least squares without intercept, "
            "± the OLS standard error, R² = 1 − SS_res/SS_tot about the mean"
        )
        st.html(html_block(fits, decimals=4))


def dpo_epochs(result: dict, key: str) -> None:
    """Direct alignment against its data: gold and the implicit reward's held-out accuracy by
    epoch, and how many pairs it learned from."""
    curve = result["curves"][0]
    pairs = result.get("pairs", {})
    st.markdown(
        f"**Against the data** ({pairs.get('train', '?')} training pairs of "
        f"{pairs.get('train_all', '?')}: those whose prompt is held out are left out; "
        f"{pairs.get('steps_per_epoch', '?')} steps per epoch). The implicit reward "
        "β·log π/π_ref can keep getting better at ranking held-out pairs while the gold of the "
        "policy's own answers falls: that is overoptimization without a reward model."
    )
    plot.show(charts.epochs_figure(curve), key=f"{key}_epochs")


def members(result: dict) -> None:
    if not result.get("reward_models"):
        st.info(
            "This run trained no reward model (direct alignment learns from the pairs "
            "themselves). Run it with `--dpo-proxies true` (the form's 'proxies score the "
            "samples' box) to have the proxies score its samples."
        )
        return
    st.markdown(
        "**Reward models**: held-out accuracy against clean gold labels, and the raw mean and "
        "std used to standardize each member."
    )
    weak = [m for m in result.get("reward_models") or [] if m.get("near_chance")]
    if weak:
        st.warning(
            "Near chance (held-out accuracy below 0.55): "
            + ", ".join(f"member #{m['member']} ({m['heldout_acc_gold']:.3f})" for m in weak)
            + ". These proxies barely learned the gold preferences; curves that use them say "
            "little.",
            icon=":material/warning:",
        )
    c1, c2 = st.columns([1, 1.3])
    with c1:
        plot.show(charts.accuracy_figure(result), key="members_accuracy")
        if any(m.get("heldout_loss") for m in result.get("reward_models") or []):
            plot.show(charts.losses_figure(result), key="members_losses")
    c2.dataframe(members_words(result).round(4), width="stretch", hide_index=True)


def bon_explorer(arrays: dict, view: dict, key: str, result: dict | None = None) -> None:
    """Best-of-n made visible for one prompt: the top answers under an objective, their gold and
    every member's standardized score."""
    from backend.best_of_n import bon_ns

    P, N, K = arrays["proxy"].shape
    mem = view.get("members", list(range(K)))
    lam = view.get("lam", 0.5)
    names = ["mean", "wco", "uwo", *[Objective("single", member=m).label for m in mem]]
    prompts = [str(p) for p in arrays["prompts"]]
    c1, c2, c3, c4 = st.columns([2, 1, 2, 1])
    p = c1.selectbox(
        "prompt", range(P), format_func=lambda i: f"{i}: {prompts[i]}", key=f"{key}_prompt"
    )
    name = c2.selectbox("objective", names, key=f"{key}_obj")
    n = c3.select_slider("n (answers drawn)", bon_ns(N), value=N, key=f"{key}_n")
    seed = c4.number_input("draw", 0, 10_000, 0, key=f"{key}_draw", help="which random draw")
    st.caption(
        f"The distinct answers among {n} of the prompt's {N}, ranked by {name}"
        f"{f' (λ={lam:g})' if name == 'uwo' else ''} over members "
        + ", ".join(f"#{m}" for m in mem)
        + ". Rank 1 is what best-of-n returns for this draw; copies: how often it was drawn; "
        "r0, r1, …: the members' standardized scores; spread: their population std. "
        + gold_units(result or {})
    )
    table = explore_prompt(arrays, p, name, lam, mem, n, seed)
    numbers = {c: st.column_config.NumberColumn(format="%.2f") for c in table.columns[3:]}
    spread = st.column_config.ProgressColumn(
        "spread", format="%.2f", min_value=0.0, max_value=max(1.0, float(table["spread"].max()))
    )
    st.dataframe(
        table, width="stretch", hide_index=True, column_config={**numbers, "spread": spread}
    )
    st.markdown("**The same draw, each objective's pick**")
    picks = picks_by_objective(arrays, p, names, lam, mem, n, seed)
    numbers = {c: st.column_config.NumberColumn(format="%.2f") for c in picks.columns[2:]}
    st.dataframe(
        picks, width="stretch", hide_index=True, column_config={**numbers, "spread": spread}
    )
    st.markdown("**Where the members disagree**")
    if not st.toggle(
        "Show every answer to this prompt: members' mean against gold, coloured by spread",
        key=f"{key}_scatter",
    ):
        return
    plot.show(charts.disagreement_figure(disagreement(arrays, p, mem)), key=f"{key}_disagree")


SAMPLE_CAPTIONS = {
    "ppo": "Answers the policy sampled at this step, with their gold and proxy rewards.",
    "dpo": "Answers the policy sampled at this step (held-out prompts), with their gold, their "
    "log-ratio sum against the initial policy (kl) and the implicit reward β·kl DPO gives them; "
    "members' scores when the run trained the ensemble (--dpo-proxies true).",
}


def samples_explorer(result: dict, key: str) -> None:
    """The answers a PPO or DPO run logged at each evaluation."""
    samples = result.get("samples") or []
    steps = sample_steps(samples)
    if not steps:
        st.info("This run logged no sample answers.")
        return
    method = method_of(result)
    label = f"{'DPO' if method == 'dpo' else 'PPO'} step"
    step = st.select_slider(label, steps, value=steps[-1], key=f"{key}_step")
    st.caption(SAMPLE_CAPTIONS.get(method, SAMPLE_CAPTIONS["ppo"]))
    table = samples_frame(samples, step).dropna(axis=1, how="all")
    numbers = {
        c: st.column_config.NumberColumn(format="%.3f")
        for c in table.columns
        if table[c].dtype.kind == "f"
    }
    st.dataframe(table, width="stretch", hide_index=True, column_config=numbers)


def downloads(title: str, result: dict, curves: list[dict], key: str, changed: bool) -> None:
    note = "curves recomputed in the app (λ or members changed)" if changed else ""
    slug = key.replace(" ", "-")
    with st.container(horizontal=True):
        st.download_button(
            "CSV (curves)",
            curves_csv(curves),
            f"{slug}-curves.csv",
            "text/csv",
            key=f"{key}_csv",
            on_click="ignore",
        )
        st.download_button(
            "JSON (result)",
            lambda: result_json(result, curves if changed else None),
            f"{slug}-result.json",
            "application/json",
            key=f"{key}_json",
            on_click="ignore",
        )
        st.download_button(
            "HTML report",
            lambda: charts.report_html(title, result, curves, note),
            f"{slug}-report.html",
            "text/html",
            key=f"{key}_html",
            on_click="ignore",
            help="One standalone page (plotly inline): the charts, numbers, config and versions.",
        )


def render_result(
    result: dict,
    arrays: dict | None,
    key: str,
    title: str,
    first_tab: str = "Numbers",
    link: View | None = None,
) -> View:
    """Everything about one finished result, its controls first set from `link` (the view in
    the page's address). Only the open tab is computed and sent; the answer explorer costs
    about half a second more in the browser, so the Result page opens on the numbers. Returns
    the View on screen (for the address and the share link)."""
    st.caption(md(config_summary(result.get("config", {}))))
    _, view = curves_section(result, arrays, key, link)
    st.caption(CONVENTIONS)
    errors = has_errors(view)
    names = ["Numbers", "Answers", *(["What the ensemble sees"] if errors else [])]
    names += ["Reward models", "Config", "Download"]
    tabs = st.tabs(names, key=f"{key}_tab", on_change="rerun", default=first_tab)
    tabs = dict(zip(names, tabs, strict=True))
    if errors and tabs["What the ensemble sees"].open:
        with tabs["What the ensemble sees"]:
            errors_section(result, view, key)
    if tabs["Answers"].open:
        if method_of(result) == "bon" and arrays is not None:
            with tabs["Answers"]:
                bon_explorer(arrays, view, key, result)
        elif method_of(result) == "bon":
            tabs["Answers"].info("The score matrix of this run is not available.")
        else:
            with tabs["Answers"]:
                samples_explorer(result, key)
    if tabs["Numbers"].open:
        with tabs["Numbers"]:
            if method_of(result) == "dpo":
                dpo_epochs(result, key)
            numbers(result, view)
    if tabs["Reward models"].open:
        with tabs["Reward models"]:
            members(result)
    if tabs["Config"].open:
        with tabs["Config"]:
            st.json(result.get("config", {}), expanded=False)
            c1, c2 = st.columns(2)
            c1.markdown("**Timings (s)**")
            c1.json(result.get("timings", {}), expanded=False)
            c2.markdown("**Versions and device**")
            c2.json({**result.get("versions", {}), "device": result.get("device")}, expanded=False)
    if tabs["Download"].open:
        with tabs["Download"]:
            downloads(title, result, view["curves"], key, view["changed"])
    return view["link"]
