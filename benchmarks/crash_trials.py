"""Kill real `retrostride import` processes at random moments and check what the next run makes of it.

A trial starts the CLI in a fresh RETROSTRIDE_HOME / DAGSTER_HOME, SIGKILLs its whole process group
(the importer and its decoder workers) at a random moment of the import's working time, runs the
same import again to completion, and compares the warehouse (row counts and content checksums of
every table, `benchmarks.checksum`) and the lake with a clean, uninterrupted import.

Used by tests/test_crash_safety.py (one trial, killed halfway through) and benchmarks/kill_imports.py (as
many as asked, at random moments).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from benchmarks.checksum import differences, table_checksums
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.ledger_copies import replay_ledger
from retrostride.warehouse.packs import current_packs
from retrostride.warehouse.schema import LEDGER
from retrostride.warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[1]
CLI = "from pipelines.cli import app; app()"
#: Exit codes of an import that ran to its end: 1 says some files failed, as the export's damaged ones do.
COMPLETED = (0, 1)


def build_export(folder: Path, corpora: Path, seed: int = 5, weeks: int = 2) -> Path:
    """A small export that crosses a month boundary, plus corpus files that fail, recover, duplicate
    and fall outside the calendar: every path of the importer."""
    from retrostride.pipelines.sample_export import generate_export

    export = folder / "export"
    generate_export(
        export,
        seed=seed,
        athletes=2,
        weeks=weeks,
        start=date(2024, 1, 29) - timedelta(weeks=weeks - 1),
        sample_interval_s=5,
        truth_dir=folder / "truth",
    )
    fit = corpora / "fit" / "python-fitparse"
    extra = export / "corpus"
    extra.mkdir()
    for name in (
        "activity-filecrc.fit",
        "strava-android-app-201.10-b1218918.fit",
        "WeightScaleSingleUser.fit",
        "activity-settings-corruptheader.fit",
    ):
        shutil.copy(fit / name, extra / name)
    shutil.copy(next(export.glob("*/*.fit")), extra / "a-copy.fit")
    shutil.copy(corpora / "gpx" / "gpxpy" / "Mojstrovka.gpx", extra / "Mojstrovka.gpx")
    (extra / "notes.txt").write_text("not an activity\n")
    return export


@dataclass
class Run:
    home: Path
    returncode: int | None
    started_work_s: float | None  # when the warehouse catalog appeared
    elapsed_s: float


def environment(home: Path, workers: int = 2) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETROSTRIDE_", "DAGSTER_"))}
    env.update(
        RETROSTRIDE_HOME=str(home / "data"),
        DAGSTER_HOME=str(home / "dagster"),
        RETROSTRIDE_INBOX=str(home / "inbox"),
        RETROSTRIDE_WORKERS=str(workers),
        RETROSTRIDE_WARM_IDLE_S="0",  # the import runs in the CLI the trial kills, and no server outlives it
        PYTHONPATH=str(ROOT),
        COLUMNS="200",
    )
    return env


def run_import(home: Path, export: Path, kill_after_work_s: float | None = None, timeout_s: float = 600) -> Run:
    """`retrostride import export` in `home`; SIGKILLed `kill_after_work_s` after it starts working."""
    home.mkdir(parents=True, exist_ok=True)
    warehouse = home / "data" / "catalog.sqlite"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "import", str(export)],
        env=environment(home),
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    work_started = None
    try:
        while process.poll() is None:
            now = time.monotonic()
            if work_started is None and warehouse.exists():
                work_started = now
            if kill_after_work_s is not None and work_started is not None and now - work_started >= kill_after_work_s:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                break
            if now - started > timeout_s:
                raise TimeoutError(f"import in {home} still running after {timeout_s} s")
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return Run(
        home, process.returncode, None if work_started is None else work_started - started, time.monotonic() - started
    )


def lake_problems(home: Path) -> list[str]:
    """What a reader of the lake would find wrong: a ledger row whose frames or raw copy are missing,
    a visible decoded folder missing a frame, a rejected file without its quarantine copy, days never
    published."""
    lake, warehouse = Lake(home / "data"), Warehouse.embedded(home / "data")
    problems = []
    rows = warehouse.query(
        "SELECT sha256, path, status, format, reason, activities, body_measurements FROM import_ledger"
    ).rows()
    packs = current_packs(warehouse)
    for sha, path, status, fmt, reason, activities, measurements in rows:
        if status in ("ok", "partial"):
            frames = lake.read_file(sha, packs[sha])
            counted = {"activities": activities, "body_measurements": measurements}
            if any(len(frames.get(name, ())) != (n or 0) for name, n in counted.items()):
                problems.append(f"{path}: {status} in the ledger, its rows in the lake are not the ones it counts")
            if not lake.raw_path(sha, fmt).exists():
                problems.append(f"{path}: {status} in the ledger, raw copy missing")
        if status == "failed" and not (reason or "").startswith("refused"):
            copy = lake.quarantine_dir() / f"{sha[:12]}-{Path(path).name}"
            if not copy.exists() or not Path(f"{copy}.reason.txt").exists():
                problems.append(f"{path}: failed, no quarantine copy with its reason")
    for folder in lake.decoded_root.glob("*/*") if lake.decoded_root.exists() else []:
        if folder.name.startswith("."):
            continue
        for frame in folder.glob("*.parquet"):
            try:
                pl.read_parquet_schema(frame)
            except Exception as error:  # a torn write would show here
                problems.append(f"{frame}: a visible frame that cannot be read ({error})")
    pending = warehouse.query("SELECT count(*) AS n FROM pending_days")["n"][0]
    if pending:
        problems.append(f"{pending} day(s) still waiting to be published")
    if ledger_from_copies(lake) != set(warehouse.query("SELECT sha256, path, status FROM import_ledger").rows()):
        problems.append("the ledger copies in the lake do not give the warehouse's ledger back")
    return problems


def ledger_from_copies(lake: Lake) -> set[tuple]:
    """(sha256, path, status) of the ledger `retrostride rebuild` would recover from the lake."""
    connection = duckdb.connect()
    try:
        connection.register("empty_ledger", pl.DataFrame(schema=LEDGER))
        connection.execute("CREATE TABLE import_ledger AS SELECT * FROM empty_ledger")
        replay_ledger(connection, lake)
        return set(connection.execute("SELECT sha256, path, status FROM import_ledger").fetchall())
    finally:
        connection.close()


@dataclass
class Trial:
    kill_after_s: float
    killed: bool  # False when the import finished before the kill came
    differences: list[str]
    problems: list[str]

    @property
    def survived(self) -> bool:
        return not self.differences and not self.problems


def clean_import(folder: Path, export: Path) -> tuple[dict, Run]:
    """The reference: one uninterrupted import, its checksums and timing."""
    run = run_import(folder / "clean", export)
    if run.returncode not in COMPLETED:
        raise RuntimeError(f"the clean import failed with exit code {run.returncode}")
    problems = lake_problems(run.home)
    if problems:
        raise RuntimeError(f"the clean import left problems: {problems}")
    return table_checksums(Warehouse.embedded(run.home / "data")), run


def resume_in_process(home: Path, export: Path) -> int:
    """The next run, in this process (saves the interpreter's start), on the killed run's homes."""
    import dagster as dg

    from retrostride.assets.settings import Settings
    from retrostride.pipelines.runs import import_paths

    settings = Settings(
        home=home / "data", inbox=home / "inbox", athletes_file=home / "data" / "athletes.toml", workers=2
    )
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        import_paths(settings, [export], instance=instance)
    return 0


def kill_trial(folder: Path, export: Path, reference: dict, kill_after_s: float, resume=None) -> Trial:
    """Kill an import after `kill_after_s` of work, resume it (by default with the CLI), compare with `reference`."""
    killed = run_import(folder, export, kill_after_work_s=kill_after_s)
    returncode = resume(folder, export) if resume else run_import(folder, export).returncode
    if returncode not in COMPLETED:
        return Trial(
            kill_after_s, killed.returncode != 0, [f"the resumed import failed with exit code {returncode}"], []
        )
    actual = table_checksums(Warehouse.embedded(folder / "data"))
    return Trial(kill_after_s, killed.returncode != 0, differences(reference, actual), lake_problems(folder))


def working_time(run: Run) -> float:
    """Seconds from the warehouse file's appearance to the import's end."""
    return run.elapsed_s - (run.started_work_s or 0.0)


def kill_moments(reference: Run, trials: int, seed: int) -> list[float]:
    """Random moments (seconds after the warehouse file appears) over the import's working time."""
    rng = random.Random(seed)
    return [rng.uniform(0.0, working_time(reference)) for _ in range(trials)]
