"""`retrostride sql` as a SQL user meets it: formats, files, refusals, errors, the prompt."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from retrostride.pipelines.cli import app


@pytest.fixture
def home(imported_export, monkeypatch):
    monkeypatch.setenv("RETROSTRIDE_HOME", str(imported_export.settings.home))
    return imported_export.settings.home


def sql(*arguments: str, input: str | None = None):
    return CliRunner().invoke(app, ["sql", *arguments], input=input)


def test_answers_come_as_csv_json_or_a_parquet_file(home, tmp_path):
    query = "SELECT athlete_id, count(*) AS activities FROM activities GROUP BY 1 ORDER BY 1"
    as_csv = sql(query, "--format", "csv")
    assert as_csv.exit_code == 0 and as_csv.output.splitlines()[0] == "athlete_id,activities"
    as_json = sql(query, "--format", "json")
    assert [r["athlete_id"] for r in json.loads(as_json.output)] == ["alice", "bruno", "chen"]
    written = sql("SELECT * FROM mileage_weekly", "--output", str(tmp_path / "weeks.parquet"))
    assert written.exit_code == 0 and "rows written" in written.output
    weekly = pl.read_parquet(tmp_path / "weeks.parquet")
    assert {"week_start", "direction", "distance_km"} <= set(weekly.columns) and len(weekly) > 0
    assert sql(query, "-o", str(tmp_path / "a.csv")).exit_code == 0  # the format from the suffix
    assert pl.read_csv(tmp_path / "a.csv")["athlete_id"].to_list() == ["alice", "bruno", "chen"]
    refused = sql(query, "--format", "parquet")
    assert refused.exit_code == 2 and "--output" in refused.output


def test_writes_are_refused_in_a_sentence_and_change_nothing(home):
    before = sql("SELECT count(*) AS n FROM activities", "-f", "csv").output
    for statement in (
        "INSERT INTO activities (activity_id) VALUES ('x')",
        "DROP VIEW mileage_weekly",
        "SELECT 1; DELETE FROM activities",
        "COPY activities TO 'out.csv'",
    ):
        result = sql(statement)
        assert result.exit_code == 1 and "Refused" in result.output and "read-only" in result.output, statement
    assert "--output" in sql("COPY activities TO 'out.csv'").output
    assert sql("SELECT count(*) AS n FROM activities", "-f", "csv").output == before


def test_bad_sql_gets_duckdbs_message_and_the_position(home):
    result = sql("SELECT athlete_id, kilometres\nFROM mileage_weekly")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert 'Referenced column "kilometres" not found' in result.output
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("LINE 1:"))
    assert lines[at + 1].index("^") == lines[at].index("kilometres")


def test_the_prompt_runs_statements_ended_by_a_semicolon_and_survives_errors(home):
    session = (
        "SELECT count(*) AS total_activities\nFROM activities;\nSELEC 1;\nDROP TABLE activities;\n.tables\n.quit\n"
    )
    result = sql(input=session)
    assert result.exit_code == 0, result.output
    assert "total_activities" in result.output and "syntax error" in result.output
    assert "Refused" in result.output and "mileage_weekly" in result.output


def test_a_query_from_a_file_or_starting_with_a_comment_is_sql_not_an_option(home, tmp_path):
    (tmp_path / "count.sql").write_text("-- how many activities\nSELECT count(*) AS n FROM activities\n")
    from_file = sql("--file", str(tmp_path / "count.sql"), "-f", "csv")
    assert from_file.exit_code == 0 and from_file.output.startswith("n\n")
    commented = sql("-- how many activities\nSELECT count(*) AS n FROM activities", "-f", "csv")
    assert commented.exit_code == 0 and commented.output == from_file.output
    assert sql("--fromat", "csv").exit_code == 2  # a mistyped option is still one
    assert sql("SELECT 1", "--file", str(tmp_path / "count.sql")).exit_code == 2
    assert sql("--file", str(tmp_path / "missing.sql")).exit_code == 2


NESTED = "SELECT INTERVAL 3 DAY + INTERVAL 2 HOUR AS i, [1, 2] AS l, {'a': 'x', 'b': [1.5]} AS s, MAP {'k': 1} AS m"


def test_intervals_lists_structs_and_maps_print_in_every_format(home, tmp_path):
    table = sql(NESTED)
    assert table.exit_code == 0 and "Traceback" not in table.output, table.output
    assert "3 days 2:00:00" in table.output and "[1, 2]" in table.output and "{'a': 'x', 'b': [1.5]}" in table.output
    as_csv = sql(NESTED, "-f", "csv")
    assert as_csv.exit_code == 0 and as_csv.output.splitlines()[1].startswith('3 days 2:00:00,"[1, 2]"')
    [row] = json.loads(sql(NESTED, "-f", "json").output)
    assert row == {"i": "3 days 2:00:00", "l": [1, 2], "s": {"a": "x", "b": [1.5]}, "m": {"k": 1}}


def test_an_unknown_or_contradicting_output_suffix_is_refused_and_nothing_written(home, tmp_path):
    for arguments in (["-o", str(tmp_path / "x.xlsx")], ["-f", "csv", "-o", str(tmp_path / "x.json")]):
        result = sql("SELECT 1", *arguments)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert list(tmp_path.iterdir()) == []
    assert sql("SELECT 1 AS one", "-o", str(tmp_path / "x.txt")).exit_code == 0
    assert "one" in (tmp_path / "x.txt").read_text()


def test_wide_results_fit_80_columns(home):
    result = sql("SELECT * FROM activities ORDER BY activity_id LIMIT 2")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80, result.output
    assert any(line.startswith("athlete_id ") and "alice" in line for line in lines)  # one column a line, values whole
    narrow = sql("SELECT athlete_id, count(*) AS n FROM activities GROUP BY 1 ORDER BY 1")
    assert "┃ athlete_id ┃" in narrow.output  # still a table when it fits


def test_a_write_is_refused_by_what_it_does_even_behind_a_with(home):
    result = sql("WITH x AS (SELECT 'y' AS id) INSERT INTO activities (activity_id) SELECT id FROM x")
    assert result.exit_code == 1 and "Refused: INSERT changes rows" in result.output and "WITH" not in result.output


def test_sql_reaches_nothing_but_the_warehouse_and_writes_nothing(home, tmp_path):
    """DuckDB's own settings (external access off, extensions off, configuration locked) do the refusing."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not for SQL users")
    attempts = [
        f"SET log_query_path = '{tmp_path / 'log.txt'}'; SELECT 1",
        f"PRAGMA profiling_output = '{tmp_path / 'profile.txt'}'",
        "SET enable_external_access = true",
        f"SELECT * FROM read_text('{secret}')",
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM glob('{tmp_path}/*')",
        "SELECT * FROM 'https://example.com/data.parquet'",
        "INSTALL httpfs",
        "LOAD httpfs",
        f"ATTACH '{tmp_path / 'other.duckdb'}'",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
    ]
    for attempt in attempts:
        result = sql(attempt)
        assert result.exit_code == 1 and "Traceback" not in result.output, (attempt, result.output)
        assert "not for SQL users" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.txt"]


def test_sql_loads_neither_polars_nor_dagster_nor_the_decoders(home):
    probe = (
        "import sys; sys.argv = ['retrostride', 'sql', 'SELECT 1'];"
        "from retrostride.pipelines.cli import main\ntry: main()\nexcept SystemExit: pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'polars', 'dagster', 'pyarrow', 'fitparse', 'gpxpy'}),"
        " sorted(m for m in sys.modules if m.startswith('retrostride.connectors')), file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "RETROSTRIDE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
    )
    assert result.returncode == 0 and result.stderr.strip() == "[] []", result.stderr


def test_a_reader_cannot_load_an_extension_even_one_shipped_with_retrostride(home):
    """Extensions are loaded by path when the lake opens; once the reader is locked down, no LOAD runs."""
    from retrostride.warehouse.access import Reading, read_only_connection
    from retrostride.warehouse.catalog import Catalog, extension_file

    connection = read_only_connection(Reading(Catalog.embedded(home)))
    try:
        with pytest.raises(duckdb.Error, match="disabled"):
            connection.execute(f"LOAD '{extension_file('httpfs')}'")
        assert connection.execute("SELECT count(*) FROM activities").fetchone()[0] > 0
    finally:
        connection.close()
