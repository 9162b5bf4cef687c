"""The retrostride command as a user runs it: import with a summary, then ask SQL."""

from datetime import date

import pytest
from typer.testing import CliRunner

from retrostride.pipelines.cli import app
from retrostride.pipelines.planning import months_of, plan_ranges
from tests.conftest import CORPORA

FIT = CORPORA / "fit" / "python-fitparse"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTRIDE_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("RETROSTRIDE_INBOX", str(tmp_path / "inbox"))
    monkeypatch.setenv("RETROSTRIDE_WORKERS", "1")
    return tmp_path


def test_import_prints_a_summary_then_sql_answers(home):
    runner = CliRunner()
    result = runner.invoke(app, ["import", str(FIT / "activity-small-fenix2-run.fit"), str(FIT / "activity-filecrc.fit"), "--athlete", "ann"])
    assert result.exit_code == 0, result.output
    assert "1 imported" in result.output and "1 failed" in result.output
    assert "CRC mismatch" in result.output and "[computed: 0xA1D5" in result.output.replace("\n", "")
    again = runner.invoke(app, ["import", str(FIT / "activity-small-fenix2-run.fit"), "--athlete", "ann"])
    assert "1 skipped as already imported" in again.output
    answer = runner.invoke(app, ["sql", "SELECT athlete_id, count(*) AS n FROM activities GROUP BY 1"])
    assert answer.exit_code == 0 and "ann" in answer.output


def test_sql_refuses_writes_and_explains_bad_sql(home):
    runner = CliRunner()
    runner.invoke(app, ["import", str(FIT / "garmin-fenix-5-run.fit")])
    write = runner.invoke(app, ["sql", "DROP TABLE activities"])
    assert write.exit_code == 1 and "read-only" in write.output.lower()
    bad = runner.invoke(app, ["sql", "SELEC 1"])
    assert bad.exit_code == 1 and "syntax error" in bad.output.lower() and "Traceback" not in bad.output


def test_missing_paths_are_named(home):
    result = CliRunner().invoke(app, ["import", str(home / "nope")])
    assert result.exit_code == 2 and "No such file or folder" in result.output


def test_runs_cover_touched_months_in_few_ranges_without_long_empty_stretches():
    days = [date(2015, 3, 4), date(2015, 3, 20), date(2015, 4, 2), date(2021, 9, 27), date(2021, 10, 1)]
    assert months_of(days) == [date(2015, 3, 1), date(2015, 4, 1), date(2021, 9, 1), date(2021, 10, 1)]
    assert plan_ranges(months_of(days)) == [(date(2015, 3, 1), date(2015, 4, 1)), (date(2021, 9, 1), date(2021, 10, 1))]
    assert plan_ranges(months_of(days), max_ranges=1) == [(date(2015, 3, 1), date(2021, 10, 1))]
    assert plan_ranges([]) == []
