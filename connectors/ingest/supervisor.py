"""Decoder processes, watched: batches handed out as workers free up; a hang or a death fails only its file."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from multiprocessing.connection import wait

from retrostride.connectors.ingest.batch import Job, decode_into_lake
from retrostride.warehouse.processes import single_threaded_polars

#: Files a decoder process takes at a time, and their most bytes (a batch's frames are in memory
#: together): the Polars steps after decoding run once per batch (~35 calls of 0.1–0.3 ms each,
#: more than decoding a file takes).
DECODE_BATCH = 32


DECODE_BATCH_BYTES = 8 * 2**20


def _serve(connection) -> None:
    """A worker process: decode the batches the importer sends until it sends None or goes away.
    Before each file it sends the file's position in the batch (-1: the shared steps), then the results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle
    while True:
        try:
            jobs = connection.recv()
        except (EOFError, OSError):
            return
        if jobs is None:
            return
        connection.send(decode_into_lake(jobs, connection.send))


class _Worker:
    """One decoder process, the batch it is working on, and the file of it it is at."""

    def __init__(self, context, shares_cores: bool) -> None:
        self.connection, child = context.Pipe()
        with single_threaded_polars() if shares_cores else nullcontext():  # several workers already use every core
            self.process = context.Process(target=_serve, args=(child,), daemon=True, name="retrostride-decoder")
            self.process.start()
        child.close()
        self.batch: list[Job] | None = None
        self.at = -1
        self.deadline = 0.0

    def give(self, batch: list[Job], timeout_s: float) -> None:
        self.batch, self.at, self.deadline = batch, -1, time.monotonic() + timeout_s
        self.connection.send(batch)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        elif self.process.is_alive():
            try:
                self.connection.send(None)
            except OSError:
                pass
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
        self.process.join()
        self.connection.close()


@dataclass(frozen=True)
class _Lost:
    """A worker that died or passed the time limit, and why."""

    reason: str
    hung: bool


def supervised(jobs: Iterable[Job], workers: int, timeout_s: float) -> Iterator[tuple[Job, tuple]]:
    """(job, (outcome, ledger row)) for every job, decoded in batches of up to `DECODE_BATCH` in at
    most `workers` watched processes.

    Jobs are taken from `jobs` only when a worker is free, and a worker is started only when a batch
    has none free (so one new file starts one process, and it starts while the rest is being read).
    A worker that dies or passes the time limit (per file) is replaced.  The file it hung on comes
    back as (None, reason); when it died, each file of its batch is decoded again on its own, so
    only a file that kills a worker by itself comes back as (None, reason).  Results come in the
    order their batches finish.
    """
    # spawn, not fork: Polars' and DuckDB's thread pools do not survive a fork
    context = multiprocessing.get_context("spawn")
    batches = _batches(jobs)
    alone: deque[Job] = deque()  # files of a batch whose worker died: one per batch, to find the culprit
    pool: list[_Worker] = []
    more = True
    try:
        while True:
            while (alone or more) and (any(w.batch is None for w in pool) or len(pool) < max(1, workers)):
                batch = [alone.popleft()] if alone else next(batches, None)
                if batch is None:
                    more = False
                    break
                idle = next((w for w in pool if w.batch is None), None)
                if idle is None:
                    idle = _Worker(context, shares_cores=workers > 1)
                    pool.append(idle)
                idle.give(batch, timeout_s)
            busy = [w for w in pool if w.batch is not None]
            if not busy:
                return
            soonest = min(w.deadline for w in busy) - time.monotonic()
            wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=max(soonest, 0.0))
            for worker in busy:
                batch, at = worker.batch, worker.at
                result = _collect(worker, timeout_s)
                if result is None:
                    continue
                worker.batch = None
                if not isinstance(result, _Lost):
                    yield from zip(batch, result)
                    continue
                worker.stop(kill=True)  # a fresh process takes its place if jobs remain
                pool.remove(worker)
                if len(batch) == 1 or (result.hung and at >= 0):
                    yield batch[max(at, 0)], (None, result.reason)
                    alone.extend(job for i, job in enumerate(batch) if i != max(at, 0))
                else:
                    alone.extend(batch)
    finally:
        for worker in pool:
            worker.stop(kill=worker.batch is not None)


def _batches(jobs: Iterable[Job]) -> Iterator[list[Job]]:
    """`jobs` in batches of up to `DECODE_BATCH` files and `DECODE_BATCH_BYTES` (at least one file),
    each taken as late as possible: when a worker asks for it."""
    batch: list[Job] = []
    size = 0
    for job in jobs:
        batch.append(job)
        try:
            size += os.path.getsize(job.path)
        except OSError:  # gone since it was hashed: its decoder says so
            pass
        if len(batch) == DECODE_BATCH or size >= DECODE_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _collect(worker: _Worker, timeout_s: float) -> list | _Lost | None:
    """The batch's results, `_Lost` if the worker died or hung, or None while it is still working
    (each file it starts gives it `timeout_s` more)."""
    try:
        while worker.connection.poll():
            message = worker.connection.recv()
            if not isinstance(message, int):
                return message
            worker.at, worker.deadline = message, time.monotonic() + timeout_s
    except (EOFError, OSError):
        pass
    else:
        if worker.process.is_alive() and time.monotonic() < worker.deadline:
            return None
        if worker.process.is_alive():
            worker.process.kill()
            return _Lost(f"decoder timed out after {timeout_s:g} s (killed; the next import tries again)", hung=True)
    worker.process.join()
    return _Lost(f"decoder process died ({_exit(worker.process.exitcode)}; the next import tries again)", hung=False)


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
