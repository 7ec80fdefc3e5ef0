"""The job commands as a user types them: submit, worker, list, show, cancel, export, with --db."""

from __future__ import annotations

import csv
import io
import json
import signal

import pytest
from jobs_support import TINY, WorkerProcess, cli, job_env, wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """An experiment submitted with the CLI and run by a worker, plus the RESULT.json that
    `python -m backend run` writes for the same options."""
    root = tmp_path_factory.mktemp("cli")
    env, db = job_env(root / "data"), f"sqlite:///{root / 'lab.sqlite3'}"
    sub = cli("submit", *TINY, "--seed", "5", "--name", "from the cli", "--db", db, env=env)
    assert sub.returncode == 0, sub.stderr
    eid = sub.stdout.strip()
    worker = WorkerProcess(db, env, root / "worker.log")
    try:
        wait_for(lambda: eid in worker.events("done"), 180, f"{eid} done", worker)
    finally:
        assert worker.stop(signal.SIGTERM) == 0
    run = cli("run", *TINY, "--seed", "5", "--out", str(root / "RESULT.json"), env=env)
    assert run.returncode == 0, run.stderr
    return root, env, db, eid, json.loads((root / "RESULT.json").read_text())


def test_submit_prints_a_new_id_that_list_shows(done):
    _, env, db, eid, _ = done
    assert len(eid) == 12 and eid.isalnum()
    out = cli("list", "--db", db, env=env)
    assert out.returncode == 0
    [row] = [line for line in out.stdout.splitlines() if line.startswith(eid)]
    assert "done" in row and "100%" in row and "from the cli" in row
    rows = json.loads(cli("list", "--json", "--db", db, env=env).stdout)
    assert [(r["id"], r["status"], r["name"]) for r in rows] == [(eid, "done", "from the cli")]


def test_show_json_is_result_json_plus_id_and_status(done):
    _, env, db, eid, result_json = done
    out = cli("show", eid, "--json", "--db", db, env=env)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown.pop("id"), shown.pop("status")) == (eid, "done")
    assert list(shown) == list(result_json)
    # Timings, cache hits and the start's estimate (what the cache held then) differ between two
    # runs of one config; everything else is equal.
    assert set(shown.pop("timings")) == set(result_json.pop("timings"))
    assert set(shown.pop("estimate")) == set(result_json.pop("estimate"))
    assert isinstance(shown.pop("cache_hits"), list) and result_json.pop("cache_hits")
    assert shown == result_json


def test_show_prints_status_and_summary(done):
    _, env, db, eid, result_json = done
    out = cli("show", eid, "--db", db, env=env)
    assert out.returncode == 0
    assert eid in out.stdout and "from the cli" in out.stdout and "done" in out.stdout
    for label in result_json["summary"]:
        assert label in out.stdout


def test_export_json_and_csv(done):
    root, env, db, eid, _ = done
    as_json = cli("export", eid, "--format", "json", "--db", db, env=env)
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == json.loads(
        cli("show", eid, "--json", "--db", db, env=env).stdout
    )
    target = root / "curves.csv"
    as_csv = cli("export", eid, "--format", "csv", "--out", str(target), "--db", db, env=env)
    assert as_csv.returncode == 0 and as_csv.stdout == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    shown = json.loads(as_json.stdout)
    points = [(c, p) for c in shown["curves"] for p in c["points"]]
    assert len(rows) == len(points)
    for row, (c, p) in zip(rows, points, strict=True):
        assert row["label"] == c["label"] and int(row["n"]) == p["n"]
        assert float(row["gold"]) == p["gold"] and float(row["proxy"]) == p["proxy"]


def test_cancel_a_queued_experiment_and_a_finished_one(tmp_path, done):
    _, env, db, eid, _ = done
    path = str(tmp_path / "queue-only.db")  # --db also takes a plain file path
    env = job_env(tmp_path / "data")
    queued = cli("submit", *TINY, "--db", path, env=env).stdout.strip()
    out = cli("cancel", queued, "--db", path, env=env)
    assert out.returncode == 0 and out.stdout.strip() == f"{queued} cancelled"
    assert json.loads(cli("show", queued, "--json", "--db", path, env=env).stdout)["status"] == (
        "cancelled"
    )
    again = cli("cancel", queued, "--db", path, env=env)
    assert again.returncode == 1 and "already cancelled: nothing to cancel" in again.stderr
    finished = cli("cancel", eid, "--db", db, env=done[1])
    assert finished.returncode == 1 and "already done" in finished.stderr


@pytest.mark.parametrize("command", [["show"], ["show", "--json"], ["cancel"], ["export"]])
def test_malformed_and_unknown_ids_exit_2_with_a_message(done, command):
    _, env, db, _, _ = done
    bad = cli(command[0], "no-such-id", *command[1:], "--db", db, env=env)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "'no-such-id' is not an experiment id" in bad.stderr
    unknown = cli(command[0], "abcdefghijkm", *command[1:], "--db", db, env=env)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "no experiment abcdefghijkm in sqlite:///" in unknown.stderr


def test_a_bad_option_exits_2_and_stores_nothing(tmp_path):
    env, db = job_env(tmp_path / "data"), f"sqlite:///{tmp_path / 'lab.db'}"
    out = cli("submit", *TINY, "--samples", "1", "--db", db, env=env)
    assert out.returncode == 2 and "--samples" in out.stderr and out.stdout == ""
    assert json.loads(cli("list", "--json", "--db", db, env=env).stdout) == []
    bad_db = cli("list", "--db", "nonsense://", env=env)
    assert bad_db.returncode == 2 and "error: --db:" in bad_db.stderr


def test_export_of_an_unfinished_experiment_says_so(tmp_path):
    env, db = job_env(tmp_path / "data"), f"sqlite:///{tmp_path / 'lab.db'}"
    eid = cli("submit", *TINY, "--db", db, env=env).stdout.strip()
    out = cli("export", eid, "--format", "csv", "--db", db, env=env)
    assert out.returncode == 1 and f"{eid} is queued: it has no results" in out.stderr


def test_show_of_a_queued_cuda_run_says_it_waits_for_a_gpu_worker(tmp_path):
    env, db = job_env(tmp_path / "data"), f"sqlite:///{tmp_path / 'lab.db'}"
    eid = cli("submit", *TINY, "--device", "cuda", "--db", db, env=env).stdout.strip()
    listed = cli("list", "--db", db, env=env).stdout
    assert "waits for a GPU worker (device cuda)" in listed
    out = cli("show", eid, "--db", db, env=env)
    assert out.returncode == 0 and "status    queued" in out.stdout
    assert "waiting   It asks for device cuda and waits for a worker with a GPU: none" in out.stdout
    assert "python -m backend worker --device cuda" in out.stdout


def test_a_worker_with_bad_settings_exits_2_before_it_starts(tmp_path):
    env, db = job_env(tmp_path / "data"), f"sqlite:///{tmp_path / 'lab.db'}"
    bad = cli("worker", "--db", db, env={**env, "GOODHART_ARTIFACTS": "s3"}, timeout=60)
    assert bad.returncode == 2 and "GOODHART_ARTIFACTS" in bad.stderr
    assert "'database' or 'folder', got 's3'" in bad.stderr
    device = cli("worker", "--device", "tpu", "--db", db, env=env, timeout=60)
    assert device.returncode == 2 and "--device" in device.stderr and "'cuda'" in device.stderr
