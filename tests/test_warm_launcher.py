"""The warm run launcher: real Dagster runs, each in a process forked from the run server, end as
Dagster says they did: succeeded, failed, failed when their process dies, cancelled on request."""

from __future__ import annotations

import logging
import os
import signal
import time

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from retrostride.pipelines.warm_launcher import WORKER_PID_TAG, WarmRunLauncher

DEADLINE_S = 120


@dg.op
def count_to_three() -> int:
    return sum(range(4))


@dg.op
def fail_loudly() -> None:
    raise RuntimeError("this step fails on purpose")


@dg.op
def wait_long() -> None:
    time.sleep(600)


@dg.op
def storage_commits_without_fsync(context) -> None:
    with context.instance.event_log_storage.index_connection() as connection:
        synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    assert synchronous == 1, f"PRAGMA synchronous is {synchronous}, not NORMAL"


@dg.job(executor_def=dg.in_process_executor)
def counting():
    count_to_three()


@dg.job(executor_def=dg.in_process_executor)
def storing():
    storage_commits_without_fsync()


@dg.job(executor_def=dg.in_process_executor)
def failing():
    fail_loudly()


@dg.job(executor_def=dg.in_process_executor)
def waiting():
    wait_long()


@pytest.fixture
def instance(tmp_path):
    overrides = {
        "run_launcher": {
            "module": "retrostride.pipelines.warm_launcher",
            "class": "WarmRunLauncher",
            "config": {"preload": [__name__]},
        }
    }
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=overrides) as instance:
        yield instance
        instance.run_launcher.dispose()


def launch(instance: dg.DagsterInstance, job: dg.JobDefinition) -> dg.DagsterRun:
    run = instance.create_run_for_job(job_def=job, job_code_origin=dg.reconstructable(job).get_python_origin())
    instance.launch_run(run.run_id, workspace=None)
    return instance.get_run_by_id(run.run_id)


def finished(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run.is_finished:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} not finished after {DEADLINE_S} s: {run.status}")


def started(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run.status == dg.DagsterRunStatus.STARTED and any(
            e.step_key == "wait_long" for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        ):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} not started after {DEADLINE_S} s")


def test_runs_succeed_and_fail_as_their_steps_do_in_forked_processes(instance):
    assert isinstance(instance.run_launcher, WarmRunLauncher)
    runs = [launch(instance, job) for job in (counting, failing, counting)]
    pids = {run.tags[WORKER_PID_TAG] for run in runs}
    assert len(pids) == 3 and str(os.getpid()) not in pids  # a process of its own each
    statuses = [finished(instance, run.run_id).status for run in runs]
    assert statuses == [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS]
    step = instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
    assert [e.step_key for e in step] == ["count_to_three"]
    failure = instance.all_logs(runs[1].run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert "this step fails on purpose" in failure[0].dagster_event.step_failure_data.error.to_string()


def test_a_run_whose_process_is_killed_is_marked_failed_by_run_monitoring(instance):
    run = started(instance, launch(instance, waiting).run_id)
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    os.kill(int(run.tags[WORKER_PID_TAG]), signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE_S
    while instance.run_launcher.check_run_worker_health(run).status != WorkerStatus.FAILED:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    record = instance.get_run_record_by_id(run.run_id)
    monitor_started_run(instance, None, record, logging.getLogger(__name__))  # what the daemon runs
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_cancelling_a_run_stops_its_process(instance):
    run = started(instance, launch(instance, waiting).run_id)
    assert instance.run_launcher.terminate(run.run_id)
    assert finished(instance, run.run_id).status == dg.DagsterRunStatus.CANCELED


def test_runs_forked_from_the_server_store_their_events_without_an_fsync_each(instance):
    run = launch(instance, storing)
    finished_run = finished(instance, run.run_id)
    failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert finished_run.status == dg.DagsterRunStatus.SUCCESS, [
        e.dagster_event.step_failure_data.error.to_string() for e in failures
    ]
