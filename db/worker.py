"""The worker (`python -m backend worker`): takes experiment ids from the Huey queue and runs them,
one at a time, writing progress as it goes and the result at the end, in one transaction.

Faults, and what the user then sees:
- The run raises: "failed", with the traceback as the error; the stage says where it was.
- A cancel (db.api.cancel): the engine polls should_stop() at every stage boundary and PPO step;
  the run stops there and becomes "cancelled".
- SIGTERM or SIGINT: the running experiment stops at its next boundary and goes back to the queue
  ("queued" again, for this or another worker), then the worker exits. A second signal exits at
  once, and the experiment is then recovered as after SIGKILL.
- SIGKILL, a crash, the out-of-memory killer, a machine that goes down: the row stays "running"
  and its heartbeat (every HEARTBEAT_S) stops. The next worker to start, and every running worker
  once a minute, marks it **failed** with an error that says so. It is not re-run automatically: a
  run that killed its worker (out of memory, say) would kill the next one too, and a failed row
  with a clear message is better than a worker fleet in a crash loop. Submitting it again is
  cheap, since the stages it finished are reused from the artifact cache.
  A run counts as dead when its worker ran on this host and that process is gone, or when its
  heartbeat is older than STALE_S (a worker on another machine). Workers on different machines
  must therefore have different host names (containers do by default).
- A queued experiment whose queue message was lost (Redis restarted without persistence, a failed
  enqueue) is sent again by the same sweep; a duplicate message is harmless, since a worker runs
  only what it could claim (queued -> running, in one guarded UPDATE).

What a worker runs (`--device`, default what torch sees): a GPU worker ("cuda") serves the cuda
lane first and then the cpu lane; a CPU worker ("cpu") only the cpu lane, and hides any GPU from
its runs, so an "auto" run it takes stays on the CPU. A cuda job therefore waits in its lane for a
GPU worker instead of failing on a CPU one; a cuda message found in the cpu lane (sent before
lanes existed) is passed on to the cuda lane. Each worker keeps a row in the workers table
(db/fleet.py), which is how the run page knows what a queued run waits for.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from datetime import datetime

from backend.cache import ArtifactCache, process_alive
from db import artifacts, fleet, jobs, queue
from db.engine import database_url, display_url, get_engine
from db.fleet import STALE_S

HEARTBEAT_S = 5.0  # a running experiment's heartbeat, and the worker's own
SWEEP_S = 60.0  # how often a worker looks for dead runs and lost messages
POLL_S = 0.2  # SQLite queue: how often an idle worker looks for work (Redis blocks instead)

log = logging.getLogger("goodhart.worker")
DEVICES = ("cpu", "cuda")


def lanes_for(device: str | None) -> tuple[str, ...]:
    """The lanes a worker started with `device` serves: cuda (GPU) serves cuda then cpu, cpu
    serves cpu; None: cuda when torch sees a CUDA device, else cpu. A CPU worker hides GPUs
    from its runs (CUDA_VISIBLE_DEVICES is read when CUDA starts, so this must come first)."""
    if device not in (None, *DEVICES):
        raise ValueError(f"--device: one of {', '.join(DEVICES)}, got {device!r}")
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return ("cpu",)
    return queue.LANES


def dead_because(worker: str | None, heartbeat: datetime | None, now: datetime) -> str | None:
    """Why the run of `worker` (host:pid) counts as dead at `now`, or None while it looks alive."""
    host, _, pid = (worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid)):
        return f"its process {pid} on {host} is gone"
    if heartbeat is None or (now - heartbeat).total_seconds() > STALE_S:
        last = heartbeat.isoformat() if heartbeat else "never"
        return f"no heartbeat for over {STALE_S:.0f} s (last: {last})"
    return None


class Worker:
    def __init__(self, lanes: tuple[str, ...] = queue.LANES) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self.lanes = lanes  # what serve() reads and execute() runs (lanes_for)
        self.stop = threading.Event()  # set by SIGTERM/SIGINT: finish up and exit
        self.exited = threading.Event()
        self.current: str | None = None
        self.serving = False  # a serving worker keeps its row in the workers table

    # ---- recovery ------------------------------------------------------------------------------

    def recover(self, now: datetime | None = None) -> list[str]:
        """Fail the running experiments of dead workers; re-send queued ones the queue lost.
        Returns the ids marked failed."""
        now = now or jobs.now()
        failed = []
        for r in jobs.running():
            why = None if r.worker == self.id else dead_because(r.worker, r.heartbeat_at, now)
            if why is None:
                continue
            error = (
                f"The worker {r.worker} stopped while running this experiment ({why}; it was "
                f"at: {r.stage}). It was killed (SIGKILL, the out-of-memory killer) or its "
                "machine went down. It is not re-run automatically, since a run that killed its "
                "worker would kill the next one too: submit it again (finished stages come from "
                "the cache)."
            )
            if jobs.mark_lost(r.id, r.worker, r.heartbeat_at, error):
                log.warning("failed %s: worker %s is dead (%s)", r.id, r.worker, why)
                failed.append(r.id)
        for eid in sorted(set(jobs.queued_ids()) - queue.pending_ids()):
            log.warning("re-sent %s: queued, but its queue message was missing", eid)
            queue.enqueue(eid, jobs.device_of(eid))
        for wid, beat in fleet.rows():
            if wid != self.id and dead_because(wid, beat, now) is not None:
                fleet.leave(wid)  # a dead worker's row: the run page stops counting it
        return failed

    def _beat(self) -> None:
        last_sweep = time.monotonic()
        while not self.exited.wait(HEARTBEAT_S):
            try:
                eid = self.current
                if eid is not None:
                    jobs.heartbeat(eid, self.id)
                if self.serving:
                    fleet.beat(self.id, self.lanes, eid)
                if time.monotonic() - last_sweep > SWEEP_S:
                    last_sweep = time.monotonic()
                    self.recover()
            except Exception:
                log.exception("heartbeat failed (will retry)")

    # ---- one job -------------------------------------------------------------------------------

    def execute(self, eid: str) -> None:
        device = jobs.device_of(eid)
        if device is not None and queue.lane_of(device) not in self.lanes:
            queue.enqueue(eid, device)  # to the lane of the workers that can run it
            log.info(
                "pass %s to the %s lane: it asks for device %s", eid, queue.lane_of(device), device
            )
            return
        config = jobs.claim(eid, self.id)
        if config is None:
            log.info("skip %s: not queued any more (cancelled, deleted or taken)", eid)
            return
        from backend.cache import ArtifactCache
        from backend.config import ExperimentConfig
        from backend.experiment import run_experiment
        from backend.runtime import Cancelled

        self.current = eid
        t0 = time.perf_counter()
        log.info("start %s", eid)
        try:
            out = run_experiment(
                ExperimentConfig.from_dict(config),
                progress=lambda frac, msg: jobs.progress(eid, self.id, frac, msg),
                should_stop=lambda: (
                    self.stop.is_set() or jobs.stop_reason(eid, self.id) is not None
                ),
                cache=ArtifactCache(),
            )
            if jobs.finish(eid, self.id, out.result, out.arrays):
                log.info("done %s in %.1f s", eid, time.perf_counter() - t0)
            else:
                log.warning("dropped the result of %s: the run was taken away", eid)
        except Cancelled as e:
            self._stopped(eid, str(e))
        except Exception:
            jobs.fail(eid, self.id, traceback.format_exc())
            log.exception("failed %s", eid)
        finally:
            self.current = None

    def run_here(self, eid: str) -> None:
        """Run one experiment in this process, without the queue (python -m backend reproduce):
        claimed, run and stored exactly as by `execute`, with the heartbeat (and its sweep)
        running meanwhile, so other workers see it alive."""
        self.exited.clear()
        beat = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        beat.start()
        try:
            self.execute(eid)
        finally:
            self.exited.set()
            beat.join()

    def _stopped(self, eid: str, message: str) -> None:
        reason = jobs.stop_reason(eid, self.id)
        if reason == "cancel":
            jobs.stopped(eid, self.id, message)
            log.info("cancelled %s (%s)", eid, message)
        elif reason == "lost":
            log.warning("stopped %s: deleted, or failed by another worker", eid)
        elif jobs.requeue(eid, self.id, f"back in the queue: worker {self.id} was stopped"):
            queue.enqueue(eid, jobs.device_of(eid))
            log.info("re-queued %s (%s)", eid, message)

    # ---- the loop ------------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        log.info("%s: stopping after the current stage", signal.Signals(signum).name)
        self.stop.set()
        signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once

    def serve(self) -> None:
        """Run jobs of its lanes until SIGTERM or SIGINT."""
        queue.set_handler(self.execute)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        get_engine()
        hueys = queue.consumers(self.lanes)
        self.recover()
        ArtifactCache().sweep_all()  # what killed workers left half-built
        import backend.experiment  # noqa: F401  (torch and transformers: now, not per job)

        if "cuda" in self.lanes:
            import torch

            if not torch.cuda.is_available():
                log.warning(
                    "--device cuda, but torch sees no CUDA device here: "
                    "the cuda runs this worker takes will fail"
                )
        fleet.register(self.id, self.lanes)
        self.serving = True
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        log.info(
            "ready: worker %s, runs %s, database %s, arrays in the %s, queue %s",
            self.id,
            "+".join(self.lanes),
            display_url(),
            artifacts.place(database_url()),
            queue.describe(self.lanes),
        )
        try:
            while not self.stop.is_set():
                if not any(self._take(huey) for huey in hueys) and not hueys[0].storage.blocking:
                    self.stop.wait(POLL_S)
        finally:
            self.exited.set()
            queue.set_handler(None)
            fleet.leave(self.id)
        log.info("stopped")

    def _take(self, huey) -> bool:
        """Run the next message of one queue, if there is one; False when it had none."""
        try:
            task = huey.dequeue()
        except Exception:
            log.exception("could not read the queue (will retry)")
            self.stop.wait(1.0)
            return False
        if task is None:
            return False
        huey.execute(task)
        return True


def serve(device: str | None = None) -> None:
    """`python -m backend worker [--device cpu|cuda]`."""
    Worker(lanes_for(device)).serve()
