"""Runs in-process on the persistent Dagster instance: `retrostride import` runs the `import_files` job here."""

from __future__ import annotations

import os
import socket
import sqlite3
import tempfile
from datetime import date
from importlib import resources
from pathlib import Path

import dagster as dg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from retrostride.assets.resources import RunProgress, no_progress
from retrostride.assets.settings import Settings
from retrostride.connectors.object_store import is_object_url
from retrostride.pipelines.definitions import build_definitions
from retrostride.pipelines.import_job import published_ranges
from retrostride.pipelines.warm_launcher import process_alive
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.migrate import ensure_migrated
from retrostride.warehouse.rebuild import Rebuilt, rebuild_warehouse
from retrostride.warehouse.store import Warehouse

#: Dagster's console log off in the terminal (its lines stay in the run's log): the CLI shows its own
#: progress and one-line warnings, and a failure as one sentence.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

#: One planned-materialization event per asset and run instead of one per asset and month, each
#: a write to run storage before the run's first step (README, "Partitions are monthly").  Dagster's own switch, inherited by `retrostride ui`'s webserver and daemon.  Its price:
#: the months of a failed range run show as missing rather than failed in the UI's partition bar
#: (the run shows failed, and `pending_days` has the next import publish them again).
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")


def instance_for(settings: Settings) -> dg.DagsterInstance:
    """The persistent Dagster instance under DAGSTER_HOME, so runs show up in the UI.

    Installs the shipped `dagster.yaml` (the warehouse pool, run retries; with DAGSTER_POSTGRES_URL
    set, `dagster-postgres.yaml`'s storage in PostgreSQL too) unless the user wrote their own: a copy
    an older version installed is replaced.
    """
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    shipped = shipped_instance_config(bool(os.environ.get("DAGSTER_POSTGRES_URL")))
    marker = shipped.splitlines()[0]
    if not config.exists() or (config.read_text().splitlines()[:1] == [marker] and config.read_text() != shipped):
        config.write_text(shipped)
    os.environ.setdefault("DAGSTER_HOME", str(home))
    sqlite_commits_without_fsync()
    instance = dg.DagsterInstance.from_config(str(home))
    _ensure_pool(instance)
    reap_dead_runs(instance)
    return instance


def sqlite_commits_without_fsync() -> None:
    """From now on in this process, Dagster's SQLite storages (write-ahead log) commit without waiting
    for the disk (`synchronous = NORMAL`): a run stores ~50 events, each its own commit, which waited
    for an fsync (README, Performance). The files stay consistent; a power cut can lose the last events."""
    if not event.contains(Engine, "connect", _commit_without_fsync):
        event.listen(Engine, "connect", _commit_without_fsync)


def _commit_without_fsync(connection, _record) -> None:
    if isinstance(connection, sqlite3.Connection):
        connection.execute("PRAGMA synchronous = NORMAL")


def shipped_instance_config(postgres: bool) -> str:
    """The dagster.yaml retrostride installs: pools, run queue, retries; and PostgreSQL storage if asked."""
    folder = resources.files("retrostride.pipelines")
    text = (folder / "dagster.yaml").read_text()
    return text + "\n" + (folder / "dagster-postgres.yaml").read_text() if postgres else text


#: In-process runs record their process, so a later CLI can tell that one was killed holding the pool.
PID_TAG, HOST_TAG = "retrostride/pid", "retrostride/host"


def process_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def reap_dead_runs(instance: dg.DagsterInstance, pool: str = "warehouse") -> list[str]:
    """Free the pool slots of in-process runs whose process is gone (a CLI killed mid-run), and mark
    those runs failed: otherwise the slot stays claimed and every later run waits forever."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits or pool not in storage.get_concurrency_keys():
        return []
    info = storage.get_concurrency_info(pool)
    reaped = []
    for run_id in {s.run_id for s in info.claimed_slots} | {s.run_id for s in info.pending_steps}:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
            if not pid or host != socket.gethostname() or process_alive(int(pid)):
                continue
            instance.report_run_failed(run, f"its process {pid} died while the run held the warehouse")
        storage.free_concurrency_slots_for_run(run_id)
        reaped.append(run_id)
    return reaped


def _ensure_pool(instance: dg.DagsterInstance, pool: str = "warehouse") -> None:
    """Create the pool's row at its default limit now: two runs starting together on a fresh instance
    could otherwise both find no limit and both write (seen in tests/test_backfill.py)."""
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits and pool not in storage.get_concurrency_keys():
        try:
            storage.initialize_concurrency_limit_to_default(pool)
        except Exception:  # another process created it first
            pass


def import_paths(
    settings: Settings,
    paths: list[Path | str],
    athlete: str | None = None,
    progress: RunProgress = no_progress,
    instance: dg.DagsterInstance | None = None,
) -> list[tuple[date, date]]:
    """Import `paths` (files, folders, `s3://bucket/prefix` URLs) in one run of the `import_files` job, the
    one the daemon's sensors request; returns the published month ranges."""
    if instance is None:
        instance = instance_for(settings)  # which has reaped the dead runs
    else:
        reap_dead_runs(instance)
    ensure_migrated(settings.legacy_warehouse, settings.catalog)
    defs = build_definitions(settings, progress)
    config = {"paths": [p if is_object_url(p) else str(Path(p).resolve()) for p in paths], "athlete": athlete}
    result = defs.resolve_job_def("import_files").execute_in_process(
        run_config={"ops": {"import_new_files": {"config": config}}, **QUIET}, instance=instance, tags=process_tags()
    )
    return published_ranges(result)


def rebuild(settings: Settings, instance: dg.DagsterInstance | None = None) -> tuple[Rebuilt, list[tuple[date, date]]]:
    """Recreate the warehouse from the lake (`warehouse.rebuild`: the damaged file is kept aside),
    then run the `import_files` job on an empty folder, which publishes every day the rebuilt ledger
    left pending; what was rebuilt and the published month ranges."""
    rebuilt = rebuild_warehouse(Warehouse(settings.catalog), Lake(settings.home))
    with tempfile.TemporaryDirectory(dir=settings.home) as nothing_new:
        return rebuilt, import_paths(settings, [nothing_new], instance=instance)


RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run of an asset job cover the monthly partitions first..last (first days of months)."""
    return {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}
