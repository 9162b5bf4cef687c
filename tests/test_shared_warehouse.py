"""Past one machine, against real servers the tests start: the warehouse's DuckLake catalog in
PostgreSQL with its files on an S3-compatible store (moto), Dagster's storage in PostgreSQL; two
athletes imported at once by two processes; `--as-of` queries; a writer killed mid-transaction; a
home from before DuckLake migrated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import psycopg2
import pytest
from typer.testing import CliRunner

from benchmarks.checksum import differences, table_checksums
from benchmarks.servers import new_bucket, new_database
from retrostride.assets.maintenance import compacted_warehouse
from retrostride.assets.resources import Storage
from retrostride.pipelines.cli import app
from retrostride.pipelines.runs import import_paths, instance_for
from retrostride.pipelines.sample_export import generate_export
from retrostride.warehouse.catalog import Catalog, open_engine
from retrostride.warehouse.maintenance import data_files
from retrostride.warehouse.migrate import MIGRATED
from retrostride.warehouse.store import Warehouse, _ensure_table, is_conflict
from tests.conftest import settings_for
from tests.test_parallel_athletes import import_each_athlete_at_once, installed_instance

RETROSTRIDE = str(Path(sys.executable).with_name("retrostride"))
SCORED = """SELECT count(*) AS activities,
                   count(*) FILTER (WHERE activity_id NOT IN (SELECT activity_id FROM segments)) AS unscored,
                   count(DISTINCT athlete_id) AS athletes FROM activities"""


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    generate_export(root / "export", seed=5, athletes=2, weeks=1, start=date(2024, 5, 6))
    return root / "export"


@pytest.fixture
def shared(postgres_url, s3_endpoint, tmp_path, request):
    """Settings with the catalog in a new PostgreSQL database and the data in a new bucket."""
    catalog = new_database(postgres_url, f"lake_{request.node.name[:40].lower()}")
    _, bucket = new_bucket("warehouse")
    return replace(settings_for(tmp_path), catalog_url=catalog, data_url=f"s3://{bucket}/lake")


def _environment(settings, **more) -> dict[str, str]:
    return {
        **os.environ,
        "RETROSTRIDE_HOME": str(settings.home),
        "RETROSTRIDE_INBOX": str(settings.inbox),
        "RETROSTRIDE_CATALOG": settings.catalog_url,
        "RETROSTRIDE_DATA": settings.data_url,
        "DAGSTER_HOME": str(settings.home / "dagster"),
        "RETROSTRIDE_WORKERS": "1",
        **more,
    }


def test_settings_choose_the_embedded_or_the_shared_catalog(tmp_path):
    embedded = Catalog.configured(tmp_path)
    assert embedded == Catalog(f"sqlite:{tmp_path / 'catalog.sqlite'}", f"{tmp_path / 'warehouse'}/")
    shared = Catalog.configured(tmp_path, "postgresql://u@db:5432/lake", "s3://bucket/prefix")
    assert shared == Catalog("postgres:postgresql://u@db:5432/lake", "s3://bucket/prefix/") and shared.shared
    assert "SNAPSHOT_VERSION 3" in shared.attach_sql(as_of="3") and "READ_ONLY" in shared.attach_sql(as_of="3")
    assert "SNAPSHOT_TIME '2026-12-07 10:00'" in shared.attach_sql(as_of="2026-12-07 10:00")


def test_dagster_keeps_runs_events_and_pool_slots_in_postgres(postgres_url, export, tmp_path, monkeypatch):
    url = new_database(postgres_url, "dagster_storage")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
    settings = settings_for(tmp_path)
    instance = instance_for(settings)
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        import_paths(settings, [export], instance=instance)
        assert instance.event_log_storage.get_concurrency_info("warehouse").slot_count >= 1
    finally:
        instance.dispose()
        os.environ.pop("DAGSTER_HOME", None)
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE status = 'SUCCESS') FROM runs")
        runs, succeeded = cursor.fetchone()
    assert runs >= 1 and succeeded == runs  # the import_files run, recorded in PostgreSQL


def test_a_shared_warehouse_imports_answers_and_keeps_its_files_in_the_object_store(shared, export):
    with dg.instance_for_test() as instance:
        import_paths(shared, [export], instance=instance)
    state = Warehouse(shared.catalog).query(SCORED).row(0, named=True)
    assert state["activities"] > 0 and state["unscored"] == 0 and state["athletes"] == 2
    assert not (shared.home / "catalog.sqlite").exists() and not (shared.home / "warehouse").exists()
    bucket, prefix = shared.data_url.removeprefix("s3://").split("/", 1)
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert any(k.startswith(f"{prefix}/main/records/") and k.endswith(".parquet") for k in keys)
    answer = CliRunner().invoke(
        app, ["sql", "SELECT count(*) AS n FROM activities", "--format", "csv"], env=_environment(shared)
    )
    assert answer.exit_code == 0, answer.output
    assert answer.output.split() == ["n", str(state["activities"])]


def test_as_of_answers_from_the_warehouse_before_an_import(shared, export):
    athletes = sorted(p.name for p in export.iterdir() if p.is_dir())
    with dg.instance_for_test() as instance:
        import_paths(shared, [export / athletes[0]], athlete=athletes[0], instance=instance)
        first = Warehouse(shared.catalog).query("SELECT max(published_snapshot) AS s FROM import_ledger")["s"][0]
        moment = Warehouse(shared.catalog).query("SELECT now()::VARCHAR AS t")["t"][0]
        time.sleep(0.5)
        import_paths(shared, [export / athletes[1]], athlete=athletes[1], instance=instance)
    runner, env = CliRunner(), _environment(shared)

    def athletes_seen(*as_of: str) -> list[str]:
        answer = runner.invoke(
            app, ["sql", "SELECT DISTINCT athlete_id FROM activities ORDER BY 1", "-f", "csv", *as_of], env=env
        )
        assert answer.exit_code == 0, answer.output
        return answer.output.split()[1:]

    assert first is not None
    assert athletes_seen() == athletes
    unnoted = runner.invoke(
        app,
        [
            "sql",
            "SELECT count(*) AS n FROM import_ledger WHERE status = 'ok' AND published_snapshot IS NULL",
            "-f",
            "csv",
        ],
        env=env,
    )
    assert unnoted.output.split() == ["n", "0"]  # readers see which snapshot published each file
    assert athletes_seen("--as-of", str(first)) == athletes[:1]
    assert athletes_seen("--as-of", moment) == athletes[:1]


def test_two_processes_import_two_athletes_at_once_and_both_commit(shared, export, postgres_url, monkeypatch):
    athletes = sorted(p.name for p in export.iterdir() if p.is_dir())
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", new_database(postgres_url, "dagster_two"))
    assert installed_instance(shared) == ("PostgresRunStorage", 2)  # the PostgreSQL dagster.yaml, two warehouse steps
    import_each_athlete_at_once(_environment(shared), export, athletes)
    warehouse = Warehouse(shared.catalog)
    state = warehouse.query(SCORED).row(0, named=True)
    assert state["athletes"] == 2 and state["unscored"] == 0
    files = warehouse.query(
        "SELECT athlete_id, count(*) AS n FROM import_ledger WHERE status = 'ok' GROUP BY 1 ORDER BY 1"
    )
    assert files["athlete_id"].to_list() == athletes
    assert warehouse.query("SELECT count(*) AS n FROM pending_days")["n"][0] == 0
    with dg.instance_for_test() as instance:  # the same files again: nothing changes
        before = table_checksums(warehouse)
        import_paths(replace(shared), [export], instance=instance)
    assert differences(before, table_checksums(warehouse)) == []


@pytest.mark.parametrize("where", ["embedded", "shared"])
def test_two_transactions_for_different_athletes_overlap_and_both_commit_on_postgres_only(where, request, tmp_path):
    """DuckLake by itself: two transactions in two engines, each writing its own athlete's partition,
    overlap in time.  On PostgreSQL both commit.  On the embedded SQLite catalog the later commit
    fails whole ("database is locked": a SQLite reader cannot become a writer once another writer
    committed since it read, duckdb/ducklake#1309) and nothing of it is visible: why the warehouse's
    transactions take turns there (`warehouse.catalog.writer_turn`)."""
    settings = request.getfixturevalue("shared") if where == "shared" else settings_for(tmp_path)
    warehouse = Warehouse(settings.catalog)
    warehouse.ensure_schema()
    ann, bob = open_engine(settings.catalog), open_engine(settings.catalog)
    for engine, athlete in ((ann, "ann"), (bob, "bob")):
        engine.execute("BEGIN TRANSACTION")
        engine.execute(f"DELETE FROM activities WHERE athlete_id = '{athlete}'")
        engine.execute(f"INSERT INTO activities (activity_id, athlete_id) VALUES ('{athlete}-1', '{athlete}')")
    ann.execute("COMMIT")
    if where == "shared":
        bob.execute("COMMIT")
        assert warehouse.query("SELECT count(*) AS n FROM activities")["n"][0] == 2
    else:
        with pytest.raises(duckdb.Error, match="database is locked") as lost:
            bob.execute("COMMIT")
        assert is_conflict(lost.value)  # what Warehouse.write would run again
        assert warehouse.query("SELECT athlete_id FROM activities")["athlete_id"].to_list() == ["ann"]
    ann.close()
    bob.close()


WRITER_AT_ONCE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from retrostride.warehouse.catalog import Catalog
    from retrostride.warehouse.store import Warehouse
    warehouse = Warehouse(Catalog(sys.argv[1], sys.argv[2]))
    athlete, meeting = sys.argv[3], Path(sys.argv[4])
    warehouse.query("SELECT 1")  # the engine open before the two meet
    (meeting / athlete).touch()
    while len(list(meeting.iterdir())) < 2:
        time.sleep(0.01)
    tries = []
    def write(connection):
        tries.append(time.time())
        connection.execute("DELETE FROM activities WHERE athlete_id = ?", [athlete])
        connection.execute("INSERT INTO activities (activity_id, athlete_id) VALUES (?, ?)", [athlete + "-1", athlete])
        time.sleep(1)
    warehouse.write(write)
    print(len(tries), flush=True)
""")


@pytest.mark.parametrize("where", ["embedded", "shared"])
def test_two_processes_writing_two_athletes_at_once_both_commit_on_their_first_try(where, request, tmp_path):
    """Through `Warehouse.write`: on PostgreSQL side by side, on the embedded catalog taking turns;
    either way no transaction is lost nor run twice."""
    settings = request.getfixturevalue("shared") if where == "shared" else settings_for(tmp_path)
    warehouse = Warehouse(settings.catalog)
    warehouse.ensure_schema()
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_AT_ONCE, settings.catalog.metadata, settings.catalog.data, athlete, meeting],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for athlete in ("ann", "bob")
    ]
    answers = [writer.communicate(timeout=300) for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], answers
    assert [out.strip() for out, _ in answers] == ["1", "1"], answers  # each committed on its first try
    rows = warehouse.query("SELECT athlete_id FROM activities ORDER BY 1")["athlete_id"].to_list()
    assert rows == ["ann", "bob"]


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from retrostride.warehouse.catalog import Catalog, open_engine
    from retrostride.warehouse.store import Warehouse
    warehouse = Warehouse(Catalog(sys.argv[1], sys.argv[2]))
    def write(connection):
        connection.execute("INSERT INTO activities (activity_id, athlete_id) VALUES ('half', 'ann')")
        connection.execute("INSERT INTO records (activity_id, athlete_id, distance_m) "
                           "SELECT 'half', 'ann', range FROM range(3000000)")
        print("inserted", flush=True)
        time.sleep(60)
    warehouse.write(write)
""")


@pytest.mark.parametrize("where", ["embedded", "shared"])
def test_a_writer_killed_during_its_transaction_leaves_nothing_visible(where, request, tmp_path):
    settings = request.getfixturevalue("shared") if where == "shared" else settings_for(tmp_path)
    warehouse = Warehouse(settings.catalog)
    warehouse.ensure_schema()
    before = table_checksums(warehouse)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, settings.catalog.metadata, settings.catalog.data],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "inserted"  # its Parquet files are written, its commit not made
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert differences(before, table_checksums(warehouse)) == []
    fresh = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from retrostride.warehouse.store import Warehouse; "
            "from retrostride.warehouse.catalog import Catalog; "
            "print(Warehouse(Catalog(sys.argv[1], sys.argv[2])).query('SELECT count(*) AS n FROM records')['n'][0])",
            settings.catalog.metadata,
            settings.catalog.data,
        ],
        capture_output=True,
        text=True,
    )
    assert fresh.stdout.strip() == "0", fresh.stderr  # another process sees the same: nothing half-written
    warehouse.write(lambda c: c.execute("INSERT INTO activities (activity_id, athlete_id) VALUES ('whole', 'ann')"))
    assert warehouse.query("SELECT activity_id FROM activities")["activity_id"].to_list() == ["whole"]


def test_a_home_from_before_ducklake_migrates_with_nothing_lost(imported_export, tmp_path):
    """The old layout: every table in one DuckDB file, `warehouse.duckdb`, and its copy `published.duckdb`."""
    settings = settings_for(tmp_path)
    settings.home.mkdir(parents=True)
    legacy = settings.legacy_warehouse
    source = imported_export.warehouse
    with duckdb.connect(str(legacy)) as old:
        for table, columns in source.tables.items():
            _ensure_table(old, table, columns)
            old.register("rows", source.query(f"SELECT * FROM {table}"))
            old.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows")
            old.unregister("rows")
    legacy.with_name("published.duckdb").write_bytes(legacy.read_bytes())
    answer = CliRunner().invoke(
        app, ["migrate"], env=_environment(settings, RETROSTRIDE_CATALOG="", RETROSTRIDE_DATA="")
    )
    assert answer.exit_code == 0, answer.output
    assert differences(table_checksums(source), table_checksums(Warehouse(settings.catalog))) == []
    assert not legacy.exists() and legacy.with_name(legacy.name + MIGRATED).exists()
    assert legacy.with_name("published.duckdb" + MIGRATED).exists()
    again = CliRunner().invoke(
        app, ["migrate"], env=_environment(settings, RETROSTRIDE_CATALOG="", RETROSTRIDE_DATA="")
    )
    assert again.exit_code == 0 and "Nothing to migrate" in again.output


def test_the_maintenance_asset_merges_small_files_and_keeps_every_row(tmp_path):
    settings = settings_for(tmp_path)
    warehouse = Warehouse(settings.catalog)
    warehouse.ensure_schema()
    for day in range(1, 7):  # six publishes of one activity each: six small files
        warehouse.write(
            lambda c, day=day: c.execute(
                "INSERT INTO activities (activity_id, athlete_id, start_day) "
                "SELECT 'a' || i || '-' || ?, 'ann', DATE '2024-05-01' + ? FROM range(20) t(i)",
                [day, day],
            )
        )
    before, files = table_checksums(warehouse), data_files(warehouse)
    result = dg.materialize([compacted_warehouse], resources={"storage": Storage.from_settings(settings)})
    assert result.success
    metadata = result.asset_materializations_for_node("compacted_warehouse")[0].metadata
    assert metadata["files_before"].value == files >= 6 and metadata["files_after"].value < files
    assert differences(before, table_checksums(warehouse)) == []
