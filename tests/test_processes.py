"""Polars work in processes: the same results, in order, as in one process."""

import os
from pathlib import Path

import polars as pl
import pytest

from retrostride.warehouse.processes import map_in_processes


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
