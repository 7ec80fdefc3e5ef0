"""The app's pure helpers: tables, the answer explorer, the form's config, the HTML report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app import answers, charts, describe, tables
from backend.config import ConfigError
from backend.export import curves_csv
from backend.worlds.base import decode_tokens
from tests.app_support import example

VOCAB = np.array(["[PAD]", "[EOS]", "[UNK]", "apple", "pear", "um"])


def test_decode_stops_at_eos_and_pad():
    assert decode_tokens(np.array([3, 4, 1, 5, 0])[None], VOCAB)[0] == "apple pear"
    assert decode_tokens(np.array([5, 0, 3])[None], VOCAB)[0] == "um"
    bpe = np.array(["Ġhello", "Ġworld", "<|endoftext|>"])
    assert decode_tokens(np.array([0, 1, 2, 0])[None], bpe)[0] == "hello world"


def tiny_arrays() -> dict:
    """One prompt, four answers (two equal), two members: hand-checkable."""
    answers = np.array([[[3, 1, 0], [4, 1, 0], [3, 4, 1], [4, 1, 0]]])  # (P=1, N=4, T=3)
    proxy = np.array([[[1.0, 3.0], [2.0, 2.0], [0.0, 0.0], [2.0, 2.0]]])  # (1, 4, K=2)
    gold = np.array([[0.5, -1.0, 2.0, -1.0]])
    return {"answers": answers, "proxy": proxy, "gold": gold, "vocab": VOCAB}


def test_explore_prompt_ranks_distinct_answers_by_the_objective():
    a = tiny_arrays()
    mean = answers.explore_prompt(a, 0, "mean", 0.5, [0, 1], n=4)
    # mean: apple 2.0, pear 2.0 (twice), "apple pear" 0.0; ties keep the first drawn
    assert list(mean["answer"]) == ["apple", "pear", "apple pear"]
    assert list(mean["copies"]) == [1, 2, 1]
    assert mean["spread"][0] == pytest.approx(1.0)  # population std of (1, 3)
    wco = answers.explore_prompt(a, 0, "wco", 0.5, [0, 1], n=4)
    assert wco["answer"][0] == "pear" and wco["gold"][0] == -1.0
    uwo = answers.explore_prompt(a, 0, "uwo", 1.0, [0, 1], n=4)
    assert uwo["objective"][0] == pytest.approx(2.0)  # pear: 2 - 1 * 0; apple: 2 - 1 * 1
    single = answers.explore_prompt(a, 0, "single #1", 0.5, [0, 1], n=4)
    assert single["answer"][0] == "apple"


def test_picks_by_objective_match_the_explorer_for_the_same_draw():
    _, arrays = example()
    arrays = tables.as_float(arrays)
    names = ["mean", "wco", "uwo", "single #0"]
    picks = answers.picks_by_objective(arrays, 1, names, 0.5, [0, 1, 2, 3, 4], n=64, seed=3)
    for name, answer in zip(picks["objective"], picks["picked answer"], strict=True):
        top = answers.explore_prompt(arrays, 1, name, 0.5, [0, 1, 2, 3, 4], n=64, seed=3)
        assert top["answer"][0] == answer


def test_curves_csv_and_json_round_trip():
    result, _ = example()
    csv = curves_csv(result["curves"])
    header = csv.splitlines()[0].split(",")
    assert {"label", "objective", "n", "kl", "sqrt_kl", "gold", "proxy"} <= set(header)
    assert len(csv.splitlines()) == 1 + sum(len(c["points"]) for c in result["curves"])
    assert json.loads(tables.result_json(result)) == json.loads(json.dumps(result))
    changed = json.loads(tables.result_json(result, result["curves"][:1]))
    assert len(changed["curves"]) == 1 and "recomputed" in changed["note"]


def test_config_differences_ignore_the_unused_method_stage():
    from backend.config import ExperimentConfig

    a = ExperimentConfig().to_dict()
    b = ExperimentConfig().replace(**{"preferences.label_noise": 0.0, "ppo.steps": 7}).to_dict()
    assert describe.config_differences([a, b]) == ["preferences.label_noise"]
    assert describe.run_label({"id": "x", "config": b}, ["preferences.label_noise"]) == (
        "label_noise=0.0"
    )


def test_report_html_is_standalone():
    result, _ = example()
    page = charts.report_html("Example <report>", result, result["curves"])
    assert page.startswith("<!doctype html>") and "Example &lt;report&gt;" in page
    assert page.count("Plotly.newPlot") == 3 and 'src="https://cdn.plot.ly' not in page
    assert "population" in page  # the conventions


def test_fit_line_forms():
    d = np.array([0.0, 1.0, 2.0])
    assert charts.fit_line({"form": "bon", "alpha": 2.0, "beta": 0.5}, d) == pytest.approx(
        [0.0, 1.5, 2.0]
    )
    rl = charts.fit_line({"form": "rl", "alpha": 1.0, "beta": 1.0}, d)
    assert rl[1:] == pytest.approx([1.0, 2 * (1 - np.log(2))])
    assert charts.fit_line({"form": "unknown", "alpha": 1, "beta": 1}, d) is None


def test_form_builds_one_validated_config_per_seed():
    from app import form

    values = {f.dotted: f.default for f in form.config_fields()}
    values["preferences.label_noise"] = 0.1
    cfgs = form.build(values, "2, 0-1, 2")
    assert [c.seed for c in cfgs] == [2, 0, 1]
    assert all(c.preferences.label_noise == 0.1 for c in cfgs)
    values["preferences.label_noise"] = 0.9
    with pytest.raises(ConfigError) as e:
        form.build(values, "0")
    assert e.value.option == "--label-noise"
    for bad in ("", "a", "0-100"):
        with pytest.raises(ConfigError, match="seed"):
            form.parse_seeds(bad)


def test_form_fields_cover_every_cli_option():
    from app import form
    from backend.cli import OVERRIDES

    options = {f.option for f in form.config_fields()}
    assert set(OVERRIDES) <= options


def test_curve_cache_computes_neighbouring_lambdas_ahead():
    import time

    from app.store import CurveCache
    from backend.best_of_n import bon_curves
    from backend.objectives import Objective

    _, arrays = example()
    arrays = tables.as_float(arrays)
    cache = CurveCache(size=3)
    members = (0, 1, 2, 3, 4)
    keys = [("run", "uwo", lam, members) for lam in (0.55, 0.45)]
    cache.ahead(keys, arrays)
    deadline = time.monotonic() + 60
    while any(k not in cache._curves for k in keys) and time.monotonic() < deadline:
        time.sleep(0.05)
    (want,) = bon_curves(arrays["gold"], arrays["proxy"], [Objective("uwo", lam=0.55)])
    assert cache.get(keys[0], arrays) == want
    for lam in (1.0, 2.0):
        cache.get(("run", "uwo", lam, members), arrays)
    assert len(cache._curves) == 3  # least recently used dropped


def test_html_table_shows_what_a_reader_needs():
    import pandas as pd

    from app.tables import html_table

    df = pd.DataFrame(
        {"gold": [-1e-15, 0.8773, float("nan")], "n": [128, 4096, 2], "lost (%)": [16.54, -0.2, 7]},
        index=pd.Index(["wco", "<b>uwo</b>", "mean"], name="curve"),
    )
    out = html_table(df, decimals=3, percent=("lost (%)",))
    assert '<th class="text">curve</th>' in out  # the named index is the first column
    assert "<th>&lt;b&gt;uwo&lt;/b&gt;</th>" in out  # escaped
    assert "<td>0.000</td>" in out and "-0.000" not in out  # no negative zero
    assert "<td>0.877</td>" in out and "<td>4,096</td>" in out and "<td>–</td>" in out
    assert "<td>17%</td>" in out and "<td>0%</td>" in out and "-0%" not in out


def test_a_malformed_summary_is_an_error_not_a_row_of_blanks():
    with pytest.raises(ValueError, match="malformed summary: curve 'mean'"):
        tables.summary_frame({"mean": 5})
