"""The real thing: `dagster-daemon` on a temporary instance picks up files dropped in the inbox."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from retrostride.pipelines.runs import instance_for
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA, settings_for

REPO = Path(__file__).resolve().parents[1]
FIT = CORPORA / "fit" / "python-fitparse"
#: A generous bound on a loaded 2-core machine: two sensor ticks and one import run.
DEADLINE_S = 300


@pytest.mark.slow
def test_the_daemon_imports_files_dropped_in_the_inbox(tmp_path, monkeypatch):
    settings = settings_for(tmp_path)
    env = {
        **os.environ,
        "RETROSTRIDE_HOME": str(settings.home),
        "RETROSTRIDE_INBOX": str(settings.inbox),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "RETROSTRIDE_WORKERS": "1",
        "RETROSTRIDE_POLL_S": "2",
    }
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    instance = instance_for(settings)  # the shipped dagster.yaml, as `retrostride ui` installs it
    log = open(tmp_path / "daemon.log", "w")  # noqa: SIM115 - the daemon writes it until the finally below
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        (settings.inbox / "ann").mkdir(parents=True)
        for name in ("activity-small-fenix2-run.fit", "garmin-fenix-5-run.fit"):
            shutil.copy(FIT / name, settings.inbox / "ann" / name)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and _activities(settings) < 2:  # in the snapshot SQL users read
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            time.sleep(2)
        assert _activities(settings) == 2, (
            f"not in the warehouse after {DEADLINE_S} s:\n" + (tmp_path / "daemon.log").read_text()[-3000:]
        )
        while time.monotonic() < deadline and (
            _pending_days(settings) or instance.get_runs(dg.RunsFilter(statuses=list(_UNFINISHED)))
        ):
            time.sleep(1)  # the run's days cleared, and every run ended, before stopping the daemon
        runs = instance.get_runs()
        assert {r.job_name for r in runs} == {"import_files"}  # one run per drop: import, publish, score, marts
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        assert any(r.tags.get("dagster/sensor_name") == "inbox_sensor" for r in runs)
        assert _pending_days(settings) == 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
            pytest.fail("the daemon did not stop on SIGTERM within 60 s")
        finally:
            log.close()


_UNFINISHED = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
}


def _activities(settings) -> int:
    if not settings.catalog.exists():
        return 0
    warehouse = Warehouse(settings.catalog)
    if "activities" not in warehouse.query("SELECT table_name FROM information_schema.tables")["table_name"].to_list():
        return 0
    return warehouse.query("SELECT count(*) AS n FROM activities")["n"][0]


def _pending_days(settings) -> int:
    return Warehouse(settings.catalog).query("SELECT count(*) AS n FROM pending_days")["n"][0]
