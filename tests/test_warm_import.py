"""The home's warm import server as a user meets it: an import is handed to it with the in-process
results and exit codes, a failed report redraw is told by the next command, a server of other
settings steps aside (the import runs in-process and leaves a server of its own), a server killed
mid-import fails that import (exit 1) and the next converges, an idle server exits, and none
starts when the idle time is 0. Real processes, real Dagster runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrostride.assets.settings import Settings
from retrostride.pipelines.import_client import start_server
from tests.conftest import CORPORA

FIT = CORPORA / "fit" / "python-fitparse"
RUN, BROKEN = FIT / "activity-small-fenix2-run.fit", FIT / "activity-filecrc.fit"
MORE = [FIT / name for name in ("garmin-fenix-5-run.fit", "2013-02-06-12-11-14.fit")]
RETROSTRIDE = str(Path(sys.executable).with_name("retrostride"))
DEADLINE_S = 90
#: `retrostride` that says on standard error, at its end, which of the heavy libraries it loaded.
LOADING = (
    "import atexit, sys; from retrostride.pipelines.cli import main; "
    "atexit.register(lambda: print(sorted(m for m in ('dagster', 'polars', 'duckdb') if m in sys.modules), "
    "file=sys.stderr)); main()"
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the warm import server is Linux's (abstract sockets)")


def environment(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "RETROSTRIDE_HOME": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "RETROSTRIDE_INBOX": str(tmp_path / "inbox"),
        "RETROSTRIDE_WORKERS": "1",
        "RETROSTRIDE_WARM_IDLE_S": "120",
        **more,
    }


def retrostride(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([RETROSTRIDE, *arguments], env=env, capture_output=True, text=True, timeout=300)


def server_log(tmp_path: Path) -> str:
    log = tmp_path / "data" / "run" / "import-server.log"
    return log.read_text() if log.exists() else ""


def running_server(env: dict[str, str]) -> int:
    """The pid of the home's server, once it answers (it imports Dagster first)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = re.search(r"running: process (\d+)", retrostride(env, "warm", "status").stdout)
        if found:
            return int(found.group(1))
        time.sleep(0.3)
    raise AssertionError("no warm import server answered")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def children_of(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def count(env: dict[str, str], query: str) -> int:
    return int(retrostride(env, "sql", query, "--format", "csv").stdout.split()[-1])


def started_server(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """The home's server started as `retrostride import` starts it, its output to the home's log."""
    (tmp_path / "data" / "run").mkdir(parents=True, exist_ok=True)
    with open(tmp_path / "data" / "run" / "import-server.log", "a") as log:
        return subprocess.Popen([sys.executable, "-m", "retrostride.pipelines.import_server"], env=env, stdout=log)


def test_imports_are_served_warm_and_a_stale_or_killed_server_falls_back_in_process(tmp_path):
    env, other = environment(tmp_path), environment(tmp_path, RETROSTRIDE_SETTLE_S="2")
    first = started_server(tmp_path, env)
    try:
        running_server(env)
        blocked = tmp_path / "data" / "reports" / "report.html" / "a folder"  # where the report goes: its redraw fails
        blocked.mkdir(parents=True)
        served = subprocess.run(
            [sys.executable, "-c", LOADING, "import", str(RUN), str(BROKEN), "--athlete", "ann", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert served.returncode == 1, served.stdout + served.stderr  # a failed file: exit 1, as in-process
        assert served.stderr.splitlines()[-1] == "[]"  # the CLI loaded neither Dagster nor Polars nor DuckDB
        summary = json.loads(served.stdout)
        assert summary["files"]["ok"] == 1 and summary["files"]["failed"] == 1
        assert "CRC mismatch" in summary["problems"][0]["reason"]
        assert summary["activities_by_sport"] == {"running": 1} and summary["athletes"] == ["ann"]
        assert summary["first_day"] == summary["last_day"] == "2015-08-15"
        assert re.search(rf"import of .*{RUN.name}.* handed to child \d+", server_log(tmp_path))

        note = tmp_path / "data" / "run" / "redraw-failed.txt"
        deadline = time.monotonic() + DEADLINE_S
        while not note.exists() and time.monotonic() < deadline:  # the redraw follows the answer
            time.sleep(0.1)
        shutil.rmtree(blocked.parent)
        fallback = retrostride(other, "import", str(MORE[0]), "--athlete", "ann")  # other settings: stale
        assert fallback.returncode == 0 and "1 imported" in fallback.stdout, fallback.stdout + fallback.stderr
        assert (
            "the report's redraw after the last import failed" in fallback.stderr
            and "Is a directory" in fallback.stderr
        )
        assert "other code or settings" in server_log(tmp_path) and MORE[0].name not in server_log(tmp_path)
        assert first.wait(DEADLINE_S) == 0

        server = running_server(other)  # the in-process import left a server of its own settings
        killed = subprocess.Popen(
            [RETROSTRIDE, "import", str(MORE[1]), "--athlete", "ann"], env=other, stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + DEADLINE_S
        while not children_of(server) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(server, signal.SIGKILL)  # its child, mid-import, dies with it
        output, _ = killed.communicate(timeout=DEADLINE_S)
        assert killed.returncode == 1 and "ended before it answered" in output

        again = retrostride(other, "import", str(MORE[1]), "--athlete", "ann")
        assert again.returncode == 0, again.stdout + again.stderr
        assert count(other, "SELECT count(*) FROM activities") == 3
        assert count(other, f"SELECT count(*) FROM import_ledger WHERE path LIKE '%{MORE[1].name}'") == 1
    finally:
        first.kill()
        retrostride(other, "warm", "stop")


def test_an_idle_server_exits_and_none_starts_when_the_idle_time_is_zero(tmp_path, monkeypatch):
    for name, value in environment(tmp_path, RETROSTRIDE_WARM_IDLE_S="0").items():
        monkeypatch.setenv(name, value)
    start_server(Settings.from_env())
    assert not (tmp_path / "data" / "run").exists()  # no server, no log

    env = environment(tmp_path, RETROSTRIDE_WARM_IDLE_S="1")
    server = started_server(tmp_path, env)
    try:
        running_server(env)
        assert server.wait(DEADLINE_S) == 0
        assert "idle for 1 s: exiting" in server_log(tmp_path)
        assert "No warm import server" in retrostride(env, "warm", "status").stdout
    finally:
        server.kill()
