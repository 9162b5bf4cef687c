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
from retrostride.pipelines.cli import app
from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.store import Warehouse
from tests.conftest import copied_home
from tests.test_developer_fields import run_with_developer_fields  # noqa: F401 (a fixture)

GIVEN_ATHLETES = ("laps", "developer_fields")  # the tables that had no athlete_id before


@pytest.fixture
def home(imported_export, run_with_developer_fields, tmp_path) -> Settings:  # noqa: F811
    """A copy of the imported export's home (three athletes) with a run carrying developer fields added for one."""
    settings = copied_home(imported_export, tmp_path / "copy")
    with dg.instance_for_test() as instance:
        import_paths(settings, [run_with_developer_fields], athlete="dev", instance=instance)
    return settings


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
