"""The Learn page's sentences (app/lessons.py) say what the shipped results' numbers say: each
number in a sentence is the stored one, and words like "holds its peak" appear only when the
curve does."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app import examples, lessons
from app.answers import draw
from backend.summary import curve_stats


@pytest.fixture(scope="module")
def noisy():
    return examples.load("toy-bon")


def numbers(text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"[-+]?\d[\d,]*\.?\d*", text)]


def test_fate_states_the_curves_own_numbers(noisy):
    for c in [*noisy.singles(), noisy.curve("mean"), noisy.curve("wco"), noisy.curve("uwo")]:
        s = curve_stats(c["points"], "n")
        text = lessons.fate(c)
        assert f"{s['gold_peak']:+.2f} at n = {s['n_at_peak']:,}" in text
        assert f"{s['gold_final']:+.2f} at n = 4,096" in text
        if s["overoptimization"] <= lessons.HOLDS:
            assert text.startswith("holds its peak")
        else:
            assert text.startswith(f"loses {100 * s['overoptimization']:.0f}% ")


def test_fate_of_made_up_curves():
    def curve(gold):
        pts = [{"n": 2**i, "kl": float(i), "gold": g, "proxy": g} for i, g in enumerate(gold)]
        return {"points": pts}

    assert lessons.fate(curve([0.0, 1.0, 0.98])).startswith("holds its peak")
    assert lessons.fate(curve([0.0, 1.0, 0.5])).startswith("loses 50% ")
    assert lessons.fate(curve([0.0, 1.0, -1.0])).startswith("loses 200% ")
    assert lessons.fate(curve([0.0, -0.5, -1.0])).startswith("never rises")


def test_one_proxy_sentence_reads_the_curve_at_n(noisy):
    curve = noisy.curve("single", member=0)
    s = curve_stats(curve["points"], "n")
    for p in curve["points"]:
        text = lessons.one_proxy_sentence(curve, p["n"])
        assert f"{p['proxy']:+.2f} on the proxy and {p['gold']:+.2f} on gold" in text
        if p["n"] < s["n_at_peak"]:
            assert "still rising" in text
        if p["n"] > s["n_at_peak"]:
            lost = (s["gold_peak"] - p["gold"]) / (s["gold_peak"] - s["gold_start"])
            assert f"lost {100 * lost:.0f}% of that gain" in text


def test_picks_are_what_best_of_n_on_the_member_returns(noisy):
    arrays = noisy.arrays
    n = 64
    table = lessons.picks(arrays, noisy.result, 0, n)
    idx = draw(arrays["gold"].shape[1], n, 0)
    for p in range(len(table)):
        a = idx[np.argmax(arrays["proxy"][p, idx, 0])]
        assert table["gold (std)"][p] == pytest.approx(arrays["gold"][p, a])
    norm = noisy.result["normalization"]["gold"]
    points = table["gold (std)"] * norm["std"] + norm["mean"]
    assert np.allclose(table["gold (points)"], points)
    facts = lessons.describe_picks(table)
    assert facts["below_zero"] == int((table["gold (std)"] < 0).sum())
    assert facts["words"] == pytest.approx(table["words"].mean())
    text = lessons.picks_sentence(facts, lessons.describe_picks(lessons.picks(
        arrays, noisy.result, 0, 1)), n, "single #0")  # fmt: skip
    assert f"{facts['below_zero']} of {len(table)} score below" in text
    assert f"have {facts['words']:.1f} words" in text


def test_off_topic_items_of_the_toy_world():
    from backend.worlds.lists_words import off_topic_items

    assert off_topic_items("list 2 fruits :", "apple rake") == 1
    assert off_topic_items("list 2 fruits :", "apple pear") == 0
    assert off_topic_items("say hello", "apple") is None


def test_errors_sentences_read_the_diagnostics():
    shared, other = examples.load("toy-bon-shared"), examples.load("toy-bon-pretrain")
    fs, fo = lessons.errors_facts(shared), lessons.errors_facts(other)
    assert fs["corr"] == shared.result["ensemble"]["error_corr"]
    last = shared.curve("wco")["points"][-1]
    assert fs["share"] == last["shared_share"] and fs["n"] == 4096
    text = lessons.errors_world_sentence(fs)
    assert f"correlate at {fs['corr']:.2f}" in text and f"{100 * fs['share']:.0f}% of" in text
    both = lessons.errors_compare_sentence(fs, fo)
    if fs["share"] > fo["share"] and fs["final"] < fo["final"]:
        assert "ends lower" in both
    else:
        assert "ends lower (" not in both


def test_noise_and_methods_sentences(noisy):
    clean = examples.load("toy-bon-clean")
    text = lessons.noise_sentence(noisy, clean)
    for ex in (noisy, clean):
        wco = curve_stats(ex.curve("wco")["points"], "n")
        assert f"{100 * wco['overoptimization']:.0f}%" in text
        assert f"{wco['gold_final']:+.2f}" in text
    ppo = examples.load("toy-ppo").result["curves"][0]
    s = curve_stats(ppo["points"], "step")
    text = lessons.methods_sentence([("PPO", ppo)])
    assert f"peaks at {s['gold_peak']:+.2f} (KL {s['kl_at_peak']:.1f} nats)" in text


def test_the_chart_title_states_each_curves_loss(noisy):
    from app.describe import takeaway

    curves = [lessons.singles_group(noisy), noisy.curve("mean"), noisy.curve("wco")]
    title = takeaway(curves, "UWO at λ = 0.5: ")
    assert title.startswith(
        "UWO at λ = 0.5: share of the gain up to the peak (★) lost by n = 4,096"
    )
    for name, c in (("single members", curves[0]), ("mean", curves[1]), ("WCO", curves[2])):
        lost = curve_stats(c["points"], "n")["overoptimization"]
        assert f"{name} {100 * lost:.0f}%" in title
    odd = {**noisy.curve("mean"), "objective": "method", "label": "<b>x</b>"}
    assert "&lt;b&gt;x&lt;/b&gt;" in takeaway([odd])  # names are text, not plotly HTML
