"""Independent pieces of a run in forked child processes, a few at a time.

Why processes: a toy proxy's training step is about 80 small torch calls of 10-90 us each, and
the Python between them holds the GIL, so two members training in threads of one process took
as long as one after the other (1.72 s against 0.87 s for one alone, 2 epochs, this 2-core
machine); in two processes each ran at its own speed (0.94 s for both). A forked child starts
at once with the parent's memory (the world, the pairs, the initial policy), runs one piece on
one torch thread, and sends back messages and its result through a pipe; it never touches the
database or the parent's progress callback (the parent relays its messages).

The parent asks `should_stop` every second while it waits and ends the children when asked to;
a child whose parent has gone stops at its next message. `run_forked` runs a list of pieces and
waits; a `Child` runs one piece while the parent goes on with other work (the best-of-n answers
sampled beside the preference pairs: Runner.samples_beside), and `Child.result` waits for it.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

Send = Callable[[Any], None]
POLL_S = 0.2  # how often the parent wakes while children run (messages wake it sooner)
STOP_EVERY_S = 1.0  # how often it asks should_stop (a worker's asks the database)


def at_once(pieces: int, cores: int) -> int:
    """How many of `pieces` equal pieces of work to run at once on `cores` cores. As many as cores
    when they divide evenly; else up to two per core, in rounds as even as can be, so no core
    idles through a last round of one (5 members on 2 cores: 3 then 2 at once, not 2, 2 and 1).
    Processes time-share a core at about 10% extra cost; toy-bon's 5 members trained in 9.59 s
    that way against 11.58 s two at a time (8 epochs each, 2026-12-06, idle)."""
    cores = max(1, cores)
    if pieces % cores == 0:
        return min(pieces, cores)
    rounds = math.ceil(pieces / (2 * cores))
    return math.ceil(pieces / rounds)


def span(pieces: int, cores: int) -> float:
    """The wall time of `pieces` equal pieces run at_once on `cores` cores, in units of one
    piece alone on a core: whole rounds when they divide evenly, else their share of the cores
    and the time-sharing's 10% (the estimate's; backend/estimate.py)."""
    if not pieces:
        return 0.0
    at = at_once(pieces, cores)
    return float(math.ceil(pieces / at)) if at <= cores else 1.1 * pieces / cores


class ChildFailed(RuntimeError):
    """A piece ended without a result: its exception's traceback, or how its process ended."""


def _child(job: Callable[[Send], Any], conn: Connection, parent: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):  # not the worker's handlers: end at once
        signal.signal(sig, signal.SIG_DFL)
    import torch

    torch.set_num_threads(1)

    def send(message: Any) -> None:
        if os.getppid() != parent:  # the parent is gone: nobody will read the result
            os._exit(1)
        conn.send(("message", message))

    try:
        conn.send(("result", job(send)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class Child:
    """`job(send)` running in a forked child process. Its pipe carries ("message", m) for each
    send(m), then ("result", value) or ("error", traceback)."""

    def __init__(self, job: Callable[[Send], Any]) -> None:
        ctx = mp.get_context("fork")
        self.conn, there = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child, args=(job, there, os.getpid()), daemon=True)
        self.proc.start()
        there.close()

    def receive(self) -> tuple[bool, Any]:
        """The next word from the child (blocks): (False, message) for a message, (True,
        result) once it is done (then the process has ended). ChildFailed if it failed."""
        try:
            kind, payload = self.conn.recv()
        except EOFError:  # the process ended without a word: killed, or crashed
            self.proc.join()
            raise ChildFailed(f"the child ended with exit code {self.proc.exitcode}") from None
        if kind == "message":
            return False, payload
        self.stop()
        if kind == "error":
            raise ChildFailed(payload)
        return True, payload

    def result(self, should_stop: Callable[[], bool], stopped: Callable[[], BaseException]) -> Any:
        """Wait for the child's result, its messages dropped, asking should_stop() every
        STOP_EVERY_S (stopped() is raised, the child ended). The child is ended on any error."""
        asked = time.monotonic()
        try:
            while True:
                if self.conn.poll(POLL_S):
                    done, payload = self.receive()
                    if done:
                        return payload
                if time.monotonic() - asked >= STOP_EVERY_S:
                    asked = time.monotonic()
                    if should_stop():
                        raise stopped()
        finally:
            self.stop()

    def stop(self) -> None:
        """End the child (if it still runs) and close the pipe."""
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join()
        self.conn.close()


def run_forked(
    jobs: Sequence[Callable[[Send], Any]],
    workers: int,
    on_message: Callable[[int, Any], None],
    should_stop: Callable[[], bool],
    stopped: Callable[[], BaseException],
) -> list[Any]:
    """[job(send) for job in jobs], each in a forked child, `workers` at a time. A child's
    send(message) reaches on_message(index, message) in this process. When should_stop() turns
    true the children are ended and stopped() is raised; a child's exception is raised here as
    ChildFailed with its traceback."""
    results: dict[int, Any] = {}
    running: dict[Connection, tuple[int, Child]] = {}
    pending = list(enumerate(jobs))
    asked = time.monotonic()
    try:
        while pending or running:
            while pending and len(running) < workers:
                i, job = pending.pop(0)
                child = Child(job)
                running[child.conn] = (i, child)
            for conn in wait(list(running), timeout=POLL_S):
                i, child = running[conn]
                try:
                    done, payload = child.receive()
                except ChildFailed as e:
                    raise ChildFailed(f"piece {i}: {e}") from None
                if not done:
                    on_message(i, payload)
                    continue
                del running[conn]
                results[i] = payload
            if time.monotonic() - asked >= STOP_EVERY_S:
                asked = time.monotonic()
                if should_stop():
                    raise stopped()
    finally:
        for _, child in running.values():
            child.stop()
    return [results[i] for i in range(len(jobs))]
