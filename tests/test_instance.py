"""The Dagster instance retrostride opens for its runs (`pipelines.runs.instance_for`)."""

from __future__ import annotations

from retrostride.pipelines.runs import instance_for
from tests.conftest import settings_for

#: SQLite's `PRAGMA synchronous` values.
FULL, NORMAL = 2, 1


def test_its_sqlite_storages_commit_without_waiting_for_the_disk(tmp_path, monkeypatch):
    """Each of a run's ~50 events is a commit of its own: with the write-ahead log, NORMAL keeps the
    files consistent without an fsync per commit."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    instance = instance_for(settings_for(tmp_path))
    try:
        with instance.event_log_storage.index_connection() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == NORMAL
        with instance.run_storage.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == NORMAL
    finally:
        instance.dispose()
