"""Every published table is written and deleted by athlete (issue 19): `laps` and `developer_fields`
carry `athlete_id` and are partitioned by it; a home made before they had it is migrated with nothing
lost; `backfill` and `reprocess` for some athletes leave every other athlete's rows and files alone."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from benchmarks.checksum import differences, table_checksums
from retrostride.assets.settings import Settings
from retrostride.pipelines.backfills import current_model_versions
from retrostride.pipelines.cli import app
from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.store import Warehouse
from tests.conftest import copied_home
from tests.test_developer_fields import run_with_developer_fields  # noqa: F401 (a fixture)

GIVEN_ATHLETES = ("laps", "developer_fields")  # the tables that had no athlete_id before


@pytest.fixture(scope="module")
def prepared_home(imported_export, run_with_developer_fields, tmp_path_factory) -> Settings:  # noqa: F811
    """A copy of the imported export's home (three athletes) with a run carrying developer fields added
    for one: imported once, copied by each test (`home`)."""
    settings = copied_home(imported_export, tmp_path_factory.mktemp("partitions"))
    with dg.instance_for_test() as instance:
        import_paths(settings, [run_with_developer_fields], athlete="dev", instance=instance)
    return settings


@pytest.fixture
def home(prepared_home, tmp_path) -> Settings:
    """A copy of `prepared_home` of the test's own, to change."""
    return copied_home(prepared_home, tmp_path / "copy")


def cli(settings: Settings, *arguments: str):
    environment = {
        "RETROSTRIDE_HOME": str(settings.home),
        "RETROSTRIDE_INBOX": str(settings.inbox),
        "DAGSTER_HOME": str(settings.dagster_home),
        "RETROSTRIDE_WORKERS": "1",
        "RETROSTRIDE_CATALOG": "",
        "RETROSTRIDE_DATA": "",
    }
    answer = CliRunner().invoke(app, list(arguments), env=environment)
    assert answer.exit_code == 0, answer.output
    return " ".join(answer.output.split())  # as one line, however the terminal wrapped it


def files_of(warehouse: Warehouse, table: str) -> list[str]:
    """The current data and delete files of `table`."""
    rows = warehouse.query(f"SELECT data_file, delete_file FROM ducklake_list_files('warehouse', '{table}')")
    return sorted(str(path) for row in rows.iter_rows() for path in row if path is not None)


def athletes_files(warehouse: Warehouse, athlete: str) -> dict[str, list[str]]:
    """Per table partitioned by athlete: the files of `athlete`'s partition (their rows are only there)."""
    return {
        table: [path for path in files_of(warehouse, table) if f"athlete_id={athlete}" in path]
        for table, columns in warehouse.tables.items()
        if "athlete_id" in columns
    }


def as_before_laps_had_athletes(settings: Settings) -> None:
    """The home as the schema before this change left it: `laps` and `developer_fields` without
    `athlete_id` (nor a partition), and the lake's packs of them without it too."""
    warehouse = Warehouse(settings.catalog)
    for table in GIVEN_ATHLETES:
        warehouse.write(lambda c, t=table: c.execute(f"CREATE TABLE {t}_old AS SELECT * EXCLUDE (athlete_id) FROM {t}"))
        warehouse.write(lambda c, t=table: c.execute(f"DROP TABLE {t}"))
        warehouse.write(lambda c, t=table: c.execute(f"ALTER TABLE {t}_old RENAME TO {t}"))
    for path in (settings.home / "lake").rglob("*.parquet"):
        if path.stem in GIVEN_ATHLETES:
            rewritten = path.with_suffix(".old")
            duckdb.execute(
                f"COPY (SELECT * EXCLUDE (athlete_id) FROM read_parquet('{path}')) TO '{rewritten}' (FORMAT parquet)"
            )
            rewritten.replace(path)


def test_a_home_from_before_laps_had_athletes_migrates_with_nothing_lost(home):
    warehouse = Warehouse(home.catalog)
    expected = table_checksums(warehouse)
    counts = {t: warehouse.query(f"SELECT count(*) AS n FROM {t}")["n"][0] for t in GIVEN_ATHLETES}
    assert all(n > 0 for n in counts.values()), counts
    as_before_laps_had_athletes(home)
    assert "athlete_id" not in warehouse.query("SELECT * FROM laps LIMIT 0").columns

    said = cli(home, "migrate")
    assert f"laps ({counts['laps']} rows)" in said and f"developer_fields ({counts['developer_fields']} rows)" in said
    assert differences(expected, table_checksums(warehouse)) == []
    for table in GIVEN_ATHLETES:
        assert warehouse.query(f"SELECT count(*) AS n FROM {table} WHERE athlete_id IS NULL")["n"][0] == 0
        files = files_of(warehouse, table)
        written = [path for path in files if "athlete_id=" in path]
        assert written and len(written) == len(files), files  # every row in its athlete's partition
    assert "Nothing to migrate" in cli(home, "migrate")

    # the lake's packs from before still publish every lap and developer value with its athlete
    first, last = warehouse.query("SELECT min(start_day) AS a, max(start_day) AS b FROM activities").row(0)
    cli(home, "backfill", "--start", str(first), "--end", str(last))
    assert differences(expected, table_checksums(warehouse)) == []


def test_reprocess_for_one_athlete_leaves_the_others_rows_and_files_alone(home):
    warehouse = Warehouse(home.catalog)
    athletes = warehouse.query("SELECT DISTINCT athlete_id FROM activities ORDER BY 1")["athlete_id"].to_list()
    mine, others = athletes[0], athletes[1:]
    assert len(others) >= 2
    for table in ("segments", "activity_energy"):  # a model change: every athlete's rows are stale
        warehouse.write(lambda c, t=table: c.execute(f"UPDATE {t} SET model_version = 'old'"))
    before = {a: (table_checksums(warehouse, athlete=a), athletes_files(warehouse, a)) for a in others}
    mine_before = athletes_files(warehouse, mine)

    said = cli(home, "reprocess", "--athlete", mine)
    assert "stale" in said
    current = current_model_versions(home)["segments"]
    versions = warehouse.query("SELECT athlete_id, list(DISTINCT model_version) AS v FROM segments GROUP BY 1")
    assert dict(versions.iter_rows()) == {mine: [current], **{a: ["old"] for a in others}}
    for athlete in others:  # byte for byte: the same files, no delete file added
        assert (table_checksums(warehouse, athlete=athlete), athletes_files(warehouse, athlete)) == before[athlete]
    assert athletes_files(warehouse, mine)["segments"] != mine_before["segments"]


def test_a_backfill_for_some_athletes_replaces_only_their_partitions(home):
    warehouse = Warehouse(home.catalog)
    athletes = warehouse.query("SELECT DISTINCT athlete_id FROM activities ORDER BY 1")["athlete_id"].to_list()
    chosen, other = athletes[:2], athletes[2]
    expected = table_checksums(warehouse)
    before = {a: athletes_files(warehouse, a) for a in athletes}
    first, last = warehouse.query("SELECT min(start_day) AS a, max(start_day) AS b FROM activities").row(0)
    said = cli(
        home, "backfill", "--start", str(first), "--end", str(last), "--athlete", chosen[0], "--athlete", chosen[1]
    )
    assert f"athletes {', '.join(chosen)}" in said
    assert differences(expected, table_checksums(warehouse)) == []  # the same rows again
    assert athletes_files(warehouse, other) == before[other]
    for athlete in chosen:
        assert athletes_files(warehouse, athlete)["records"] != before[athlete]["records"]


def test_reprocess_and_backfill_say_which_athletes_they_take():
    for command in ("reprocess", "backfill"):
        answer = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        said = " ".join(answer.output.replace("│", " ").split())
        assert answer.exit_code == 0 and "--athlete" in said and "Default: every athlete." in said, said
