"""Polars work in processes: the same results, in order, as in one process."""

import os
import sys
from pathlib import Path

import polars as pl
import pytest

from retrostride.warehouse.processes import map_in_processes, supervised, worker_started_early


def summed(values: pl.DataFrame, offset: int) -> tuple[int, str]:
    """A worker's answer: the column's sum plus `offset`, and how many Polars threads it had."""
    return int(values["x"].sum()) + offset, os.environ.get("POLARS_MAX_THREADS", "")


def _items(count: int):
    for number in range(count):
        yield number, {"values": pl.DataFrame({"x": range(number * 1000, number * 1000 + 1000)})}


def test_work_in_processes_comes_back_in_order_with_the_answers_of_one_process(tmp_path: Path):
    here = list(map_in_processes(summed, _items(5), 1, tmp_path, offset=7))
    there = list(map_in_processes(summed, _items(5), 2, tmp_path, offset=7))
    assert (
        [(k, a[0]) for k, a in here]
        == [(k, a[0]) for k, a in there]
        == [(n, sum(range(n * 1000, n * 1000 + 1000)) + 7) for n in range(5)]
    )
    assert {a[1] for _, a in there} == {"1"}  # one Polars thread per worker process
    assert os.environ.get("POLARS_MAX_THREADS", "") == here[0][1][1]  # and this process's setting is back
    assert list(tmp_path.rglob("*.arrow")) == []  # hand-over files are gone


def dies_on_the_third(values: pl.DataFrame) -> int:
    """A worker's answer, except that the item starting at 2000 ends its process."""
    if values["x"][0] == 2000:
        os._exit(3)
    return int(values["x"].sum())


def test_a_worker_that_dies_while_scoring_fails_the_work_with_the_reason(tmp_path: Path):
    """Scoring runs in the same watched processes as decoding: a dead worker is noticed, not waited for."""
    with pytest.raises(RuntimeError, match=r"dies_on_the_third: process died \(exit code 3\)"):
        list(map_in_processes(dies_on_the_third, _items(5), 2, tmp_path))
    assert list(tmp_path.rglob("*.arrow")) == []


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def whose(task: int, progress) -> tuple[int, int, bool]:
    """A worker's answer: the task, the worker's pid, and whether the decoders were imported before it."""
    return task, os.getpid(), "retrostride.connectors.formats" in sys.modules


def test_a_worker_started_early_takes_the_first_task_with_its_modules_imported():
    """The CLI starts a decoder while it loads Dagster: the import's first batch goes to that process."""
    with worker_started_early(shares_cores=False, preload=["retrostride.connectors.ingest.supervisor"]) as early:
        [(task, (_, pid, preloaded))] = list(supervised([1], whose, workers=1, timeout_s=60))
    assert (task, pid, preloaded) == (1, early, True)
    assert not running(early)  # the pool stopped it with its other workers
    [(_, (_, later, imported))] = list(supervised([2], whose, workers=1, timeout_s=60))
    assert later != early and not imported  # without one, the pool starts its own, which imports nothing ahead


def test_a_worker_started_early_is_left_to_pools_like_it_and_stopped_when_unused():
    with worker_started_early(shares_cores=True) as early:
        [(_, (_, pid, _))] = list(supervised([1], whose, workers=1, timeout_s=60))  # one worker: not sharing cores
        assert pid != early and running(early)
    assert not running(early)
