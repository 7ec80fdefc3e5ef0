"""Real worker subprocesses (`python -m backend worker --db URL`) on a real SQLite file and a real
PostgreSQL server (and, for several machines, a real redis-server): run, read while writing,
cancel, fail, SIGTERM, kill -9, two workers on one queue, cuda runs waiting for a GPU worker."""

from __future__ import annotations

import signal
import socket
import time
from types import SimpleNamespace

import pytest
import torch
from jobs_support import WorkerProcess, job_env, tiny_config, wait_for, wait_status

from db import api, fleet, queue

pytestmark = pytest.mark.timeout(300)
K = tiny_config().reward_models.members


def lab_setup(root, mp, redis_url: str | None = None, url: str | None = None) -> SimpleNamespace:
    """A data folder and database (SQLite under root, or `url`), used by this process and by its
    workers."""
    data, url = root / "data", url or f"sqlite:///{root / 'lab.sqlite3'}"
    mp.setenv("GOODHART_DATA_DIR", str(data))
    mp.setenv("GOODHART_DB_URL", url)
    if redis_url:
        mp.setenv("GOODHART_REDIS_URL", redis_url)
    else:
        mp.delenv("GOODHART_REDIS_URL", raising=False)
    lab = SimpleNamespace(root=root, data=data, url=url, env=job_env(data, redis_url), workers=[])

    def start(name: str, *args: str) -> WorkerProcess:
        w = WorkerProcess(url, lab.env, root / f"{name}.log", *args)
        lab.workers.append(w)
        return w

    lab.start = start
    return lab


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lab(request, tmp_path_factory):
    """One worker serving the tests that need an idle worker (they run one after another), on
    SQLite and on PostgreSQL."""
    pg = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    with pytest.MonkeyPatch.context() as mp:
        lab = lab_setup(tmp_path_factory.mktemp("lab"), mp, url=pg.create() if pg else None)
        lab.worker = lab.start("worker")
        lab.worker.wait_ready()
        yield lab
        assert lab.worker.stop() == 0


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A lab of its own, for tests that start and kill their own workers."""
    lab = lab_setup(tmp_path, monkeypatch)
    yield lab
    for w in lab.workers:
        w.stop(signal.SIGKILL)


def test_submit_run_and_read_back(lab):
    cfg = tiny_config(seed=10)
    eid = api.submit(cfg, name="end to end")
    exp = wait_status(eid, ("done", "failed"), worker=lab.worker)
    assert exp["status"] == "done", exp["error"]
    assert exp["name"] == "end to end" and exp["progress"] == 1.0
    assert exp["worker"].endswith(f":{lab.worker.pid}")
    result = exp["result"]
    assert result["config"] == cfg.to_dict()
    assert len(result["curves"]) == K + 3 and len(result["reward_models"]) == K
    assert {"single_avg", "mean", "wco"} <= set(result["summary"])
    arrays = api.load_arrays(eid)
    assert arrays["gold"].shape == (4, 64) and arrays["proxy"].shape == (4, 64, K)
    assert lab.worker.events("start").count(eid) == 1 and lab.worker.events("done") == [eid]


def test_readers_keep_working_while_a_worker_writes(lab):
    eid = api.submit(tiny_config(seed=11))
    seen, progress, slowest, reads = set(), [], 0.0, 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        listed = api.list_experiments()
        exp = api.get_experiment(eid)
        slowest = max(slowest, time.perf_counter() - t0)
        reads += 1
        assert listed[0]["id"] == eid
        seen.add(exp["status"])
        progress.append(exp["progress"])
        if exp["status"] == "done":  # a reader sees all of the result or none of it
            assert len(exp["result"]["curves"]) == K + 3
            assert api.load_arrays(eid)["proxy"].shape == (4, 64, K)
            break
        assert exp["result"] is None
    assert "done" in seen and "running" in seen, seen
    assert progress == sorted(progress) and len(set(progress)) > 3
    assert reads > 20 and slowest < 2.0, (reads, slowest)


def test_cancel_a_running_and_a_queued_experiment(lab):
    running = api.submit(tiny_config(seed=12))
    wait_status(running, ("running",), worker=lab.worker)
    waiting = api.submit(tiny_config(seed=13))  # queued behind the running one
    assert api.cancel(waiting) is True
    assert api.get_experiment(waiting)["status"] == "cancelled"
    assert api.cancel(running) is True
    exp = wait_status(running, ("cancelled", "done", "failed"), worker=lab.worker)
    assert exp["status"] == "cancelled", exp
    assert exp["stage"].startswith("cancelled before") and exp["result"] is None
    assert api.load_arrays(running) is None
    wait_for(lambda: waiting in lab.worker.events("skip"), 30, "the cancelled message skipped")
    assert waiting not in lab.worker.events("start")
    assert api.get_experiment(waiting)["status"] == "cancelled"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_run_waits_for_a_gpu_worker_instead_of_failing_on_a_cpu_one(lab):
    gpu_run = api.submit(tiny_config().replace(device="cuda"), name="needs a GPU")
    queue.enqueue(gpu_run, "cpu")  # a message in the CPU lane too, as sent before lanes
    after = api.submit(tiny_config(seed=14))  # queued behind it: the CPU worker goes past it
    assert wait_status(after, ("done", "failed"), worker=lab.worker)["status"] == "done"
    wait_for(lambda: gpu_run in lab.worker.events("pass"), 30, "the cuda message passed on")
    exp = api.get_experiment(gpu_run)
    assert exp["status"] == "queued" and exp["error"] is None
    assert exp["stage"] == "waits for a GPU worker (device cuda)"
    assert gpu_run not in lab.worker.events("start")
    assert gpu_run in {t.args[0] for t in queue.get_huey("cuda").pending()}
    assert [(w.id, w.lanes) for w in fleet.live()] == [(exp_worker(lab), ("cpu",))]
    waiting = api.waiting_for(gpu_run)
    assert "waits for a worker with a GPU: none is running (1 CPU worker is up" in waiting
    assert "python -m backend worker --device cuda" in waiting
    assert api.waiting_for(after) is None  # done: it waits for nothing
    assert api.cancel(gpu_run) is True


def exp_worker(lab) -> str:
    return f"{socket.gethostname()}:{lab.worker.pid}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_run_that_raises_is_failed_with_its_traceback(fresh):
    # A worker told it has a GPU takes the cuda run; on this machine torch sees none, so the run
    # raises (the worker warned at start), and its error reaches the user.
    gpu = fresh.start("gpu", "--device", "cuda")
    gpu.wait_ready()
    assert "torch sees no CUDA device here" in gpu.text() and "runs cuda+cpu" in gpu.text()
    eid = api.submit(tiny_config().replace(device="cuda"))
    exp = wait_status(eid, ("failed", "done"), worker=gpu)
    assert exp["status"] == "failed"
    assert exp["error"].startswith("Traceback") and "torch sees no CUDA device" in exp["error"]
    assert exp["result"] is None and exp["finished_at"] is not None
    # The worker goes on with the next one.
    nxt = api.submit(tiny_config(seed=10))
    assert wait_status(nxt, ("done", "failed"), worker=gpu)["status"] == "done"
    assert gpu.stop() == 0
    assert fleet.live() == []  # a worker that stops removes itself from the workers table


def test_two_workers_never_run_one_job_twice(fresh):
    a, b = fresh.start("a"), fresh.start("b")
    a.wait_ready()
    b.wait_ready()
    ids = [api.submit(tiny_config(seed=20 + i)) for i in range(4)]
    for eid in ids:  # every message delivered twice, as a broker may do
        queue.enqueue(eid)
    for eid in ids:
        assert wait_status(eid, ("done", "failed"), worker=a)["status"] == "done"
    wait_for(lambda: len(a.events("skip") + b.events("skip")) == 4, 30, "duplicates skipped")
    started = a.events("start") + b.events("start")
    assert sorted(started) == sorted(ids)  # each exactly once
    assert sorted(a.events("skip") + b.events("skip")) == sorted(ids)
    assert a.events("start") and b.events("start")  # both took work
    for eid in ids:
        w = a if eid in a.events("start") else b
        assert api.get_experiment(eid)["worker"].endswith(f":{w.pid}")


def test_kill_9_mid_run_is_failed_by_the_next_worker_start(fresh):
    doomed = fresh.start("doomed")
    eid = api.submit(tiny_config(seed=30))
    wait_status(eid, ("running",), timeout=180, worker=doomed)
    doomed.stop(signal.SIGKILL)
    assert doomed.proc.returncode == -signal.SIGKILL
    assert api.get_experiment(eid)["status"] == "running"  # nobody else knows yet

    heir = fresh.start("heir")
    heir.wait_ready()  # recovery runs before the worker says it is ready
    exp = api.get_experiment(eid)
    assert exp["status"] == "failed"
    assert f"worker {socket.gethostname()}:{doomed.pid} stopped while running" in exp["error"]
    assert "is gone" in exp["error"] and "submit it again" in exp["error"]
    assert exp["result"] is None and not list(fresh.data.glob("artifacts/*.npz"))
    assert [w.id for w in fleet.live()] == [f"{socket.gethostname()}:{heir.pid}"]  # doomed's gone
    again = api.submit(tiny_config(seed=30))
    assert wait_status(again, ("done", "failed"), worker=heir)["status"] == "done"


def test_sigterm_puts_the_running_experiment_back_in_the_queue(fresh):
    leaving = fresh.start("leaving")
    eid = api.submit(tiny_config(seed=31))
    wait_status(eid, ("running",), timeout=180, worker=leaving)
    assert leaving.stop(signal.SIGTERM) == 0
    exp = api.get_experiment(eid)
    assert exp["status"] == "queued" and exp["stage"].startswith("back in the queue"), exp
    assert "re-queued" in leaving.text()
    taker = fresh.start("taker")
    exp = wait_status(eid, ("done", "failed"), worker=taker)
    assert exp["status"] == "done" and exp["worker"].endswith(f":{taker.pid}")


def test_workers_on_several_machines_share_one_redis_queue(
    tmp_path, monkeypatch, redis_url, pg_server
):
    import redis

    lab = lab_setup(tmp_path, monkeypatch, redis_url, url=pg_server.create())
    a, b = lab.start("a"), lab.start("b")
    try:
        a.wait_ready()
        b.wait_ready()
        assert f"queue redis {redis_url}" in a.text()
        ids = [api.submit(tiny_config(seed=40 + i)) for i in range(4)]
        for eid in ids:
            assert wait_status(eid, ("done", "failed"), worker=a)["status"] == "done"
        assert sorted(a.events("start") + b.events("start")) == sorted(ids)
        assert a.events("start") and b.events("start")
        assert not (lab.data / queue.QUEUE_FILE).exists()  # the queue was Redis, not SQLite
        assert redis.Redis.from_url(redis_url).llen(f"huey.redis.{queue.QUEUE_NAME}") == 0
    finally:
        for w in (a, b):
            w.stop(signal.SIGKILL)
