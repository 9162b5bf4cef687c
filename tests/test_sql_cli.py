"""`retrostride sql` as a SQL user meets it: formats, files, refusals, errors, the prompt."""

import json

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
    assert refused.exit_code == 1 and "--output" in refused.output


def test_writes_are_refused_in_a_sentence_and_change_nothing(home):
    before = sql("SELECT count(*) AS n FROM activities", "-f", "csv").output
    for statement in ("INSERT INTO activities (activity_id) VALUES ('x')", "DROP VIEW mileage_weekly",
                      "SELECT 1; DELETE FROM activities", "COPY activities TO 'out.csv'"):
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
    session = "SELECT count(*) AS total_activities\nFROM activities;\nSELEC 1;\nDROP TABLE activities;\n.tables\n.quit\n"
    result = sql(input=session)
    assert result.exit_code == 0, result.output
    assert "total_activities" in result.output and "syntax error" in result.output
    assert "Refused" in result.output and "mileage_weekly" in result.output
