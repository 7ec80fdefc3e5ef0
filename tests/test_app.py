"""Every page of the Streamlit app through streamlit.testing.v1.AppTest, on a temporary database
holding real results (the shipped best-of-n example and a tiny PPO run)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.app_support import (
    app_test,
    chart_args,
    chart_by_key,
    chart_text,
    charts,
    example,
    figure,
    framed,
    html_tables,
    knob_value,
    move_knob,
    no_exceptions,
    open_page,
    pills_on,
    set_pills,
    share_links,
    shown_names,
    store_finished,
    trace,
    use_temp_db,
    values,
)
from tests.jobs_support import tiny_config


@pytest.fixture
def db(tmp_path, monkeypatch):
    return use_temp_db(tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def ppo_output(tmp_path_factory):
    """A tiny real PPO run (about 10 s on a CPU)."""
    from backend.cache import ArtifactCache
    from backend.experiment import run_experiment

    cfg = tiny_config().replace(
        method="ppo",
        **{
            "ppo.steps": 6,
            "ppo.eval_every": 3,
            "ppo.batch_size": 16,
            "ppo.eval_samples": 16,
            "ppo.norm_samples": 256,
        },
    )
    cache = ArtifactCache(root=tmp_path_factory.mktemp("ppo-cache"))
    return run_experiment(cfg, cache=cache)


@pytest.fixture(scope="session")
def dpo_output(tmp_path_factory):
    """A tiny real DPO run (a few seconds on a CPU)."""
    from backend.cache import ArtifactCache
    from backend.experiment import run_experiment

    cfg = tiny_config().replace(
        method="dpo",
        **{
            "dpo.epochs": 2,
            "dpo.batch_size": 32,
            "dpo.eval_every": 4,
            "dpo.first_epoch_evals": 2,
            "dpo.eval_samples": 16,
        },
    )
    cache = ArtifactCache(root=tmp_path_factory.mktemp("dpo-cache"))
    return run_experiment(cfg, cache=cache)


@pytest.fixture
def bon_run(db):
    result, arrays = example()
    return store_finished(result, arrays, name="example run")


# ---- Learn ---------------------------------------------------------------------------------------


def chart(at, title_start: str) -> dict:
    """The plotly figure whose title starts with `title_start`."""
    for i in range(len(charts(at))):
        fig = figure(at, i)
        text = ((fig.get("layout") or {}).get("title") or {}).get("text") or ""
        if text.startswith(title_start):
            return fig
    raise AssertionError(f"no chart titled {title_start!r}")


def open_step(at, step: str):
    """The Learn page with one step's tab open (only the open step is drawn)."""
    at.session_state["learn_step"] = step
    return at.run()


def test_learn_walks_through_five_steps_with_sentences_from_the_stored_numbers(db):
    from app import examples, lessons

    at = app_test().run()
    no_exceptions(at)
    assert at.title[0].value == "Goodhart Lab"
    assert at.header[0].value.startswith("1 · One proxy")  # it opens on step 1
    noisy = examples.load("toy-bon")
    one = noisy.curve("single", member=0)
    fig = chart(at, "One proxy")
    assert trace(fig, "single #0")["y"] == pytest.approx([p["gold"] for p in one["points"]])
    assert lessons.one_proxy_sentence(one, 4096) in chart_text(at)
    # Every position of the n knob is sent with the chart (the browser redraws it): the frame
    # at n = 16 is what the server draws at n = 16.
    frames = chart_by_key(at, "learn_n")["knob"]["frames"]
    move_knob(at, "learn_n", "16")
    no_exceptions(at)
    assert lessons.one_proxy_sentence(one, 16) in chart_text(at)
    at16 = chart_by_key(at, "learn_n")
    assert framed(at16["figure"], frames[4]) == framed(at16["figure"], {})
    assert frames[4]["side"] == at16["side"] and frames[4]["below"] == at16["below"]
    # "Next" opens the next step; step 3 at the stored lambda says what the stored curves say.
    at.button(key="learn_next").click().run()
    assert at.header[0].value.startswith("2 · Why")
    # Step 2's second world is a radio knob with both worlds' charts sent ahead.
    world = chart_by_key(at, "learn_unshared")
    assert world["knob"]["kind"] == "radio" and world["figure"]["layout"]["title"][
        "text"
    ].startswith("toy-bon-pretrain:")
    move_knob(at, "learn_unshared", world["knob"]["values"][1])
    clean = chart_by_key(at, "learn_unshared")
    assert clean["figure"]["layout"]["title"]["text"].startswith("toy-bon-clean:")
    assert framed(world["figure"], world["knob"]["frames"][1]) == framed(clean["figure"], {})
    assert world["knob"]["frames"][1]["below"] == clean["below"]
    assert lessons.errors_world_sentence(lessons.errors_facts(examples.load("toy-bon-clean"))) in (
        chart_text(at)
    )
    at = open_step(at, "3 · Objectives and λ")
    no_exceptions(at)
    uwo = noisy.curve("uwo")
    want = lessons.objective_sentence(
        lessons.singles_group(noisy), noisy.curve("mean"), noisy.curve("wco"), uwo, 0.5
    )
    texts = [m.value for m in at.markdown]
    assert want in chart_text(at)
    assert "mostly prevent" not in " ".join(texts) + chart_text(at)
    assert len(at.latex) >= 3
    for step, head in (("4 · Label noise", "4 ·"), ("5 · PPO and DPO", "5 ·")):
        at = open_step(at, step)
        no_exceptions(at)
        assert at.header[0].value.startswith(head) and len(charts(at)) >= 1


def test_learn_lambda_slider_redraws_uwo_from_the_grid_and_writes_the_url(db):
    from app import examples

    at = open_step(app_test().run(), "3 · Objectives and λ")
    assert "lam" not in at.query_params  # the default view is not written into the link
    frames = chart_by_key(at, "learn_lam")["knob"]["frames"]  # every λ, for the browser
    assert len(frames) == 101 and all(frames)
    default = chart_by_key(at, "learn_lam")["figure"]
    move_knob(at, "learn_lam", "3")
    no_exceptions(at)
    fig = chart(at, "UWO at λ = 3:")
    want = examples.load("toy-bon").uwo_at(3.0)
    assert trace(fig, "uwo (lambda=3)")["y"] == pytest.approx([p["gold"] for p in want["points"]])
    assert framed(default, frames[60]) == framed(fig, frames[60])  # the browser's frame: the same
    assert framed(default, frames[60])["layout"]["title"] == fig["layout"]["title"]
    assert at.query_params["lam"] == "3"
    assert "At λ = 3 UWO" in chart_text(at)
    set_pills(at, "learn_lam", "objectives", ["wco", "uwo"])
    at.radio(key="learn_x").set_value("n").run()
    assert at.query_params["objectives"] == "wco,uwo" and at.query_params["x"] == "n"


def test_learn_opens_the_view_of_a_link(db):
    at = app_test({"lam": "2.5", "objectives": "wco,uwo", "x": "sqrt_kl", "members": "0,1,2"})
    at.run()
    no_exceptions(at)
    assert knob_value(at, "learn_lam") == "2.5"
    assert at.radio(key="learn_x").value == "√KL"
    fig = chart(at, "UWO at λ = 2.5:")
    assert {t["name"] for t in fig["data"] if t.get("showlegend", True)} & shown_names(fig) == {
        "wco",
        "uwo (lambda=2.5)",
    }
    # A member subset is recomputed from the shipped matrix.
    from backend.best_of_n import bon_curves
    from backend.objectives import Objective

    _, arrays = example()
    (want,) = bon_curves(
        arrays["gold"].astype(float), arrays["proxy"].astype(float), [Objective("wco")], [0, 1, 2]
    )
    assert trace(fig, "wco")["y"] == pytest.approx([p["gold"] for p in want["points"]])
    # Moving λ over a subset computes the next steps now: the browser gets their frames.
    move_knob(at, "learn_lam", "2.55")
    knob = chart_by_key(at, "learn_lam")["knob"]
    assert knob["frames"][50] and knob["frames"][52]  # λ = 2.5 and 2.6
    at255 = chart_by_key(at, "learn_lam")["figure"]
    move_knob(at, "learn_lam", "2.6")
    no_exceptions(at)
    at26 = chart_by_key(at, "learn_lam")["figure"]
    on = {"wco", "uwo"}  # the link's objectives: the frame's title states these
    assert framed(at255, knob["frames"][52], on) == framed(at26, {}, on)
    bad = app_test({"lam": "many"}).run()
    no_exceptions(bad)
    assert any("lam='many'" in c.value for c in bad.caption)


def test_learn_free_play_opens_the_full_result_panel(db):
    at = open_step(app_test().run(), "Free play")
    no_exceptions(at)
    move_knob(at, "example_toy-bon_chart", "1")
    no_exceptions(at)
    assert trace(chart(at, "Share of the gain up to the peak (★) lost by n"), "uwo (lambda=1)")
    assert at.query_params["step"] == "free" and at.query_params["lam"] == "1"  # a link opens it
    again = app_test(dict(at.query_params)).run()
    no_exceptions(again)
    assert (
        again.header[0].value == "Free play" and knob_value(again, "example_toy-bon_chart") == "1"
    )


def test_learn_step_and_n_round_trip_through_the_address(db):
    at = app_test().run()
    assert "step" not in at.query_params and "n" not in at.query_params  # the plain address
    move_knob(at, "learn_n", "16")
    assert at.query_params["n"] == "16"
    again = app_test(dict(at.query_params)).run()
    no_exceptions(again)
    assert again.header[0].value.startswith("1 · One proxy")
    assert knob_value(again, "learn_n") == "16"
    at = open_step(at, "4 · Label noise")
    assert at.query_params["step"] == "4"
    opened = app_test({"step": "4"}).run()
    assert opened.header[0].value.startswith("4 ·")
    bad = app_test({"step": "9", "n": "17"}).run()
    no_exceptions(bad)
    assert bad.header[0].value.startswith("1 ·") and knob_value(bad, "learn_n") == "4,096"
    words = " ".join(c.value for c in bad.caption)
    assert "step='9'" in words and "n='17'" in words


def test_learn_preset_run_it_submits_and_opens_the_run(db):
    from db import api

    at = app_test().run()
    at.button(key="run_toy-bon").click().run()
    no_exceptions(at)
    (row,) = api.list_experiments()
    assert row["status"] == "queued" and row["name"] == "toy-bon (preset)"
    assert at.query_params["run"] == row["id"]
    assert at.title[0].value == "toy-bon (preset)"


def test_learn_adjust_loads_the_preset_into_the_form(db):
    at = app_test().run()
    at.button(key="adjust_toy-ppo").click().run()
    no_exceptions(at)
    assert at.title[0].value == "New experiment"
    assert at.selectbox(key="f_method").value == "ppo"
    assert at.number_input(key="f_ppo.kl_coef").value == 0.0


# ---- New experiment ------------------------------------------------------------------------------


def new_experiment(db):
    at = open_page("views/new_experiment.py")
    return at


def test_new_experiment_checks_input_next_to_the_field(db):
    at = new_experiment(db)
    at.number_input(key="f_preferences.label_noise").set_value(0.7).run()
    (err,) = at.error
    assert "between 0.0 and 0.5" in err.value
    assert at.button(key="submit").disabled
    at.number_input(key="f_preferences.label_noise").set_value(0.1).run()
    assert not at.error and not at.button(key="submit").disabled
    at.text_input(key="f_seeds").set_value("one").run()
    assert "whole numbers" in at.error[0].value


def test_new_experiment_submits_the_same_config_as_the_cli(db):
    from backend.cli import build_parser, config_from_args
    from db import api

    at = new_experiment(db)
    at.number_input(key="f_preferences.label_noise").set_value(0.0).run()
    at.number_input(key="f_reward_models.members").set_value(3).run()
    at.number_input(key="f_bon.samples").set_value(256).run()
    at.number_input(key="f_bon.uwo_lambda").set_value(1.5).run()
    at.text_input(key="f_name").set_value("noise 0").run()
    at.button(key="submit").click().run()
    no_exceptions(at)
    (row,) = api.list_experiments()
    cli = "run --preset toy-bon --label-noise 0 --members 3 --samples 256 --uwo-lambda 1.5"
    args = build_parser().parse_args([*cli.split(), "--out", "x.json"])
    assert row["config"] == config_from_args(args).to_dict()
    assert row["name"] == "noise 0"
    assert at.query_params["run"] == row["id"]
    assert "queued" in at.get("progress")[0].proto.text


def test_new_experiment_several_seeds_open_a_comparison(db):
    from db import api

    at = new_experiment(db)
    at.text_input(key="f_seeds").set_value("3-5").run()
    assert at.button(key="submit").label == "Submit 3 experiments"
    at.button(key="submit").click().run()
    no_exceptions(at)
    rows = api.list_experiments()
    assert sorted(r["config"]["seed"] for r in rows) == [3, 4, 5]
    assert set(at.query_params["compare"].split(",")) == {r["id"] for r in rows}
    assert at.title[0].value == "Compare runs"


def test_new_experiment_ppo_preset_shows_ppo_fields_and_checks_them(db):
    at = new_experiment(db)
    at.button(key="preset_toy-ppo").click().run()
    assert at.selectbox(key="f_method").value == "ppo"
    at.number_input(key="f_reward_models.members").set_value(2).run()
    at.number_input(key="f_ppo.member").set_value(3).run()
    (err,) = at.error
    assert "member must be between 0 and 1" in err.value
    with pytest.raises(KeyError):
        at.number_input(key="f_bon.samples")


def test_new_experiment_dpo_preset_shows_its_fields_and_checks_them(db):
    from db import api

    at = new_experiment(db)
    at.button(key="preset_toy-dpo").click().run()
    no_exceptions(at)
    assert at.selectbox(key="f_method").value == "dpo"
    assert at.selectbox(key="f_dpo.loss").options == ["dpo", "ipo", "slic"]
    assert not at.checkbox(key="f_dpo.score_proxies").value  # no proxies unless asked for
    at.number_input(key="f_dpo.beta").set_value(0.0).run()
    (err,) = at.error
    assert "between 0.0001 and 100" in err.value and at.button(key="submit").disabled
    at.number_input(key="f_dpo.beta").set_value(0.3).run()
    at.selectbox(key="f_dpo.loss").set_value("ipo").run()
    at.button(key="submit").click().run()
    no_exceptions(at)
    (row,) = api.list_experiments()
    assert row["config"]["method"] == "dpo"
    assert (row["config"]["dpo"]["loss"], row["config"]["dpo"]["beta"]) == ("ipo", 0.3)
    with pytest.raises(KeyError):
        at.number_input(key="f_ppo.kl_coef")


# ---- Runs ----------------------------------------------------------------------------------------


def runs_page(db):
    at = open_page("views/runs.py")
    return at


def test_runs_page_empty(db):
    at = runs_page(db)
    assert "No experiments yet" in at.info[0].value


def test_runs_lists_cancels_and_deletes_with_confirmation(db, bon_run):
    from db import api

    queued = api.submit(tiny_config(), name="waiting")
    at = runs_page(db)
    table = at.dataframe[0].value
    assert list(table["status"]) == ["queued", "done"]
    at.multiselect(key="runs_selected").set_value([queued]).run()
    at.button(key="runs_cancel").click().run()
    no_exceptions(at)
    assert api.get_experiment(queued)["status"] == "cancelled"

    at.multiselect(key="runs_selected").set_value([bon_run]).run()
    at.button(key="runs_delete").click().run()
    assert "for good" in at.warning[0].value
    assert api.get_experiment(bon_run) is not None  # not before the confirmation
    at.button(key="runs_delete_yes").click().run()
    no_exceptions(at)
    assert api.get_experiment(bon_run) is None
    assert list(at.dataframe[0].value["status"]) == ["cancelled"]


def test_runs_open_and_compare(db, bon_run):
    other = store_finished(*example(), name="second")
    at = runs_page(db)
    at.multiselect(key="runs_selected").set_value([bon_run, other]).run()
    at.button(key="runs_compare").click().run()
    no_exceptions(at)
    assert at.title[0].value == "Compare runs"
    at = runs_page(db)
    at.multiselect(key="runs_selected").set_value([other]).run()
    at.button(key="runs_open").click().run()
    assert at.title[0].value == "second"


# ---- Result --------------------------------------------------------------------------------------


def test_result_page_of_a_best_of_n_run(db, bon_run):
    at = app_test({"run": bon_run}).run()
    no_exceptions(at)
    assert at.title[0].value == "example run"
    assert share_links(at)[0].endswith(f"/result?run={bon_run}")  # the share link
    fig = figure(at)
    names = {t["name"] for t in fig["data"]}
    assert {"mean", "mean · proxy", "wco", "uwo (lambda=0.5)"} <= names
    assert trace(fig, "mean · proxy")["line"]["dash"] == "dash"
    assert trace(fig, "mean")["line"]["color"] == trace(fig, "mean · proxy")["line"]["color"]
    kl = trace(fig, "mean")["x"]
    at.radio(key=f"r_{bon_run}_x").set_value("√KL").run()
    assert trace(figure(at), "mean")["x"] == pytest.approx(np.sqrt(kl))
    assert any("population" in c.value for c in at.caption)  # the conventions
    assert not at.get("download_button")  # tabs are lazy: only the open one runs
    assert "single members (average)" in set(html_tables(at)[0]["curve"])  # opens on numbers
    at.session_state[f"r_{bon_run}_tab"] = "Download"
    at.run()
    assert [b.proto.label for b in at.get("download_button")] == [
        "CSV (curves)",
        "JSON (result)",
        "HTML report",
    ]
    at.session_state[f"r_{bon_run}_tab"] = "Numbers"
    at.run()
    summary = html_tables(at)[0].set_index("curve")
    assert {"mean", "wco", "single members (average)"} <= set(summary.index)
    lost = summary.loc["wco", "peak gain lost by the end (%)"]
    stored = example()[0]["summary"]["wco"]["overoptimization"]
    assert lost == f"{100 * stored:.0f}%"  # a percentage
    peak = example()[0]["summary"]["wco"]["gold_peak"]
    assert summary.loc["wco", "peak gold"] == pytest.approx(peak, abs=5e-4)  # to 3 places
    move_knob(at, f"r_{bon_run}_chart", "4")
    assert any("at the λ and members chosen above" in m.value for m in at.markdown)
    assert "uwo (lambda=4)" in set(html_tables(at)[0]["curve"])
    at.session_state[f"r_{bon_run}_tab"] = "Reward models"
    at.run()
    assert list(at.dataframe[0].value["member"]) == [0, 1, 2, 3, 4]


def test_result_lambda_and_members_recompute_from_the_stored_matrix(db, bon_run):
    from backend.best_of_n import bon_curves
    from backend.objectives import Objective
    from tests.app_support import example as ex

    _, arrays = ex()
    gold, proxy = arrays["gold"].astype(float), arrays["proxy"].astype(float)
    at = app_test({"run": bon_run}).run()
    move_knob(at, f"r_{bon_run}_chart", "2")
    no_exceptions(at)
    (want,) = bon_curves(gold, proxy, [Objective("uwo", lam=2.0)])
    got = trace(figure(at), "uwo (lambda=2)")["y"]
    assert got == pytest.approx([p["gold"] for p in want["points"]])

    # The members pill: every choice one click away is sent with the chart (the browser
    # redraws it); the frame for members 0-3 is what the server draws for them.
    key = f"r_{bon_run}_chart"
    before = chart_by_key(at, key)
    members = next(p for p in before["pills"] if p["name"] == "members")
    assert set(members["frames"]) == {"1,2,3,4", "0,2,3,4", "0,1,3,4", "0,1,2,4", "0,1,2,3"}
    set_pills(at, key, "members", [0, 1, 2, 3])
    after = chart_by_key(at, key)
    assert framed(before["figure"], members["frames"]["0,1,2,3"]) == framed(after["figure"], {})
    assert after["title"] == members["frames"]["0,1,2,3"]["title"]
    set_pills(at, key, "members", [0, 2])
    no_exceptions(at)
    assert pills_on(at, key, "members") == [0, 2]
    (want,) = bon_curves(gold, proxy, [Objective("wco")], members=[0, 2])
    assert trace(figure(at), "wco")["y"] == pytest.approx([p["gold"] for p in want["points"]])
    names = shown_names(figure(at))
    assert "single members (average)" in names and "single #2" not in names  # one line, a band
    at.checkbox(key=f"r_{bon_run}_each").check().run()
    names = shown_names(figure(at))
    assert "single #1" not in names and "single #2" in names
    # The objectives pill hides curves in the browser; the title states only the shown ones.
    set_pills(at, key, "objectives", ["wco"])
    assert shown_names(figure(at)) == {"wco", "wco · proxy", "wco · peak"}
    title = figure(at)["layout"]["title"]["text"]
    assert "WCO" in title and "mean" not in title and "single" not in title


def test_a_stored_result_without_uwo_draws_a_knob_that_changes_nothing(db):
    result, arrays = example()
    result["curves"] = [c for c in result["curves"] if c["objective"] != "uwo"]
    eid = store_finished(result, arrays)
    at = app_test({"run": eid}).run()
    no_exceptions(at)
    knob = chart_by_key(at, f"r_{eid}_chart")["knob"]
    assert all(f == {} for f in knob["frames"])  # no trace of another curve is replaced
    assert "mean" in shown_names(figure(at))


def test_result_view_round_trips_through_the_link_and_the_share_box(db, bon_run):
    query = {"run": bon_run, "lam": "2", "members": "0,2", "x": "sqrt_kl", "show": "fits"}
    at = app_test(query).run()
    no_exceptions(at)
    key = f"r_{bon_run}"
    assert knob_value(at, f"{key}_chart") == "2"
    assert pills_on(at, f"{key}_chart", "members") == [0, 2]
    assert at.radio(key=f"{key}_x").value == "√KL"
    assert not at.checkbox(key=f"{key}_proxy").value and at.checkbox(key=f"{key}_fits").value
    names = shown_names(figure(at))
    assert "uwo (lambda=2)" in names and "mean · proxy" not in names
    link = share_links(at)[0]
    assert (
        link == f"http://localhost:8501/result?run={bon_run}&lam=2&members=0,2&x=sqrt_kl&show=fits"
    )
    move_knob(at, f"{key}_chart", "4")
    set_pills(at, f"{key}_chart", "objectives", ["single", "wco", "uwo"])
    assert at.query_params["lam"] == "4" and at.query_params["objectives"] == "single,wco,uwo"
    assert "lam=4" in share_links(at)[0] and "objectives=single,wco,uwo" in share_links(at)[0]
    plain = app_test({"run": bon_run}).run()
    assert share_links(plain)[0] == f"http://localhost:8501/result?run={bon_run}"  # default view


def test_result_what_the_ensemble_sees_reads_the_stored_diagnostics(db, bon_run):
    from app.describe import errors_sentence

    result, _ = example()
    at = app_test({"run": bon_run}).run()
    at.session_state[f"r_{bon_run}_tab"] = "What the ensemble sees"
    at.run()
    no_exceptions(at)
    wco = next(c for c in result["curves"] if c["objective"] == "wco")
    fig = figure(at, 1)
    shared = trace(fig, "wco · shared error")
    assert shared["y"] == pytest.approx([p["shared_error"] for p in wco["points"]])
    ensemble = [c for c in result["curves"] if c["objective"] != "single"]
    text = errors_sentence(ensemble, result["ensemble"])
    assert text in [m.value for m in at.markdown]
    assert f"{wco['points'][-1]['shared_share']:.0%} of their squared error" in text


def answers_tab(eid: str):
    """The Result page of a run with its Answers tab open (it opens on the numbers)."""
    at = app_test({"run": eid}).run()
    at.session_state[f"r_{eid}_tab"] = "Answers"
    return at.run()


def test_result_answer_explorer(db, bon_run):
    at = answers_tab(bon_run)
    key = f"r_{bon_run}"
    table = at.dataframe[0].value
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert {"answer", "gold", "r0", "r4", "spread", "copies"} <= set(table.columns)
    assert table["objective"].is_monotonic_decreasing
    at.selectbox(key=f"{key}_obj").set_value("wco").run()
    at.select_slider(key=f"{key}_n").set_value(16).run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert table["copies"].sum() <= 16
    picks = at.dataframe[1].value
    assert list(picks["objective"][:3]) == ["mean", "wco", "uwo"]
    assert len(charts(at)) == 1
    assert any("standardized globally, not per prompt" in c.value for c in at.caption)
    at.toggle(key=f"{key}_scatter").set_value(True).run()
    no_exceptions(at)
    assert len(values(figure(at, 1)["data"][0]["x"])) == 4096  # every answer to the prompt


def test_result_page_of_a_ppo_run(db, ppo_output):
    eid = store_finished(ppo_output.result, ppo_output.arrays, name="ppo run")
    at = answers_tab(eid)
    no_exceptions(at)
    fig = figure(at)
    (curve,) = ppo_output.result["curves"]
    assert trace(fig, curve["label"])["customdata"][-1][0] == curve["points"][-1]["step"]
    steps = sorted({s["step"] for s in ppo_output.result["samples"]})
    at.select_slider(key=f"r_{eid}_step").set_value(steps[0]).run()
    table = at.dataframe[0].value
    assert set(table["step"]) == {steps[0]} and "answer" in table.columns
    assert chart_args(at)["knob"] is None  # no lambda knob for PPO


def test_result_page_of_a_dpo_run(db, dpo_output):
    eid = store_finished(dpo_output.result, dpo_output.arrays, name="dpo run")
    at = app_test({"run": eid}).run()
    no_exceptions(at)
    (curve,) = dpo_output.result["curves"]
    fig = figure(at)
    gold = trace(fig, curve["label"])
    assert gold["y"] == pytest.approx([p["gold"] for p in curve["points"]])
    label = curve["label"]
    assert {t["name"] for t in fig["data"]} == {label, f"{label} · peak"}  # fits off by default
    assert any("no reward model" in c.value for c in at.caption)  # what DPO is, in one line
    epochs = figure(at, 1)  # the Numbers tab: gold and implicit accuracy by epoch
    acc = next(t for t in epochs["data"] if t["name"].startswith("implicit"))
    assert values(acc["x"]) == [p["epoch"] for p in curve["points"]]
    assert values(acc["y"]) == [p["implicit_acc"] for p in curve["points"]]
    assert "epoch at the peak" in html_tables(at)[0].columns
    at.session_state[f"r_{eid}_tab"] = "Answers"
    at.run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert {"answer", "gold", "kl", "implicit_reward"} <= set(table.columns)
    assert "proxy" not in table.columns  # no ensemble: nothing to show rather than empty
    at.session_state[f"r_{eid}_tab"] = "Reward models"
    at.run()
    assert "trained no reward model" in at.info[0].value


def test_result_page_updates_while_running(db):
    from db import api, jobs

    eid = api.submit(tiny_config(), name="live")
    at = app_test({"run": eid}).run()
    no_exceptions(at)
    assert "queued" in at.get("progress")[0].proto.text
    jobs.claim(eid, "test:1")
    jobs.progress(eid, "test:1", 0.4, "training proxy 1 of 2")
    at.run()
    assert "training proxy 1 of 2" in at.get("progress")[0].proto.text
    result, arrays = example()
    jobs.finish(eid, "test:1", result, arrays)
    at.run()
    no_exceptions(at)
    assert not at.get("progress") and figure(at)["data"]


def test_result_page_of_failed_and_cancelled_runs(db):
    from db import api, jobs

    failed = api.submit(tiny_config(), name="broken")
    jobs.claim(failed, "test:1")
    jobs.fail(failed, "test:1", "Traceback ...\nRuntimeError: out of memory")
    at = app_test({"run": failed}).run()
    no_exceptions(at)
    assert "RuntimeError: out of memory" in at.error[0].value
    at.button(key="result_resubmit").click().run()
    assert len(api.list_experiments()) == 2 and at.query_params["run"] != failed

    cancelled = api.submit(tiny_config())
    api.cancel(cancelled)
    at = app_test({"run": cancelled}).run()
    assert "cancelled" in at.warning[0].value


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("", "no run id"),
        ("nonsense!!", "is not a run id"),
        ("x" * 5000, "is not a run id"),
        ("abcdefghijkm", "There is no run abcdefghijkm"),
    ],
)
def test_friendly_messages_for_bad_run_links(db, link, message):
    at = app_test({"run": link}).run()
    no_exceptions(at)
    assert message in at.warning[0].value


def test_result_page_without_an_id_offers_the_runs(db, bon_run):
    at = open_page("views/result.py")
    at.selectbox(key="result_pick").set_value(bon_run).run()
    assert at.title[0].value == "example run"


# ---- Compare -------------------------------------------------------------------------------------


def test_compare_overlays_runs(db, bon_run, ppo_output):
    result, arrays = example()
    result["config"]["preferences"]["label_noise"] = 0.0  # a second run that differs (label only)
    other = store_finished(result, arrays)
    ppo = store_finished(ppo_output.result, ppo_output.arrays)
    at = app_test({"compare": f"{bon_run},{other},{ppo}"}).run()
    no_exceptions(at)
    fig = figure(at)
    names = {t["name"] for t in fig["data"]}
    assert "example run · mean" in names
    assert any("label_noise=0.0" in n and n.endswith(" · wco") for n in names)
    assert share_links(at)[0].endswith(f"/compare?compare={bon_run},{other},{ppo}")
    at.radio(key="compare_metric").set_value("proxy").run()
    assert figure(at)["data"][0]["y"] != fig["data"][0]["y"]
    differs, numbers = html_tables(at)  # as HTML, as the headline numbers
    assert {"preferences.label_noise", "method"} <= set(differs["setting"])
    noise = differs[differs["setting"] == "preferences.label_noise"].iloc[0]
    assert sorted(noise[1:]) == [0.0, 0.25, 0.25]  # one value per run
    # The numbers in words, as on the Result page.
    assert {"run", "seed", "curve", "peak gold", "peak gain lost by the end (%)"} <= set(numbers)
    wco = numbers[(numbers["run"] == "example run") & (numbers["curve"] == "wco")]
    stored = result["summary"]["wco"]["overoptimization"]
    assert list(wco["peak gain lost by the end (%)"]) == [f"{100 * stored:.0f}%"]


def test_compare_puts_best_of_n_ppo_and_dpo_on_one_kl_axis(db, bon_run, ppo_output, dpo_output):
    ppo = store_finished(ppo_output.result, ppo_output.arrays, name="ppo")
    dpo = store_finished(dpo_output.result, dpo_output.arrays, name="dpo")
    at = app_test({"compare": f"{bon_run},{ppo},{dpo}"}).run()
    no_exceptions(at)
    fig = figure(at)
    (dpo_curve,) = dpo_output.result["curves"]
    dpo_trace = trace(fig, f"dpo · {dpo_curve['label']}")
    assert values(dpo_trace["x"]) == pytest.approx([p["kl"] for p in dpo_curve["points"]])
    symbols = {t["name"].split(" · ")[0]: t["marker"]["symbol"] for t in fig["data"]}
    assert symbols == {"example run": "circle", "ppo": "square", "dpo": "diamond"}
    assert "diamond" in at.caption[0].value  # the legend of the markers
    at.radio(key="compare_metric").set_value("proxy").run()
    no_exceptions(at)  # DPO has no proxy here: its curve is left out, the others drawn
    names = {t["name"] for t in figure(at)["data"]}
    assert f"dpo · {dpo_curve['label']}" not in names and "example run · mean" in names


def test_compare_friendly_messages(db, bon_run):
    at = app_test({"compare": f"{bon_run},nonsense,abcdefghijkm"}).run()
    no_exceptions(at)
    text = " ".join(w.value for w in at.warning)
    assert "“nonsense”" in text and "no run abcdefghijkm" in text
    assert figure(at)["data"]  # the good one is still drawn
    at = app_test({"compare": ""}).run()
    no_exceptions(at)
    assert "Pick finished runs" in at.info[-1].value


def test_fitted_forms_are_shown_and_follow_the_lambda_slider(db, bon_run):
    """The engine's fits (backend.fits) in the Numbers tab and as dotted lines; moving λ
    refits the recomputed UWO curve."""
    from backend.fits import predict

    result, _ = example()
    at = app_test({"run": bon_run}).run()
    no_exceptions(at)
    assert not any(t["name"].endswith(" · fit") for t in figure(at)["data"])  # off by default
    at.checkbox(key=f"r_{bon_run}_fits").check().run()
    fits = html_tables(at)[1]
    cols = ["curve", "form", "α", "α std error", "β", "β std error", "R²", "points"]
    assert list(fits.columns) == cols
    assert len(fits) == len(result["curves"])
    mean = next(c["fit"] for c in result["curves"] if c["objective"] == "mean")
    fit = trace(figure(at), "mean · fit")
    d = np.sqrt(values(fit["x"]))
    assert values(fit["y"]) == pytest.approx(predict("bon", mean["alpha"], mean["beta"], d))
    assert "± " in fit["hovertemplate"] and "R² = " in fit["hovertemplate"]
    move_knob(at, f"r_{bon_run}_chart", "2")
    no_exceptions(at)
    fits = html_tables(at)[1].set_index("curve")
    stored = next(c["fit"] for c in result["curves"] if c["objective"] == "uwo")
    assert "uwo (lambda=2)" in fits.index and "uwo (lambda=0.5)" not in fits.index
    assert fits.loc["uwo (lambda=2)", "α"] != pytest.approx(stored["alpha"], abs=1e-4)
    assert trace(figure(at), "uwo (lambda=2) · fit")
