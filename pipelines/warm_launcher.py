"""A run launcher that starts each run in a process forked from a warm one, not a fresh interpreter.

Dagster's default launcher asks the code server to spawn a new interpreter per run, which then
imports Dagster, Polars and the code location before the run's first step.  This one keeps a run
server (`pipelines/run_server.py`) that has imported those once; for
each run it forks a child that executes the run through Dagster's own entry point (`dagster api
execute_run`'s), so the run's events, status and logs are Dagster's as before.  The run server starts
with the first launch and ends when the launching process closes its pipe.

Run monitoring knows each run's process by its pid (a run tag): a run whose process is gone while
the run is still started (killed, crashed) is marked failed by the daemon.  Cancelling a run sends
its process SIGINT, which Dagster's run worker turns into a cancelled run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value

#: The run's process, for run monitoring and cancelling.
WORKER_PID_TAG = "retrostride/run_worker_pid"


class WarmRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run in a child forked from a run server that has imported `preload` (the code
    location's modules)."""

    def __init__(self, preload: Sequence[str] = (), inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data
        self._preload = list(preload)
        self._server: subprocess.Popen | None = None
        self._lock = threading.Lock()
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {"preload": dg.Field([str], is_required=False, default_value=[])}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> WarmRunLauncher:
        return cls(preload=config_value.get("preload", []), inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        arguments = ExecuteRunArgs(
            job_origin=run.job_code_origin,
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        )
        pid = self._fork(serialize_value(arguments))
        self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(pid)})
        self._instance.report_engine_event(
            f"Run process {pid} forked from the warm run server.", run, cls=self.__class__
        )

    def _fork(self, arguments: str) -> int:
        """Hand `arguments` to the run server (started if it is not running); returns the run's pid."""
        with self._lock:
            for attempt in range(2):
                if self._server is None or self._server.poll() is not None:
                    self._server = subprocess.Popen(
                        [sys.executable, "-m", "retrostride.pipelines.run_server", *self._preload],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                try:
                    self._server.stdin.write(arguments + "\n")
                    self._server.stdin.flush()
                    answer = self._server.stdout.readline()
                except (BrokenPipeError, OSError):
                    answer = ""
                if answer.strip().isdigit():
                    return int(answer)
                self._stop_server()
                if attempt:
                    raise dg.DagsterError("the warm run server did not start the run (see the daemon's log)")
        raise AssertionError("unreachable")

    def _stop_server(self) -> None:
        if self._server is not None:
            if self._server.stdin:
                self._server.stdin.close()
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
            if self._server.stdout:
                self._server.stdout.close()
            self._server = None

    def dispose(self) -> None:
        with self._lock:
            self._stop_server()

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = _worker_pid(run)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run has no process recorded")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's process {pid} ended before the run did")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or (pid := _worker_pid(run)) is None or not process_alive(pid):
            return False
        self._instance.report_run_canceling(run)
        os.kill(pid, signal.SIGINT)  # Dagster's run worker ends the run as cancelled
        return True


def _worker_pid(run: dg.DagsterRun) -> int | None:
    value = run.tags.get(WORKER_PID_TAG, "")
    return int(value) if value.isdigit() else None


def process_alive(pid: int) -> bool:
    """True while process `pid` exists on this machine (the run server reaps its children: none lingers as a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
