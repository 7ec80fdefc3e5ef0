"""db/ in-process on a real SQLite file and on a real PostgreSQL server (tests/conftest.py):
migrations, settings, storing a real result and reading it back, the guarded state changes a
worker makes, and recovery from dead workers. Tests taking `data` run on both databases."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pytest
from jobs_support import tiny_config
from sqlalchemy import func, inspect, select, text

from backend.config import ConfigError
from db import api, artifacts, jobs, queue
from db.engine import (
    SCHEMA_VERSION,
    alembic_config,
    database_url,
    get_engine,
    make_engine,
    reading,
)
from db.models import ArtifactChunk, Base, CurvePoint, RewardModel
from db.worker import STALE_S, Worker

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def real_output(tmp_path_factory):
    """A real tiny best-of-n run (result and arrays), made once for this module."""
    from backend.cache import ArtifactCache
    from backend.experiment import run_experiment

    cache = ArtifactCache(root=tmp_path_factory.mktemp("cache"))
    return run_experiment(tiny_config(), cache=cache)


@pytest.fixture
def sqlite_data(tmp_path, monkeypatch):
    """A fresh data folder; the database and queue are the default files inside it."""
    folder = tmp_path / "data"
    monkeypatch.setenv("GOODHART_DATA_DIR", str(folder))
    for name in ("GOODHART_DB_URL", "GOODHART_REDIS_URL", "GOODHART_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture(params=["sqlite", "postgresql"])
def data(request, sqlite_data, monkeypatch):
    """A fresh data folder, with the default SQLite file in it or a new PostgreSQL database."""
    if request.param == "postgresql":
        monkeypatch.setenv("GOODHART_DB_URL", request.getfixturevalue("pg_server").create())
    return sqlite_data


def on_sqlite() -> bool:
    return database_url().startswith("sqlite")


def finished(output, name=None) -> str:
    """Submit, claim and finish one experiment the way a worker does; returns its id."""
    eid = api.submit(tiny_config(), name=name)
    assert jobs.claim(eid, "w:1") is not None
    assert jobs.finish(eid, "w:1", output.result, output.arrays)
    return eid


def count(model, eid: str) -> int:
    with reading() as conn:
        q = select(func.count()).select_from(model).where(model.experiment_id == eid)
        return conn.execute(q).scalar_one()


def test_default_database_is_a_file_in_the_data_folder(sqlite_data):
    data = sqlite_data
    assert database_url() == f"sqlite:///{data / 'goodhart.sqlite3'}"
    assert get_engine() is get_engine()  # one engine per process
    assert (data / "goodhart.sqlite3").exists()


def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(sqlite_data):
    with get_engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_migrations_build_exactly_the_models_and_go_both_ways(data):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config(database_url())
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_VERSION
    engine = get_engine()  # migrates the new file
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        assert mc.get_current_revision() == SCHEMA_VERSION
        assert compare_metadata(mc, Base.metadata) == []
    if not on_sqlite():  # arrays stored uncompressed: pglz made storing them 10x slower
        with engine.connect() as conn:
            q = "SELECT attstorage FROM pg_attribute WHERE attrelid = 'artifact_chunks'::regclass"
            assert conn.execute(text(f"{q} AND attname = 'data'")).scalar() == "e"
    command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    command.upgrade(cfg, "head")
    assert set(inspect(engine).get_table_names()) == {*Base.metadata.tables, "alembic_version"}


def test_migrations_render_for_postgresql_too(sqlite_data, capsys):
    from alembic import command

    command.upgrade(alembic_config("postgresql://lab@db.example/lab"), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE experiments" in sql and "TIMESTAMP WITH TIME ZONE" in sql
    assert "CREATE TABLE artifact_chunks" in sql and "BYTEA" in sql
    assert f"version_num='{SCHEMA_VERSION}'" in sql  # the last revision is the newest


def test_a_stored_result_reads_back_as_the_same_result_json(data, real_output):
    eid = finished(real_output, name="tiny")
    exp = api.get_experiment(eid)
    expected = json.loads(json.dumps(real_output.result))  # what RESULT.json would hold
    assert exp["result"] == expected
    assert list(exp["result"]) == list(expected)  # same key order as RESULT.json
    assert exp["status"] == "done" and exp["progress"] == 1.0 and exp["error"] is None
    assert exp["name"] == "tiny"
    assert exp["config"] == expected["config"] and exp["summary"] == expected["summary"]
    assert exp["versions"] == expected["versions"] and exp["timings"] == expected["timings"]
    assert exp["created_at"] <= exp["started_at"] <= exp["finished_at"]
    K = tiny_config().reward_models.members
    assert count(RewardModel, eid) == K
    assert count(CurvePoint, eid) == sum(len(c["points"]) for c in expected["curves"])
    [listed] = api.list_experiments()
    assert listed["id"] == eid and listed["status"] == "done"
    assert listed["summary"] == expected["summary"]


def test_reuse_asks_for_todays_arithmetic(data, real_output):
    """find_done (the reproduction suite's reuse): a finished run of the same config is reused
    only when the numbers it comes from are what today's code gives (backend.ARITHMETIC): runs
    stored before PPO's or the proxies' arithmetic changed run again (PPO, best-of-n, DPO whose
    proxies score); a DPO run without proxies from then is still today's."""
    import copy

    from backend import ARITHMETIC

    def finish_as(cfg, result) -> str:
        eid = api.submit(cfg)
        assert jobs.claim(eid, "w:1") is not None
        assert jobs.finish(eid, "w:1", {**result, "config": cfg.to_dict()}, real_output.arrays)
        return eid

    old = copy.deepcopy(real_output.result)
    del old["versions"]["arithmetic"]  # stored before results said: counts as 1 everywhere
    assert ARITHMETIC["ppo"] > 1 and ARITHMETIC["proxies"] > 1 and ARITHMETIC["dpo"] == 1
    ppo, bon = tiny_config().replace(method="ppo"), tiny_config()
    dpo = tiny_config().replace(method="dpo")
    dpo_scored = dpo.replace(**{"dpo.score_proxies": True})
    for cfg in (ppo, bon, dpo_scored):
        finish_as(cfg, old)
        assert api.find_done(cfg) is None, cfg.method
        new = finish_as(cfg, real_output.result)
        assert api.find_done(cfg) == new
    kept = finish_as(dpo, old)
    assert api.find_done(dpo) == kept


def test_arrays_come_back_exactly_and_recompute_the_stored_curves(data, real_output, monkeypatch):
    from backend.best_of_n import bon_curves
    from backend.objectives import standard_objectives

    monkeypatch.setattr(artifacts, "CHUNK_BYTES", 4096)  # many pieces, put back together
    eid = finished(real_output)
    arrays = api.load_arrays(eid)
    assert set(arrays) == set(real_output.arrays)
    for k, a in real_output.arrays.items():
        assert arrays[k].dtype == a.dtype and np.array_equal(arrays[k], a), k
    cfg = tiny_config()
    objectives = standard_objectives(cfg.reward_models.members, cfg.bon.uwo_lambda)
    curves = bon_curves(arrays["gold"], arrays["proxy"], objectives)
    assert curves == api.get_experiment(eid)["result"]["curves"]
    if on_sqlite():  # one machine: a file under the data folder
        assert (data / "artifacts" / f"{eid}.bon_scores.npz").exists()
    else:  # a server database keeps them itself: no folder to share between machines
        size = len(artifacts.encode(real_output.arrays))
        assert not (data / "artifacts").exists()
        assert count(ArtifactChunk, eid) == -(-size // 4096) > 1


def test_ids_are_short_random_and_checked(data, real_output):
    ids = {api.new_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(api.is_valid_id(i) for i in ids)
    for bad in ("", "abc", "ABCDEFGHJKMN", "abcdefghijk0", "abcdefghijkl", "x" * 13, None, 12):
        assert not api.is_valid_id(bad), bad
        assert api.get_experiment(bad) is None
        assert api.load_arrays(bad) is None
        assert api.cancel(bad) is False and api.delete(bad) is False
    unknown = api.new_id()
    assert api.get_experiment(unknown) is None and api.load_arrays(unknown) is None
    assert api.cancel(unknown) is False and api.delete(unknown) is False


def test_submit_validates_and_stores_nothing_when_bad(data):
    with pytest.raises(ConfigError) as e:
        api.submit(tiny_config().replace(**{"bon.samples": 1}))
    assert e.value.option == "--samples"
    with pytest.raises(ValueError, match="name"):
        api.submit(tiny_config(), name="x" * 201)
    assert api.list_experiments() == []
    eid = api.submit(tiny_config().to_dict(), name="from a dict")
    exp = api.get_experiment(eid)
    assert exp["status"] == "queued" and exp["result"] is None
    assert queue.pending_ids() == {eid}


def test_list_is_newest_first_and_limited(data):
    ids = [api.submit(tiny_config(seed=i)) for i in range(3)]
    assert [e["id"] for e in api.list_experiments()] == ids[::-1]
    assert [e["id"] for e in api.list_experiments(limit=2)] == ids[:0:-1]


def test_only_one_worker_can_claim_a_run(data):
    eid = api.submit(tiny_config())
    assert jobs.claim(eid, "a:1") == tiny_config().to_dict()
    assert jobs.claim(eid, "b:2") is None
    assert jobs.progress(eid, "b:2", 0.5, "not mine") is False
    assert jobs.progress(eid, "a:1", 0.5, "training") is True
    exp = api.get_experiment(eid)
    assert (exp["status"], exp["worker"], exp["progress"], exp["stage"]) == (
        "running",
        "a:1",
        0.5,
        "training",
    )


def test_cancel_queued_at_once_and_running_at_the_next_boundary(data):
    queued = api.submit(tiny_config())
    assert api.cancel(queued) is True
    assert api.get_experiment(queued)["status"] == "cancelled"
    assert jobs.claim(queued, "w:1") is None  # a worker that gets its message skips it
    assert api.cancel(queued) is False

    running = api.submit(tiny_config())
    jobs.claim(running, "w:1")
    assert jobs.stop_reason(running, "w:1") is None
    assert api.cancel(running) is True
    assert api.get_experiment(running)["status"] == "running"  # until the worker stops it
    assert jobs.stop_reason(running, "w:1") == "cancel"
    assert jobs.stopped(running, "w:1", "cancelled before scoring")
    exp = api.get_experiment(running)
    assert exp["status"] == "cancelled" and exp["stage"] == "cancelled before scoring"


def test_delete_removes_rows_and_files(data, real_output):
    eid = finished(real_output)
    path = data / "artifacts" / f"{eid}.bon_scores.npz"
    assert path.exists() if on_sqlite() else count(ArtifactChunk, eid) > 0
    assert count(CurvePoint, eid) > 0
    assert api.delete(eid) is True
    assert api.get_experiment(eid) is None and api.load_arrays(eid) is None
    assert not path.exists()
    assert count(CurvePoint, eid) == 0 and count(RewardModel, eid) == 0  # foreign keys cascade
    assert count(ArtifactChunk, eid) == 0
    assert api.delete(eid) is False


def test_an_exception_fails_the_run_with_its_traceback(data):
    eid = api.submit(tiny_config())
    jobs.claim(eid, "w:1")
    jobs.progress(eid, "w:1", 0.4, "sampling")
    assert jobs.fail(eid, "w:1", "Traceback ...\nRuntimeError: boom")
    exp = api.get_experiment(eid)
    assert exp["status"] == "failed" and "RuntimeError: boom" in exp["error"]
    assert exp["stage"] == "sampling" and exp["result"] is None


def test_a_silent_remote_worker_is_failed_after_the_stale_limit(data, real_output):
    eid = api.submit(tiny_config())
    jobs.claim(eid, "another-machine:42")
    beat = api.get_experiment(eid)["heartbeat_at"]
    me = Worker()
    assert me.recover(now=jobs.now() + timedelta(seconds=STALE_S / 2)) == []
    assert api.get_experiment(eid)["status"] == "running"
    assert me.recover(now=jobs.now() + timedelta(seconds=STALE_S + 1)) == [eid]
    exp = api.get_experiment(eid)
    assert exp["status"] == "failed"
    assert "another-machine:42 stopped while running" in exp["error"] and beat[:19] in exp["error"]
    assert "submit it again" in exp["error"]
    # The lost worker comes back: it cannot store a result over the failure.
    assert jobs.finish(eid, "another-machine:42", real_output.result, real_output.arrays) is False
    assert api.get_experiment(eid)["status"] == "failed"
    assert not (data / "artifacts" / f"{eid}.bon_scores.npz").exists()


def test_a_dead_local_worker_is_failed_at_once_a_live_one_is_not(data):
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(30)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone, living = api.submit(tiny_config()), api.submit(tiny_config(seed=1))
        jobs.claim(gone, f"{host}:{dead.pid}")
        jobs.claim(living, f"{host}:{alive.pid}")
        assert Worker().recover() == [gone]
        assert f"process {dead.pid} on {host} is gone" in api.get_experiment(gone)["error"]
        assert api.get_experiment(living)["status"] == "running"
    finally:
        alive.kill()
        alive.wait(30)


def test_a_queued_run_whose_message_was_lost_is_sent_again(data):
    eid = api.submit(tiny_config())
    queue.get_huey().flush()  # e.g. a Redis restarted without persistence
    assert queue.pending_ids() == set()
    Worker().recover()
    assert queue.pending_ids() == {eid}


def test_any_url_and_plain_paths_work(tmp_path, monkeypatch, real_output):
    monkeypatch.setenv("GOODHART_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GOODHART_DB_URL", str(tmp_path / "elsewhere" / "lab.db"))
    assert database_url() == f"sqlite:///{tmp_path / 'elsewhere' / 'lab.db'}"
    eid = finished(real_output)
    assert (tmp_path / "elsewhere" / "lab.db").exists()
    monkeypatch.setenv("GOODHART_DB_URL", f"sqlite:///{tmp_path / 'elsewhere' / 'lab.db'}")
    assert api.get_experiment(eid)["status"] == "done"
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM experiments")).scalar() == 1


def test_artifact_files_are_written_whole(sqlite_data):
    data = sqlite_data
    arrays = {"gold": np.arange(6.0).reshape(2, 3), "prompts": np.array(["a", "bc"])}
    rel, size = artifacts.save("abcdefghijkm", "bon_scores", arrays)
    assert rel == "artifacts/abcdefghijkm.bon_scores.npz"
    assert size == (data / rel).stat().st_size
    assert [p.name for p in (data / "artifacts").iterdir()] == ["abcdefghijkm.bon_scores.npz"]
    back = artifacts.load(rel)
    assert np.array_equal(back["gold"], arrays["gold"]) and list(back["prompts"]) == ["a", "bc"]


def test_artifacts_go_where_the_setting_says_and_load_from_either_place(data, real_output):
    default = "folder" if on_sqlite() else "database"
    assert artifacts.place(database_url()) == default
    with pytest.MonkeyPatch.context() as mp:
        other = "database" if default == "folder" else "folder"
        mp.setenv("GOODHART_ARTIFACTS", other)
        moved = finished(real_output)
        mp.setenv("GOODHART_ARTIFACTS", "s3")
        with pytest.raises(ValueError, match="GOODHART_ARTIFACTS: 'database' or 'folder'"):
            artifacts.place(database_url())
    usual = finished(real_output)
    in_folder = {eid: (data / f"artifacts/{eid}.bon_scores.npz").exists() for eid in (moved, usual)}
    assert in_folder == {moved: other == "folder", usual: default == "folder"}
    assert (count(ArtifactChunk, moved) > 0) == (other == "database")
    for eid in (moved, usual):
        back = api.load_arrays(eid)
        assert all(np.array_equal(back[k], a) for k, a in real_output.arrays.items())


def test_an_install_from_before_chunks_upgrades_and_its_files_still_load(data, real_output):
    """A database at revision 0001 whose artifact rows point to files (every install before
    0002) comes up to the newest schema on first use, and its results load as before."""
    from alembic import command

    import db.engine

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOODHART_ARTIFACTS", "folder")  # as every install stored them before 0002
        old = finished(real_output, name="old")
    command.downgrade(alembic_config(database_url()), "0001")
    db.engine._engine.cache_clear()  # a new process: the next use migrates
    assert "artifact_chunks" not in inspect(make_engine(database_url())).get_table_names()
    back = api.load_arrays(old)  # migrates to the newest revision first
    assert all(np.array_equal(back[k], a) for k, a in real_output.arrays.items())
    with reading() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            SCHEMA_VERSION
        )
    assert api.get_experiment(old)["result"]["curves"] == real_output.result["curves"]
    new = finished(real_output)  # and new results go to the default place again
    assert (count(ArtifactChunk, new) > 0) == (not on_sqlite())
