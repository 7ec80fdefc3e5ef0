"""The reproduction suite (backend/reproduce/, db/reproduce.py, `python -m backend reproduce`,
the Reproduction page): verdicts from measurements, claims.json's schema, a real tiny run through
the CLI into a real SQLite database, and the page's button through a real worker."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from backend.presets import get_preset
from backend.reproduce.claims import ELIMINATED_MAX, OVEROPT_MIN, VERDICTS, evaluate
from backend.reproduce.plan import DPO_BETAS, plan
from db import reproduce as reports
from tests.app_support import charts, no_exceptions, open_page
from tests.jobs_support import WorkerProcess, cli, job_env, wait_for

pytestmark = pytest.mark.timeout(300)
CLAIM_KEYS = {"id", "claim", "paper", "measured", "verdict", "criterion", "figure"}


# ---- plan ---------------------------------------------------------------------------------------


def test_plan_best_of_n_first_then_every_ppo_combination():
    specs = plan(2, "full")
    keys = [s.key for s in specs]
    assert keys[:4] == [
        "bon/noise0.25/seed0",
        "bon/noise0/seed0",
        "bon/noise0.25/seed1",
        "bon/noise0/seed1",
    ]
    ppo = [s for s in specs if s.method == "ppo"]
    # 2 seeds x 2 betas x (5 single members + mean, WCO, UWO)
    assert len(ppo) == 2 * 2 * (5 + 3) and len(set(keys)) == len(keys)
    singles = {s.config.ppo.member for s in ppo if s.objective == "single"}
    assert singles == {0, 1, 2, 3, 4} and "ppo/single3/beta0.01/seed1" in keys
    for s in ppo:
        assert (s.config.ppo.objective, s.config.ppo.kl_coef) == (s.objective, s.beta)
        assert s.config.ppo.member == s.member
        toy_ppo = get_preset("toy-ppo")
        assert s.config.preferences == toy_ppo.preferences and s.config.ppo.steps == 200
    bon = specs[0].config
    assert bon.reward_models.members == 8  # toy-bon, K = 8
    assert bon.preferences == get_preset("toy-bon").preferences
    assert bon.preferences.label_noise == 0.25 and specs[1].config.preferences.label_noise == 0


def test_plan_ends_with_the_dpo_beta_sweep():
    specs = plan(2, "full")
    dpo = [s for s in specs if s.method == "dpo"]
    assert [s.key for s in dpo[:2]] == [f"dpo/beta{DPO_BETAS[0]:g}/seed0",
                                        f"dpo/beta{DPO_BETAS[1]:g}/seed0"]  # fmt: skip
    assert len(dpo) == 2 * len(DPO_BETAS) and specs[-len(dpo) :] == dpo
    for s in dpo:
        assert s.config.method == "dpo" and s.config.dpo.beta == s.beta
        assert s.config.seed == s.seed and s.config.dpo == dataclasses.replace(
            get_preset("toy-dpo").dpo, beta=s.beta
        )
        assert s.config.preferences == get_preset("toy-bon").preferences  # toy-bon's pairs
    quick = [s.config.dpo for s in plan(1, "quick") if s.method == "dpo"]
    assert {(d.epochs, d.eval_samples) for d in quick} == {(3, 64)}


def test_quick_shares_one_ensemble_between_best_of_n_and_ppo():
    specs = plan(1, "quick")
    bon = specs[0].config
    ppo = next(s for s in specs if s.method == "ppo").config
    assert bon.preferences == ppo.preferences == get_preset("toy-bon").preferences
    # member i's cache key ignores K, so PPO's 5 members are the first 5 of best-of-n's 8
    assert dataclasses.replace(bon.reward_models, members=5) == ppo.reward_models
    assert ppo.ppo.steps < 200 and {s.objective for s in specs if s.objective} == {
        "single",
        "wco",
        "uwo",
    }
    with pytest.raises(ValueError):
        plan(1, "huge")
    with pytest.raises(ValueError):
        plan(0, "quick")


# ---- verdicts from numbers ----------------------------------------------------------------------


def stats(peak: float, final: float, proxy_rises: bool = True, x: int = 8) -> dict:
    """curve_stats of a curve that starts at 0."""
    over = (peak - final) / peak if peak > 0 else 0.0
    return {
        "gold_start": 0.0,
        "gold_peak": peak,
        "n_at_peak": x,
        "step_at_peak": x,
        "kl_at_peak": 1.0,
        "gold_final": final,
        "proxy_final": 1.5,
        "proxy_rises": proxy_rises,
        "overoptimization": over,
    }


def analysis(bon: dict, clean: dict, ppo0: dict, ppo1: dict, sizes=None, lambdas=None) -> dict:
    """An analysis (backend.reproduce.analysis.analyze's layout) from per-seed (peak, final)
    pairs."""

    def block(d):
        return {"curves": {}, "per_seed": {k: [stats(*v) for v in vs] for k, vs in d.items()}}

    lams = [0.0, 0.1, 0.5, 1.0, 2.0]
    return {
        "seeds": [0, 1],
        "ensemble": 5,
        "uwo_lambda_bon": 0.5,
        "bon": {"0.25": block(bon), "0": block(clean)},
        "ppo": {"0": block(ppo0), "0.01": block(ppo1)},
        "sizes": {"k": list(range(1, 9)), **(sizes or {})},
        "lambdas": {
            "lambda": lams,
            "final": lambdas or [[0.1, 0.3, 0.32, 0.35, 0.3]] * 2,
            "overoptimization": [[0.0] * 5] * 2,
            "single_final": [-0.5, -0.6],
        },
        "fits": {"bon": [0.95, 0.97, 0.99], "rl": [0.5, 0.7, 0.95]},
    }


PAPER_LIKE = analysis(  # the world of the paper: ensembles fix best-of-n, beta 0.01 fixes PPO
    bon={
        "single_avg": [(0.4, -0.5), (0.4, -0.6)],
        "mean": [(0.4, 0.1), (0.5, 0.2)],
        "wco": [(0.5, 0.48), (0.5, 0.49)],
        "uwo": [(0.5, 0.47), (0.6, 0.6)],
    },
    clean={"single_avg": [(0.6, 0.3), (0.6, 0.2)], "mean": [(0.6, 0.5)] * 2},
    ppo0={"single": [(0.3, -2.0)] * 2, "wco": [(0.4, -1.0)] * 2, "uwo": [(0.4, -1.2)] * 2},
    ppo1={"single": [(0.3, -1.5)] * 2, "wco": [(0.5, 0.5)] * 2, "uwo": [(0.5, 0.48)] * 2},
    sizes={o: [[-0.5, 0.0, 0.2, 0.3, 0.4, 0.41, 0.42, 0.42]] * 2 for o in ("mean", "wco", "uwo")},
)


def by_id(claims: list[dict]) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in claims}


def test_claims_hold_in_a_world_like_the_papers():
    claims = evaluate(PAPER_LIKE)
    assert [c["id"] for c in claims] == ["1", "2", "3", "4", "5a", "5b", "6"]
    for c in claims:
        assert set(c) == CLAIM_KEYS and c["verdict"] in VERDICTS
        assert c["paper"] and c["measured"] and c["criterion"]
    v = by_id(claims)
    assert v == {
        "1": "holds",
        "2": "holds",
        "3": "holds",
        "4": "holds",
        "5a": "holds",
        "5b": "holds",
        "6": "partly",
    }  # fmt: skip  (the RL fits' median R^2 is 0.7)
    assert "0.70" in claims[-1]["measured"]


def test_verdicts_follow_the_measurements_and_thresholds():
    import copy

    a = copy.deepcopy(PAPER_LIKE)
    # Our world's best-of-n: WCO and UWO end above the single RM but still lose > 10% of their
    # peak gain (claim 3 "partly"); below it in one seed: "fails".
    a["bon"]["0.25"]["per_seed"]["wco"] = [stats(0.5, 0.3), stats(0.5, 0.2)]
    assert by_id(evaluate(a))["3"] == "partly"
    a["bon"]["0.25"]["per_seed"]["uwo"] = [stats(0.5, -0.7), stats(0.5, 0.2)]
    assert by_id(evaluate(a))["3"] == "fails"
    # At the threshold: a loss of exactly ELIMINATED_MAX counts as eliminated.
    a = copy.deepcopy(PAPER_LIKE)
    peak = 0.5
    for obj in ("wco", "uwo"):
        a["bon"]["0.25"]["per_seed"][obj] = [stats(peak, peak * (1 - ELIMINATED_MAX))] * 2
    assert by_id(evaluate(a))["3"] == "holds"
    # Single RM that keeps its gain: claim 1 fails; in one seed only: partly.
    a["bon"]["0.25"]["per_seed"]["single_avg"] = [stats(0.4, 0.4 * (1 - OVEROPT_MIN / 2))] * 2
    assert by_id(evaluate(a))["1"] == "fails"
    a["bon"]["0.25"]["per_seed"]["single_avg"][0] = stats(0.4, -0.5)
    assert by_id(evaluate(a))["1"] == "partly"
    # PPO: beta 0.01 does not stop WCO/UWO (our world): claim 4 partly; below single: fails.
    a = copy.deepcopy(PAPER_LIKE)
    a["ppo"]["0.01"]["per_seed"]["wco"] = [stats(0.4, -1.8)] * 2
    assert by_id(evaluate(a))["4"] == "partly"
    a["ppo"]["0"]["per_seed"]["wco"] = [stats(0.4, -2.5)] * 2
    assert by_id(evaluate(a))["4"] == "fails"
    # Members: gains still growing past 5 members; lambda: a wide spread.
    a["sizes"].update({o: [[0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]] * 2 for o in ("wco", "uwo")})
    a["lambdas"]["final"] = [[0.1, 0.3, 0.9, 0.35, -0.3]] * 2
    v = by_id(evaluate(a))
    assert v["5a"] == "fails" and v["5b"] == "partly"


def dpo_block(per_seed: list[tuple]) -> dict:
    """One beta of the DPO sweep from per-seed (peak, final, final KL, epoch at peak, R^2)."""
    rows = []
    for peak, final, kl, epoch, r2 in per_seed:
        rows.append({**stats(peak, final), "kl_final": kl, "epoch_at_peak": epoch, "r2": r2})
    fit = {"form": "rl", "r2": float(np.median([r[4] for r in per_seed]))}
    return {"curves": {"dpo": {"fit": fit}}, "per_seed": {"dpo": rows}}


def with_dpo(small: list[tuple], large: list[tuple]) -> dict:
    import copy

    a = copy.deepcopy(PAPER_LIKE)
    a["dpo"] = {"0.03": dpo_block(small), "1": dpo_block(large)}
    a["fits"]["dpo"] = [r[4] for r in small + large]
    return a


def test_dpo_claims_follow_the_sweep():
    # Rafailov et al.'s picture: the small beta rises and falls before one epoch, far in KL;
    # the large beta stays near the initial policy and keeps its gain.
    a = with_dpo(
        small=[(0.5, -0.5, 8.0, 0.6, 0.95), (0.4, -0.2, 6.0, 0.8, 0.92)],
        large=[(0.3, 0.28, 0.4, 2.5, 0.91), (0.3, 0.3, 0.5, 3.0, 0.93)],
    )
    claims = evaluate(a)
    assert [c["id"] for c in claims][-3:] == ["7a", "7b", "7c"]
    v = by_id(claims)
    assert (v["7a"], v["7b"], v["7c"]) == ("holds", "holds", "holds")
    assert "beta 0.03" in claims[-3]["measured"] and "lower" in claims[-3]["measured"]
    # One seed of the small beta keeps its gain: 7a partly; its peak after one epoch: 7b partly.
    a = with_dpo(
        small=[(0.5, -0.5, 8.0, 1.6, 0.95), (0.4, 0.39, 6.0, 0.8, 0.5)],
        large=[(0.3, 0.28, 0.4, 2.5, 0.5), (0.3, 0.3, 0.5, 3.0, 0.5)],
    )
    for block in a["dpo"].values():  # noisy runs, but seed means that the form fits
        block["curves"]["dpo"]["fit"]["r2"] = 0.95
    v = by_id(evaluate(a))
    assert (v["7a"], v["7b"], v["7c"]) == ("partly", "fails", "partly")
    # The large beta drifts further and loses more: the KL budget part fails; 7a partly.
    a = with_dpo(
        small=[(0.5, -0.5, 3.0, 0.5, 0.5), (0.4, -0.2, 3.0, 0.8, 0.5)],
        large=[(0.5, -1.5, 9.0, 0.5, 0.5), (0.5, -1.4, 9.0, 0.9, 0.5)],
    )
    v = by_id(evaluate(a))
    assert (v["7a"], v["7b"], v["7c"]) == ("partly", "holds", "fails")


def test_claims_json_layout_round_trips():
    claims = evaluate(PAPER_LIKE)
    back = json.loads(json.dumps(claims))
    assert back == claims and isinstance(back, list)
    assert all(isinstance(c[k], str) for c in back for k in ("claim", "paper", "measured"))


# ---- the real thing: a tiny suite through the CLI, into a real database --------------------------


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    """`python -m backend reproduce --size tiny --seeds 1` (about 20-30 s on this CPU)."""
    root = tmp_path_factory.mktemp("repro")
    env = job_env(root / "data")
    out = root / "out"
    t0 = time.perf_counter()
    p = cli("reproduce", "--size", "tiny", "--seeds", "1", "--out", str(out), env=env, timeout=240)
    assert p.returncode == 0, p.stderr
    return {"root": root, "env": env, "out": out, "stderr": p.stderr, "s": time.perf_counter() - t0}


def test_cli_writes_claims_and_reports(tiny_suite):
    out = tiny_suite["out"]
    claims = json.loads((out / "claims.json").read_text())
    assert isinstance(claims, list) and [c["id"] for c in claims] == [
        "1", "2", "3", "4", "5a", "5b", "6", "7a", "7b", "7c"
    ]  # fmt: skip
    for c in claims:
        assert {"claim", "paper", "measured", "verdict"} <= set(c)
        assert c["verdict"] in VERDICTS
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["runs"]) == {s.key for s in plan(1, "tiny")}
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for eid in manifest["runs"].values():
        assert f"http://localhost:8501/?run={eid}" in md
        assert f"href='http://localhost:8501/?run={eid}'" in html
    for c in claims:
        assert c["verdict"] in md and c["claim"] in md
    # Standalone: plotly.js inline once (no <script src=...> to fetch), one plot per figure.
    assert not re.search(r"<script[^>]+src=", html) and html.count("plotly.js v") >= 1
    assert html.count("Plotly.newPlot") == 7 and len(html) > 1_000_000
    assert "OVEROPT_MIN" in md and "OVEROPT_MIN" in html


def test_cli_runs_are_stored_like_any_other_and_reused(tiny_suite, monkeypatch):
    from db import api

    monkeypatch.setenv("GOODHART_DATA_DIR", tiny_suite["env"]["GOODHART_DATA_DIR"])
    monkeypatch.delenv("GOODHART_DB_URL", raising=False)
    runs = json.loads((tiny_suite["out"] / "manifest.json").read_text())["runs"]
    for key, eid in runs.items():
        exp = api.get_experiment(eid)
        assert exp["status"] == "done" and exp["name"] == f"reproduce · {key}"
        assert all(c["fit"]["form"] in ("bon", "rl") for c in exp["result"]["curves"])
        if key.startswith("dpo/"):
            assert exp["result"]["reward_models"] == []  # DPO trains no reward model
        if key.startswith("bon/"):
            assert api.load_arrays(eid)["proxy"].shape[-1] == 3
    again = cli("reproduce", "--size", "tiny", "--seeds", "1", "--out",
                str(tiny_suite["root"] / "again"), env=tiny_suite["env"], timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("reusing") == len(runs) and "running" not in again.stderr
    assert len(api.list_experiments()) == len(runs)  # nothing ran twice
    assert json.loads((tiny_suite["root"] / "again" / "claims.json").read_text()) == json.loads(
        (tiny_suite["out"] / "claims.json").read_text()
    )


def test_cli_runs_the_suite_on_worker_processes(tiny_suite, tmp_path, monkeypatch):
    from db import api

    # A database of its own (so the other tests' "latest report" stays the first suite's) and a
    # copy of the first suite's artifact cache (so the workers only redo the cheap parts).
    data = tmp_path / "data"
    shutil.copytree(Path(tiny_suite["env"]["GOODHART_DATA_DIR"]) / "cache", data / "cache")
    monkeypatch.setenv("GOODHART_DATA_DIR", str(data))
    monkeypatch.delenv("GOODHART_DB_URL", raising=False)
    out = tmp_path / "out"
    p = cli("reproduce", "--size", "tiny", "--seeds", "1", "--out", str(out), "--workers", "2",
            env=job_env(data), timeout=240)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "2 workers" in p.stderr
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert {e["id"] for e in api.list_experiments()} == set(runs.values())
    assert all(api.get_experiment(eid)["status"] == "done" for eid in runs.values())
    verdicts = [c["verdict"] for c in json.loads((out / "claims.json").read_text())]
    first = json.loads((tiny_suite["out"] / "claims.json").read_text())
    assert verdicts == [c["verdict"] for c in first]


def test_cli_bad_input(tmp_path):
    env = job_env(tmp_path / "data")
    p = cli("reproduce", "--seeds", "many", "--out", str(tmp_path / "o"), env=env)
    assert p.returncode == 2 and "--seeds" in p.stderr
    p = cli("reproduce", "--workers", "-1", "--out", str(tmp_path / "o"), env=env)
    assert p.returncode == 2 and "--workers" in p.stderr
    p = cli("reproduce", "--size", "huge", "--out", str(tmp_path / "o"), env=env)
    assert p.returncode == 2 and "--size" in p.stderr


# ---- the Reproduction page ----------------------------------------------------------------------


def test_page_shows_the_latest_report(tiny_suite, monkeypatch):
    monkeypatch.setenv("GOODHART_DATA_DIR", tiny_suite["env"]["GOODHART_DATA_DIR"])
    monkeypatch.delenv("GOODHART_DB_URL", raising=False)
    at = open_page("views/reproduction.py")
    claims = json.loads((tiny_suite["out"] / "claims.json").read_text())
    table = at.dataframe[0].value
    assert list(table["verdict"]) == [c["verdict"] for c in claims]
    assert list(table["measured"]) == [c["measured"] for c in claims]
    assert len(charts(at)) == 7
    runs = json.loads((tiny_suite["out"] / "manifest.json").read_text())["runs"]
    text = "\n".join(m.value for m in at.markdown)
    assert all(f"?run={eid}" in text for eid in runs.values())
    ppo0 = [e for k, e in runs.items() if "/beta0/" in k]
    assert f"?compare={','.join(ppo0)}" in text


def test_page_button_runs_a_new_reproduction_through_a_real_worker(tmp_path, monkeypatch):
    data, url = tmp_path / "data", f"sqlite:///{tmp_path / 'lab.sqlite3'}"
    monkeypatch.setenv("GOODHART_DATA_DIR", str(data))
    monkeypatch.setenv("GOODHART_DB_URL", url)
    monkeypatch.delenv("GOODHART_REDIS_URL", raising=False)
    monkeypatch.setenv("GOODHART_REPRO_SIZES", "tiny,quick")
    from db import api

    at = open_page("views/reproduction.py")
    # A fresh install shows the shipped report, labelled as such with its date and size.
    shipped = reports.shipped_report()
    assert f"Shipped report: full suite, 3 seeds, run on {shipped['date']}" in at.subheader[0].value
    assert list(at.dataframe[0].value["verdict"]) == [c["verdict"] for c in shipped["claims"]]
    at.radio(key="repro_size").set_value("tiny").run()
    at.button(key="repro_start").click().run()
    no_exceptions(at)
    rows = api.list_experiments()
    assert len(rows) == len(plan(1, "tiny")) and {r["status"] for r in rows} == {"queued"}
    assert "0 of 12 experiments done" in at.get("progress")[0].proto.text
    (runs,) = [d.value for d in at.dataframe if "time" in d.value.columns]
    assert all(t.startswith("waiting") for t in runs["time"])  # queued: how long so far
    worker = WorkerProcess(url, job_env(data), tmp_path / "worker.log")
    try:
        wait_for(
            lambda: all(r["status"] == "done" for r in api.list_experiments()),
            240,
            "the suite's runs",
            worker,
        )
    finally:
        assert worker.stop() == 0
    at.run()
    no_exceptions(at)
    claims = at.dataframe[0].value
    assert len(claims) == 10 and set(claims["verdict"]) <= set(VERDICTS)
    manifest = reports.latest_manifest()
    assert manifest["source"] == "app"
    assert json.loads((reports.registry() / manifest["id"] / "claims.json").read_text())
    # Starting again reuses every finished experiment: the report is there at once.
    at.button(key="repro_start").click().run()
    no_exceptions(at)
    assert len(api.list_experiments()) == len(plan(1, "tiny"))
    assert reports.latest_manifest()["id"] != manifest["id"]
    assert len(at.dataframe[0].value) == 10
    np.testing.assert_array_equal(at.dataframe[0].value["verdict"], claims["verdict"])


def test_status_of_runs_names_missing_ones(tiny_suite, monkeypatch):
    from db.reproduce import status

    monkeypatch.setenv("GOODHART_DATA_DIR", tiny_suite["env"]["GOODHART_DATA_DIR"])
    monkeypatch.delenv("GOODHART_DB_URL", raising=False)
    runs = json.loads((tiny_suite["out"] / "manifest.json").read_text())["runs"]
    key, eid = next(iter(runs.items()))
    got = status({key: eid, "gone": "abcdefghijkm"})
    assert got[key]["status"] == "done" and got[key]["progress"] == 1.0
    assert got[key]["started_at"] < got[key]["finished_at"]  # ISO times: the table's durations
    assert got["gone"] == {
        "id": "abcdefghijkm", "status": "missing", "progress": 0.0, "stage": "", "error": None,
        "created_at": None, "started_at": None, "finished_at": None,
    }  # fmt: skip


def test_shipped_report_is_the_documented_claims_file():
    shipped = reports.shipped_report()
    assert shipped["claims"] == json.loads(
        (reports.SHIPPED.parent / "claims-full-3-seeds.json").read_text()
    )
    assert {c["id"] for c in shipped["claims"]} >= {"1", "2", "3", "4", "6"}
    assert set(CLAIM_KEYS) <= set(shipped["claims"][0])


def test_page_cancels_a_running_suite_and_keeps_what_finished(tmp_path, monkeypatch):
    data, url = tmp_path / "data", f"sqlite:///{tmp_path / 'lab.sqlite3'}"
    monkeypatch.setenv("GOODHART_DATA_DIR", str(data))
    monkeypatch.setenv("GOODHART_DB_URL", url)
    monkeypatch.delenv("GOODHART_REDIS_URL", raising=False)
    monkeypatch.setenv("GOODHART_REPRO_SIZES", "tiny,quick")
    from db import api

    at = open_page("views/reproduction.py")
    at.radio(key="repro_size").set_value("tiny").run()
    at.button(key="repro_start").click().run()
    worker = WorkerProcess(url, job_env(data), tmp_path / "worker.log")
    try:
        wait_for(lambda: worker.events("done"), 240, "the suite's first finished run", worker)
        at.run()
        at.button(key="repro_cancel").click().run()
        no_exceptions(at)
        wait_for(
            lambda: not any(r["status"] in ("queued", "running") for r in api.list_experiments()),
            120,
            "the suite's runs to stop",
            worker,
        )
    finally:
        assert worker.stop() == 0
    statuses = [r["status"] for r in api.list_experiments()]
    assert "cancelled" in statuses and "done" in statuses
    assert set(statuses) == {"done", "cancelled"}  # cancelled, not failed
    done = {r["id"] for r in api.list_experiments() if r["status"] == "done"}
    assert all(api.get_experiment(i)["result"] for i in done)  # results kept
    at.run()
    no_exceptions(at)
    assert "This reproduction was cancelled" in at.warning[0].value
    assert f"{len(done)} of {len(plan(1, 'tiny'))} experiments finished" in at.warning[0].value
    assert not [b for b in at.button if b.key == "repro_cancel"]  # nothing left to cancel
