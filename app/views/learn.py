"""Learn: what overoptimization is, why ensembles help, with a real result shown at once."""

import streamlit as st

from app import access, store
from app.nav import PAGES
from app.result_panel import render_result

st.title("Goodhart Lab")
st.markdown(
    "**When a measure becomes a target, it ceases to be a good measure.** In RLHF a policy is "
    "optimized against a *proxy* reward model trained on human preferences. Push hard enough and "
    "the policy finds answers the proxy loves and people do not: the proxy reward keeps rising "
    "while the true (*gold*) reward peaks and falls. This is **reward-model overoptimization** "
    "(Gao, Schulman, Hilton 2023). Coste et al. (ICLR 2024) showed that an **ensemble** of proxies "
    "with a *conservative* objective mostly prevents it."
)

result, arrays = store.example()
if result is None:
    st.warning("The shipped example (assets/examples/) is missing: run an experiment instead.")
else:
    st.subheader("A real run: best-of-n in the toy world")
    cfg = result["config"]
    st.markdown(
        f"The toy-bon preset (seed {cfg['seed']}): {cfg['reward_models']['members']} proxies "
        f"trained on gold labels with {cfg['preferences']['label_noise']:.0%} of them flipped; "
        "best-of-n picks the answer with the highest proxy score out of n samples. Solid lines "
        "are **gold**, dashed the **proxy** each objective optimizes. Move λ or drop members: "
        "the curves are recomputed from the stored score matrix at once."
    )
    render_result(result, arrays, key="example", title="Goodhart Lab example", first_tab="Answers")

st.subheader("Why an ensemble helps")
st.markdown(
    "Members trained on the same data with different seeds agree on ordinary answers and "
    "disagree on the odd ones that best-of-n digs up. A conservative objective turns that "
    "disagreement into a penalty. With K members' standardized scores r₁ … r_K:"
)
c1, c2, c3 = st.columns(3)
c1.markdown("**Mean** (still overoptimizes)")
c1.latex(r"R_{\text{mean}} = \frac{1}{K}\sum_k r_k")
c2.markdown("**WCO**: worst-case optimization")
c2.latex(r"R_{\text{WCO}} = \min_k r_k")
c3.markdown("**UWO**: uncertainty-weighted optimization")
c3.latex(r"R_{\text{UWO}} = \frac{1}{K}\sum_k r_k - \lambda\,\frac{1}{K}\sum_k (r_k - \bar r)^2")
st.markdown(
    "Each member is **standardized** first (mean 0, population std 1 over the initial policy's "
    "answers), otherwise the minimum and the variance compare unlike scales. UWO uses the "
    "**population** variance (divide by K). Gold is shifted so the initial policy scores 0."
)

st.subheader("How best-of-n is measured")
st.markdown(
    "Sample N answers per prompt once and score them with gold and every member. For any n ≤ N "
    "the expected gold of the best-of-n answer has a closed form (sort by the objective, weight "
    "position i by C(i−1, n−1)/C(N, n)), so every objective, λ and member subset is computed "
    "from the same score matrix without resampling. Optimization pressure is measured as KL "
    "from the initial policy:"
)
st.latex(r"\mathrm{KL}_{\text{bon}} = \log n - \frac{n-1}{n}\ \text{nats}")
st.markdown(
    "Gao et al. fit gold against d = √KL: best-of-n R(d) = d(α − βd), RL R(d) = d(α − β log d)."
)

st.subheader("The toy world and its gold reward")
gold_text = (result or {}).get("world", {}).get("gold_description", "")
st.markdown(
    "Prompts ask for a list: *list 3 fruits :* → *apple pear plum*. The initial (SFT) policy is a "
    "tiny GPT-2 that mostly answers sensibly. " + gold_text
)
st.markdown(
    "The preference pairs come from the initial policy, so they say little about long or "
    "repetitive answers. A proxy learns “more on-topic items is better”, and best-of-n, "
    "searching thousands of answers, finds the rare long and repetitive ones it likes and gold "
    "punishes. The **Answers** tab above shows the answers each objective picks."
)

st.subheader("Without a reward model")
st.markdown(
    "Direct alignment (DPO, IPO, SLiC) trains the policy on the preference pairs themselves, "
    "with no proxy to hack, and still overoptimizes (Rafailov et al. 2024): the policy's "
    "implicit reward β·log π/π_init keeps ranking held-out pairs right while the gold of its own "
    "answers rises and falls as its KL from the initial policy grows. The toy-dpo preset below "
    "shows it on the same noisy pairs; the Compare page puts it beside best-of-n and PPO."
)

st.subheader("Try it")
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
