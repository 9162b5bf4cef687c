"""Polars work spread over processes: one Polars thread each, big frames handed over as Arrow IPC files.

Much of a Polars pipeline runs on one thread (window functions, rolling groups), so one process
uses about 1.2 of 2 cores; a process per core uses them all.  Frames go to the workers as
uncompressed Arrow IPC files (~1 GB/s; pickling a frame is ~300 MB/s), results come back pickled.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

Key = TypeVar("Key")


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


def map_in_processes(
    function: Callable[..., Any],
    items: Iterable[tuple[Key, dict[str, pl.DataFrame]]],
    workers: int,
    staging: Path,
    **shared: Any,
) -> Iterator[tuple[Key, Any]]:
    """(key, `function(**frames, **shared)`) for each (key, frames) of `items`, in order.

    With `workers` > 1 the calls run in that many spawned processes; `items` is read lazily, one
    ahead of the workers, and each item's frames are let go once they are handed over (so this
    process holds one item's frames at a time).  `function` and `shared` must be picklable (a
    module-level function, small frames and settings).  With one worker, or a single item,
    everything runs here.
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
    with tempfile.TemporaryDirectory(prefix="frames-", dir=staging) as folder, single_threaded_polars(), \
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        waiting: deque[tuple[Key, Future]] = deque()
        for number, (key, frames) in enumerate(chain([first, second], items)):
            paths = {}
            for name, frame in frames.items():
                paths[name] = str(Path(folder) / f"{number}-{name}.arrow")
                frame.write_ipc(paths[name], compression="uncompressed")
            del frames
            waiting.append((key, pool.submit(_call, function, paths, shared)))
            if len(waiting) > workers:
                key, future = waiting.popleft()
                yield key, future.result()
        while waiting:
            key, future = waiting.popleft()
            yield key, future.result()


def _call(function: Callable[..., Any], paths: dict[str, str], shared: dict[str, Any]) -> Any:
    """In a worker: read the frames, delete their files, call `function`."""
    frames = {}
    for name, path in paths.items():
        frames[name] = pl.read_ipc(path)
        os.remove(path)
    return function(**frames, **shared)
