"""Compare (AppTest, real SQLite file): runs that differ only by seed as one curve with a band,
a toggle to show them one by one, and the view on screen in the URL and the share box."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.app_support import (
    app_test,
    example,
    figure,
    no_exceptions,
    share_links,
    store_finished,
    trace,
    use_temp_db,
    values,
)


@pytest.fixture
def seeds(tmp_path, monkeypatch):
    """Three runs of one config, seeds 0-2 (the shipped example, gold shifted per seed so the
    seeds differ), and one run with other label noise."""
    use_temp_db(tmp_path, monkeypatch)
    result, arrays = example()
    ids = []
    for seed in range(3):
        r = copy.deepcopy(result)
        r["config"]["seed"] = seed
        for c in r["curves"]:
            for p in c["points"]:
                p["gold"] += 0.1 * seed
        ids.append(store_finished(r, arrays, name="toy"))
    other = copy.deepcopy(result)
    other["config"]["preferences"]["label_noise"] = 0.0
    ids.append(store_finished(other, arrays, name="clean"))
    return ids, result


def mean_gold(result: dict) -> list[float]:
    return [p["gold"] for p in next(c for c in result["curves"] if c["label"] == "mean")["points"]]


def test_seeds_are_one_curve_with_a_band_and_can_be_shown_one_by_one(seeds):
    ids, result = seeds
    at = app_test({"compare": ",".join(ids)}).run()
    no_exceptions(at)
    fig = figure(at)
    names = [t["name"] for t in fig["data"]]
    assert "toy · 3 seeds · mean" in names and "clean · mean" in names
    assert "toy · 3 seeds · mean · band" in names  # the shaded band
    base = np.array(mean_gold(result))
    assert values(trace(fig, "toy · 3 seeds · mean")["y"]) == pytest.approx(base + 0.1)
    band = values(trace(fig, "toy · 3 seeds · mean · band")["y"])
    n = len(base)
    assert band[:n] == pytest.approx(base + 0.2) and band[n:] == pytest.approx((base)[::-1])
    assert at.toggle(key="compare_band").value is True
    at.toggle(key="compare_band").set_value(False).run()
    names = [t["name"] for t in figure(at)["data"]]
    assert not any("seeds" in n for n in names)
    assert sum(n.endswith(" · mean") for n in names) == 4  # every run on its own
    assert at.query_params["show"] == ""  # the toggle is in the link: off


def test_the_view_round_trips_through_the_link(seeds):
    ids, _ = seeds
    at = app_test({"compare": ",".join(ids)}).run()
    at.radio(key="compare_x").set_value("√KL").run()
    at.radio(key="compare_metric").set_value("proxy").run()
    at.multiselect(key="compare_objectives").set_value(["wco", "single"]).run()
    no_exceptions(at)
    query = {k: at.query_params[k] for k in ("compare", "x", "metric", "objectives")}
    assert query == {"compare": ",".join(ids), "x": "sqrt_kl", "metric": "proxy",
                     "objectives": "wco,single"}  # fmt: skip
    link = share_links(at)[0]
    assert link.startswith("http://localhost:8501/compare?compare=") and "metric=proxy" in link
    drawn = figure(at)
    # A fresh session opened with that link shows the same view.
    again = app_test(query).run()
    no_exceptions(again)
    assert again.radio(key="compare_x").value == "√KL"
    assert again.radio(key="compare_metric").value == "proxy"
    assert again.multiselect(key="compare_objectives").value == ["wco", "single"]
    assert [t["name"] for t in figure(again)["data"]] == [t["name"] for t in drawn["data"]]
    assert share_links(again)[0] == link
    bad = app_test({"compare": ",".join(ids), "metric": "loss"}).run()
    assert "metric='loss'" in bad.warning[0].value


# ---- sweeps from one form, opened as one comparison ------------------------------------------


def test_a_ppo_sweep_over_every_objective_from_one_form(tmp_path, monkeypatch):
    from tests.app_support import open_page

    use_temp_db(tmp_path, monkeypatch)
    from db import api

    at = open_page("views/new_experiment.py")
    at.button(key="preset_toy-ppo").click().run()
    at.checkbox(key="f_sweep_objectives").check().run()
    at.text_input(key="f_seeds").set_value("0, 1").run()
    no_exceptions(at)
    assert at.button(key="submit").label == "Submit 8 experiments"
    assert "2 seeds · 4 objectives" in at.info[0].value
    at.button(key="submit").click().run()
    no_exceptions(at)
    rows = api.list_experiments()
    got = sorted((r["config"]["ppo"]["objective"], r["config"]["seed"]) for r in rows)
    assert got == sorted((o, s) for o in ("single", "mean", "wco", "uwo") for s in (0, 1))
    assert set(at.query_params["compare"].split(",")) == {r["id"] for r in rows}
    assert at.title[0].value == "Compare runs"


def test_a_dpo_beta_list_from_one_form(tmp_path, monkeypatch):
    from tests.app_support import open_page

    use_temp_db(tmp_path, monkeypatch)
    from db import api

    at = open_page("views/new_experiment.py")
    at.button(key="preset_toy-dpo").click().run()
    at.text_input(key="f_sweep_betas").set_value("0.03, x").run()
    assert "betas are numbers" in at.error[0].value and at.button(key="submit").disabled
    at.text_input(key="f_sweep_betas").set_value("0.03, 0.3, 1").run()
    no_exceptions(at)
    assert at.button(key="submit").label == "Submit 3 experiments"
    at.button(key="submit").click().run()
    rows = api.list_experiments()
    assert sorted(r["config"]["dpo"]["beta"] for r in rows) == [0.03, 0.3, 1.0]
    assert set(at.query_params["compare"].split(",")) == {r["id"] for r in rows}


def test_compare_says_how_long_its_unfinished_runs_have_waited(seeds):
    from db import api
    from tests.jobs_support import tiny_config

    ids, _ = seeds
    queued = api.submit(tiny_config())
    at = app_test({"compare": f"{ids[0]},{queued}"}).run()
    no_exceptions(at)
    assert "waiting" in at.get("progress")[0].proto.text
    assert figure(at)["data"]  # the finished run is drawn meanwhile
