"""Work in spawned, watched processes: the one mechanism that decodes files and scores months.

`supervised` hands tasks to at most N worker processes as they free up; a worker that dies (a
segfault, the OOM killer) or sends no sign of progress within the time limit is killed and replaced,
and its task comes back as `Lost` for the caller to explain or retry. `map_in_processes` runs a
Polars function over frames in those workers and gives the answers back in order.

Much of a Polars pipeline runs on one thread (window functions, rolling groups), so one process
uses about 1.2 of 2 cores; a process per core uses them all. Frames go to the workers as
uncompressed Arrow IPC files (several times faster than pickling a frame), results come back pickled.
"""

from __future__ import annotations

import importlib
import math
import multiprocessing
import os
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import chain
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

Task = TypeVar("Task")
Key = TypeVar("Key")
#: What a worker's function calls to show it is still working (the number says where it is).
Progress = Callable[[int], None]


@contextmanager
def single_threaded_polars() -> Iterator[None]:
    """Processes started inside get one Polars thread each (Polars reads POLARS_MAX_THREADS when it is
    imported): the processes already use every core, and a thread pool each only adds hand-overs."""
    before = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["POLARS_MAX_THREADS"]
        else:
            os.environ["POLARS_MAX_THREADS"] = before


@dataclass(frozen=True)
class Lost:
    """A task whose worker died or passed the time limit: what happened ("timed out after 10 s",
    "process died"), how it ended ("killed", "killed by SIGSEGV", "exit code 3"), and the last
    progress mark it sent (-1: none)."""

    what: str
    how: str
    hung: bool
    at: int = -1


def supervised(
    tasks: Iterable[Task],
    function: Callable[[Task, Progress], Any],
    workers: int,
    timeout_s: float | None,
    again: deque[Task] | None = None,
) -> Iterator[tuple[Task, Any]]:
    """(task, `function(task, progress)` or `Lost`) for every task, in the order they finish.

    Each call runs in one of at most `workers` spawned processes (`function` and tasks must be
    picklable). Tasks are taken from `again` first, then from `tasks`, only when a worker is free,
    and a worker is started only when none is free (one task starts one process, while the rest is
    still being read). A worker that dies, or whose last progress call is older than `timeout_s`
    (None: no limit), is killed and replaced; its task comes back as `Lost`, and the caller may put
    tasks on `again` to try them once more.
    """
    context = multiprocessing.get_context("spawn")  # Polars' and DuckDB's thread pools do not survive a fork
    pending = iter(tasks)
    again = again if again is not None else deque()
    limit = math.inf if timeout_s is None else timeout_s
    pool: list[_Worker] = []
    more = True
    try:
        while True:
            while (again or more) and (any(w.task is None for w in pool) or len(pool) < max(1, workers)):
                if again:
                    task = again.popleft()
                else:
                    task = next(pending, _NONE)
                    if task is _NONE:
                        more = False
                        break
                idle = next((w for w in pool if w.task is None), None)
                if idle is None:
                    idle = _started_early(shares_cores=workers > 1) or _Worker(context, shares_cores=workers > 1)
                    pool.append(idle)
                idle.give(function, task, limit)
            busy = [w for w in pool if w.task is not None]
            if not busy:
                return
            soonest = min(w.deadline for w in busy) - time.monotonic()
            wait(
                [w.connection for w in busy] + [w.process.sentinel for w in busy],
                timeout=None if soonest == math.inf else max(soonest, 0.0),
            )
            for worker in busy:
                task, result = worker.task, worker.collect(limit)
                if result is _WORKING:
                    continue
                worker.task = None
                if isinstance(result, Lost):
                    worker.stop(kill=True)  # a fresh process takes its place if tasks remain
                    pool.remove(worker)
                yield task, result
    finally:
        for worker in pool:
            worker.stop(kill=worker.task is not None)


#: Workers started before they are needed (`worker_started_early`), for the next pool to take.
_EARLY: list[_Worker] = []


@contextmanager
def worker_started_early(shares_cores: bool, preload: Sequence[str] = ()) -> Iterator[int]:
    """Start one worker process now (its pid is given), importing the modules `preload` while this
    process goes on with other work; within the block, the first `supervised` pool that needs a worker
    (with the same `shares_cores`: more than one worker) takes it instead of starting one. Stopped at
    the end if unused."""
    worker = _Worker(multiprocessing.get_context("spawn"), shares_cores, preload)
    _EARLY.append(worker)
    try:
        yield worker.process.pid
    finally:
        if worker in _EARLY:
            _EARLY.remove(worker)
            worker.stop()


def _started_early(shares_cores: bool) -> _Worker | None:
    """A worker `worker_started_early` started with the same core sharing, still alive; taken."""
    for worker in _EARLY:
        if worker.shares_cores == shares_cores and worker.process.is_alive():
            _EARLY.remove(worker)
            return worker
    return None


def map_in_processes(
    function: Callable[..., Any],
    items: Iterable[tuple[Key, dict[str, pl.DataFrame]]],
    workers: int,
    staging: Path,
    **shared: Any,
) -> Iterator[tuple[Key, Any]]:
    """(key, `function(**frames, **shared)`) for each (key, frames) of `items`, in order.

    With `workers` > 1 the calls run in `supervised` processes; `items` is read lazily, as workers
    free up, and each item's frames are let go once they are handed over (so this process holds
    one item's frames at a time). `function` and `shared` must be picklable (a module-level
    function, small frames and settings). With one worker, or a single item, everything runs here.
    A worker that dies raises here: scoring has no file to blame.
    """
    items = iter(items)
    first = next(items, None)
    if first is None:
        return
    second = next(items, None)
    if workers <= 1 or second is None:
        for key, frames in chain([first], [] if second is None else [second], items):
            yield key, function(**frames, **shared)
        return
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="frames-", dir=staging) as folder, single_threaded_polars():
        keys: dict[int, Key] = {}

        def handed_over() -> Iterator[tuple[int, Callable[..., Any], dict[str, str], dict[str, Any]]]:
            for number, (key, frames) in enumerate(chain([first, second], items)):
                keys[number] = key
                paths = {}
                for name, frame in frames.items():
                    paths[name] = str(Path(folder) / f"{number}-{name}.arrow")
                    frame.write_ipc(paths[name], compression="uncompressed")
                del frames
                yield number, function, paths, shared

        done: dict[int, Any] = {}
        following = 0
        for (number, *_), result in supervised(handed_over(), _call, workers, timeout_s=None):
            if isinstance(result, Lost):
                raise RuntimeError(f"a worker process of {function.__name__}: {result.what} ({result.how})")
            done[number] = result
            while following in done:
                yield keys.pop(following), done.pop(following)
                following += 1


def _call(task: tuple[int, Callable[..., Any], dict[str, str], dict[str, Any]], progress: Progress) -> Any:
    """In a worker: read the frames, delete their files, call the function."""
    _, function, paths, shared = task
    frames = {}
    for name, path in paths.items():
        frames[name] = pl.read_ipc(path)
        os.remove(path)
    return function(**frames, **shared)


_NONE = object()
_WORKING = object()


def _serve(connection, preload: Sequence[str] = ()) -> None:
    """A worker process: import `preload`, then run the (function, task) pairs it is sent until it is
    sent None or the parent goes away. The function's progress calls and then its result go back to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for module in preload:
        importlib.import_module(module)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        function, task = message
        connection.send(_Result(function(task, connection.send)))


@dataclass(frozen=True)
class _Result:
    """A task's result, told apart from the progress marks (ints) that precede it."""

    value: Any


class _Worker:
    """One worker process, the task it is working on, and the last progress mark it sent."""

    def __init__(self, context, shares_cores: bool, preload: Sequence[str] = ()) -> None:
        self.connection, child = context.Pipe()
        self.shares_cores = shares_cores
        with single_threaded_polars() if shares_cores else nullcontext():  # several workers already use every core
            self.process = context.Process(
                target=_serve, args=(child, tuple(preload)), daemon=True, name="retrostride-worker"
            )
            self.process.start()
        child.close()
        self.task: Any = None
        self.at = -1
        self.deadline = 0.0

    def give(self, function: Callable, task: Any, timeout_s: float) -> None:
        self.task, self.at, self.deadline = task, -1, time.monotonic() + timeout_s
        self.connection.send((function, task))

    def collect(self, timeout_s: float) -> Any:
        """The task's result, `Lost` if the worker died or hung, or `_WORKING` while it is still at it
        (each progress mark gives it `timeout_s` more)."""
        try:
            while self.connection.poll():
                message = self.connection.recv()
                if isinstance(message, _Result):
                    return message.value
                self.at, self.deadline = message, time.monotonic() + timeout_s
        except (EOFError, OSError):
            pass
        else:
            if self.process.is_alive() and time.monotonic() < self.deadline:
                return _WORKING
            if self.process.is_alive():
                self.process.kill()
                return Lost(f"timed out after {timeout_s:g} s", "killed", hung=True, at=self.at)
        self.process.join()
        return Lost("process died", _exit(self.process.exitcode), hung=False, at=self.at)

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


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
