"""Two machines played on this one. The app's side (this process, through AppTest) and two CPU
workers (their own processes) each have their own data folder; all they share is a PostgreSQL
server and a redis-server on loopback (GOODHART_DB_URL, GOODHART_REDIS_URL), as in the deployment
recipe of docs/deploy.md. A run submitted with the app's form is computed on the workers' side,
and its result page (curves, lambda slider, answers) opens on the app's side, whose data folder
never gets a file of it. A run that asks for cuda waits for a GPU worker, and the page says so."""

from __future__ import annotations

import signal
import socket

import pytest
import torch
from jobs_support import WorkerProcess, job_env, wait_for, wait_status

from tests.app_support import app_test, figure, move_knob, no_exceptions, open_page, trace

pytestmark = pytest.mark.timeout(300)
# A small run through the form: a few seconds on one CPU core.
FORM = {
    "f_preferences.pairs": 200,
    "f_preferences.eval_pairs": 50,
    "f_reward_models.members": 2,
    "f_bon.num_prompts": 4,
    "f_bon.samples": 64,
}


@pytest.fixture
def machines(tmp_path, monkeypatch, pg_server, redis_url):
    """Side A (the app: this process) and sides B and C (one CPU worker each), sharing only the
    database and the queue."""
    db_url = pg_server.create()
    sides = {name: tmp_path / f"machine-{name}" for name in "abc"}
    monkeypatch.setenv("GOODHART_DATA_DIR", str(sides["a"]))
    monkeypatch.setenv("GOODHART_DB_URL", db_url)
    monkeypatch.setenv("GOODHART_REDIS_URL", redis_url)
    monkeypatch.delenv("GOODHART_ARTIFACTS", raising=False)
    workers = {}
    for name in "bc":
        env = {**job_env(sides[name], redis_url), "GOODHART_DB_URL": db_url}
        log = tmp_path / f"worker-{name}.log"
        workers[name] = WorkerProcess(db_url, env, log, "--device", "cpu")
    try:
        for w in workers.values():
            w.wait_ready()
        yield sides, workers
    finally:
        for w in workers.values():
            w.stop(signal.SIGTERM)


def submit_with_the_form(name: str = "from the app", **changes) -> str:
    """Fill the New experiment form on the app's side, submit; the new run's id."""
    at = open_page("views/new_experiment.py")
    for key, value in {**FORM, **changes}.items():
        widget = at.selectbox(key=key) if key == "f_device" else at.number_input(key=key)
        widget.set_value(value).run()
    at.text_input(key="f_name").set_value(name).run()
    at.button(key="submit").click().run()
    no_exceptions(at)
    return at.query_params["run"]


def test_a_run_submitted_on_the_app_side_is_computed_on_a_worker_and_shown_on_the_app_side(
    machines,
):
    from db import api

    sides, workers = machines
    eid = submit_with_the_form()
    exp = wait_status(eid, ("done", "failed"), timeout=180, worker=workers["b"])
    assert exp["status"] == "done", exp["error"]
    host_pid = exp["worker"]
    ran = next(w for w in workers.values() if host_pid == f"{socket.gethostname()}:{w.pid}")
    assert eid in ran.events("done")

    # The result page on the app's side: curves, lambda slider, answers.
    at = app_test({"run": eid}).run()
    no_exceptions(at)
    assert at.title[0].value == "from the app"
    names = {t["name"] for t in figure(at)["data"]}
    assert {"single members (average)", "mean", "wco", "uwo (lambda=0.5)"} <= names
    before = trace(figure(at), "uwo (lambda=0.5)")["y"]
    move_knob(at, f"r_{eid}_chart", "3")  # recomputed from the stored matrix
    no_exceptions(at)
    assert trace(figure(at), "uwo (lambda=3)")["y"] != before
    at.session_state[f"r_{eid}_tab"] = "Answers"
    at.run()
    no_exceptions(at)
    answers = at.dataframe[0].value
    assert len(answers) > 0 and {"answer", "gold", "r0", "r1"} <= set(answers.columns)
    assert api.load_arrays(eid)["proxy"].shape == (4, 64, 2)

    # Not a file in the app's data folder: the score matrix came from the database. No SQLite
    # file anywhere: the database and the queue are the servers.
    assert not [p for p in sides["a"].rglob("*") if p.is_file()]
    for side in sides.values():
        assert not list(side.glob("*.sqlite3")), side
    worker_side = sides["b"] if ran is workers["b"] else sides["c"]
    assert (worker_side / "cache").is_dir()  # the stages it computed, kept on its own side
    assert not (worker_side / "artifacts").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_run_submitted_where_only_cpu_workers_run_waits_and_says_so(machines):
    from db import api, fleet

    _, workers = machines
    eid = submit_with_the_form(f_device="cuda", name="on the GPU")
    at = app_test({"run": eid}).run()
    no_exceptions(at)
    assert "waits for a GPU worker (device cuda)" in at.get("progress")[0].proto.text
    (said,) = [m.value for m in at.markdown if m.value.startswith("**Waiting.**")]
    assert "waits for a worker with a GPU: none is running (2 CPU workers are up" in said
    assert "python -m backend worker --device cuda" in said
    # Both CPU workers stay idle and leave it queued, however long it waits.
    other = submit_with_the_form(name="on a CPU")
    assert wait_status(other, ("done", "failed"), timeout=180)["status"] == "done"
    wait_for(lambda: len(fleet.live()) == 2, 30, "both workers in the workers table")
    exp = api.get_experiment(eid)
    assert exp["status"] == "queued" and exp["error"] is None and exp["started_at"] is None
    assert all(eid not in w.events("start") for w in workers.values())
    at.run()
    no_exceptions(at)
    assert any("waits for a worker with a GPU" in m.value for m in at.markdown)
