"""Latency: a file dropped into the inbox, until `retrostride sql` sees it; one `retrostride import`;
one `retrostride sql "select 1"`.

    python benchmarks/latency.py [--drops 10] [--poll-s DEFAULT]

1. Starts the real Dagster daemon (`dagster-daemon run -w workspace.yaml`) on a fresh home with the
   shipped dagster.yaml and default settings (`--poll-s` overrides RETROSTRIDE_POLL_S), then drops
   real corpus runs into the inbox one at a time, each as a new file (its bytes with a unique
   trailing comment for GPX, or a corpus FIT file not yet imported), and times each from the moment
   it is in the inbox until a query on the readers' warehouse counts its activity: p50 and max.
2. `retrostride import FILE` as a whole process (start-up included) into a warmed home, p50 and max
   over 5: cold (no warm import server, RETROSTRIDE_WARM_IDLE_S=0: every import starts Python,
   Dagster and the run from nothing) and warm (handed to the home's server, which the first import
   started), the warm ones back to back and with a pause between them (the server redraws the
   report after it answers; an import arriving meanwhile waits for that redraw).
3. `retrostride sql "select 1"` as a whole process: p50 over 10.
Prints the machine, the load before each part, and every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpora import CORPORA

BIN = Path(sys.executable).parent
#: Real runs, each of a different day, so each drop adds one activity.
DROPS = [
    "fit/python-fitparse/activity-small-fenix2-run.fit",
    "fit/python-fitparse/garmin-fenix-5-run.fit",
    "fit/python-fitparse/2013-02-06-12-11-14.fit",
    "fit/python-fitparse/2015-10-13-08-43-15.fit",
    "fit/python-fitparse/20170518-191602-1740899583.fit",
    "fit/python-fitparse/garmin-fenix-5-walk.fit",
    "fit/python-fitparse/garmin-edge-820-bike.fit",
    "fit/python-fitparse/garmin-fenix-5-bike.fit",
    "fit/python-fitparse/2019-02-17-062644-ELEMNT-297E-195-0.fit",
    "fit/python-fitparse/Activity.fit",
    "tcx/python-tcxparser/test.tcx",
    "gpx/gpxpy/korita-zbevnica.gpx",
]


def machine() -> str:
    return f"{platform.node()} ({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()})"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def environment(home: Path, poll_s: int | None, warm: bool = False) -> dict[str, str]:
    env = {
        **os.environ,
        "RETROSTRIDE_HOME": str(home / "data"),
        "RETROSTRIDE_INBOX": str(home / "inbox"),
        "DAGSTER_HOME": str(home / "dagster"),
        "RETROSTRIDE_WARM_IDLE_S": "600" if warm else "0",
    }
    env.pop("RETROSTRIDE_POLL_S", None)
    if poll_s is not None:
        env["RETROSTRIDE_POLL_S"] = str(poll_s)
    return env


def count_activities(env: dict[str, str]) -> int:
    """Activities the readers' warehouse holds, asked the way a user asks (`retrostride sql`)."""
    out = subprocess.run(
        [str(BIN / "retrostride"), "sql", "SELECT count(*) AS n FROM activities", "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return 0
    lines = out.stdout.strip().splitlines()
    return int(lines[-1]) if lines and lines[-1].isdigit() else 0


def inbox_latency(drops: int, poll_s: int | None) -> list[float]:
    home = Path(tempfile.mkdtemp(prefix="latency-"))
    env = environment(home, poll_s)
    inbox = home / "inbox" / "ann"
    inbox.mkdir(parents=True)
    # the shipped instance config, as `retrostride ui` installs it
    subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "from retrostride.assets.settings import Settings; "
            "from retrostride.pipelines.runs import instance_for; instance_for(Settings.from_env())",
        ],
        env=env,
        check=True,
    )
    log = open(home / "daemon.log", "w")  # noqa: SIM115 - the daemon writes it until the finally below
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    seconds = []
    try:
        time.sleep(10)  # the daemon's code server and first sensor tick
        for number, name in enumerate(DROPS[:drops]):
            before = count_activities(env)
            target = inbox / f"{number:02}-{Path(name).name}"
            shutil.copy(CORPORA / name, target.with_suffix(".part"))
            target.with_suffix(".part").rename(target)  # appears whole, as a sync client's rename does
            dropped = time.monotonic()
            while count_activities(env) <= before:
                if time.monotonic() - dropped > 180:
                    raise SystemExit(f"{name}: not visible after 180 s; see {home / 'daemon.log'}")
                time.sleep(0.2)
            seconds.append(time.monotonic() - dropped)
            print(f"  drop {number + 1:2}: {name} visible after {seconds[-1]:.1f} s", flush=True)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        log.close()
    shutil.rmtree(home, ignore_errors=True)
    return seconds


def warm_home(prefix: str, warm: bool = False) -> tuple[Path, dict[str, str]]:
    """A home with one file imported: the warehouse and the Dagster instance exist (with `warm`, the
    home's import server too, once it answers)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    env = environment(home, None, warm)
    subprocess.run(
        [str(BIN / "retrostride"), "import", str(CORPORA / DROPS[0]), "--athlete", "ann"],
        env=env,
        check=True,
        capture_output=True,
    )
    while (
        warm
        and "running"
        not in subprocess.run(
            [str(BIN / "retrostride"), "warm", "status"], env=env, capture_output=True, text=True
        ).stdout
    ):
        time.sleep(0.2)
    return home, env


def timed(commands: list[list[str]], env: dict[str, str], pause_s: float = 0.0) -> list[float]:
    seconds = []
    for command in commands:
        time.sleep(pause_s)
        started = time.monotonic()
        subprocess.run(command, env=env, check=True, capture_output=True)
        seconds.append(time.monotonic() - started)
    return seconds


def one_import(repeats: int, warm: bool = False, pause_s: float = 0.0) -> list[float]:
    home, env = warm_home("latency-import-", warm)
    commands = [
        [str(BIN / "retrostride"), "import", str(CORPORA / name), "--athlete", "ann"] for name in DROPS[1 : 1 + repeats]
    ]
    try:
        return timed(commands, env, pause_s)
    finally:
        subprocess.run([str(BIN / "retrostride"), "warm", "stop"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def one_query(repeats: int) -> list[float]:
    home, env = warm_home("latency-sql-")
    seconds = timed([[str(BIN / "retrostride"), "sql", "select 1"]] * repeats, env)
    shutil.rmtree(home, ignore_errors=True)
    return seconds


def summary(name: str, seconds: list[float]) -> str:
    return f"{name}: p50 {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s, min {min(seconds):.2f} s (n={len(seconds)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument(
        "--poll-s", type=int, default=None, help="RETROSTRIDE_POLL_S for the daemon (default: the product's)"
    )
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument(
        "--pause-s", type=float, default=3.0, help="seconds between warm imports in the paused series (default 3)"
    )
    args = parser.parse_args()
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}")
    results = []
    if not args.skip_daemon:
        print(f"1. Inbox to SQL through the real daemon (load {load()}):", flush=True)
        results.append(summary("inbox → visible in SQL", inbox_latency(args.drops, args.poll_s)))
    print(f"2. retrostride import FILE, whole process, cold (load {load()}):", flush=True)
    results.append(summary("retrostride import FILE, cold", one_import(5)))
    print(f"   warm, back to back (load {load()}):", flush=True)
    results.append(summary("retrostride import FILE, warm, back to back", one_import(5, warm=True)))
    print(f"   warm, {args.pause_s:g} s between imports (load {load()}):", flush=True)
    results.append(summary("retrostride import FILE, warm, paused", one_import(5, warm=True, pause_s=args.pause_s)))
    print(f'3. retrostride sql "select 1", whole process (load {load()}):', flush=True)
    results.append(summary('retrostride sql "select 1"', one_query(10)))
    print("\n".join(results))
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
