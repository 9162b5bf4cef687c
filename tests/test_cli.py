"""The retrostride command as a user runs it: exit codes, summaries, progress, errors, the helper commands."""

import json
import os
import pty
import re
import select
import subprocess
import sys
import tomllib
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import typer
from typer.testing import CliRunner

from retrostride.pipelines.cli import app
from retrostride.pipelines.planning import months_of, plan_ranges
from tests.conftest import CORPORA
from tests.test_duplicates import _as_gpx

FIT = CORPORA / "fit" / "python-fitparse"
RUN, BROKEN = FIT / "activity-small-fenix2-run.fit", FIT / "activity-filecrc.fit"
RETROSTRIDE = str(Path(sys.executable).with_name("retrostride"))
REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTRIDE_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("RETROSTRIDE_INBOX", str(tmp_path / "inbox"))
    monkeypatch.setenv("RETROSTRIDE_WORKERS", "1")
    return tmp_path


def retrostride(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


def test_import_exits_1_listing_failed_files_0_when_all_are_imported_or_skipped_2_for_usage(home):
    result = retrostride("import", str(RUN), str(BROKEN), "--athlete", "ann")
    assert result.exit_code == 1, result.output
    assert "1 imported" in result.output and "1 failed" in result.output
    assert "CRC mismatch" in result.output and "[computed: 0xA1D5" in result.output.replace("\n", "")
    (home / "junk.fit").write_bytes(b"not a FIT file at all" * 10)
    assert retrostride("import", str(home / "junk.fit")).exit_code == 1  # every file failed: not a success
    again = retrostride("import", str(RUN), "--athlete", "ann")
    assert again.exit_code == 0 and "1 skipped as already imported" in again.output
    assert retrostride("import", str(home / "nope")).exit_code == 2
    assert retrostride("import", "--no-such-option").exit_code == 2
    answer = retrostride("sql", "SELECT athlete_id, count(*) AS n FROM activities GROUP BY 1")
    assert answer.exit_code == 0 and "ann" in answer.output


def test_the_json_summary_says_what_was_found_and_folds_one_run_from_two_sources(home):
    gpx = _as_gpx(RUN, home / "strava" / "12345.gpx")
    result = retrostride("import", str(RUN), str(gpx), str(BROKEN), "--athlete", "ann", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.output)
    assert summary["files"] == {
        "ok": 2,
        "partial": 0,
        "no_activity": 0,
        "failed": 1,
        "duplicate": 0,
        "ignored": 0,
        "skipped": 0,
    }
    assert summary["problems"] == [
        {"status": "failed", "path": str(BROKEN), "reason": summary["problems"][0]["reason"]}
    ]
    assert summary["activities_by_sport"] == {"running": 1}  # the GPX copy is folded into the FIT run
    assert summary["duplicates_folded"] == 1 and summary["athletes"] == ["ann"]
    assert summary["first_day"] == summary["last_day"] == "2015-08-15"
    assert isinstance(summary["backward_minutes"], float)
    printed = retrostride("import", str(RUN), "--athlete", "ann")
    assert (
        "1 skipped as already imported" in printed.output and "Activities:" not in printed.output
    )  # nothing new found


def _in_a_terminal(command: list[str], env: dict, columns: int = 100) -> tuple[int, str]:
    """Run `command` in a pseudo-terminal (as a person would); its exit code and what the screen got."""
    leader, follower = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        command, env={**env, "TERM": "xterm-256color"}, stdin=follower, stdout=follower, stderr=follower, close_fds=True
    )
    os.close(follower)
    screen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=600), ANSI.sub("", screen.decode("utf-8", "replace"))


def test_a_terminal_sees_a_bar_per_stage_counting_only_the_files_to_import_and_no_dagster_lines(home):
    code, screen = _in_a_terminal([RETROSTRIDE, "import", str(RUN), str(BROKEN)], dict(os.environ))
    assert code == 1, screen
    frames = re.findall(r"(decode|publish|detect|marts|snapshot)\s+━*\s*(\d+/[\d?]+)", screen)
    final = dict(frames)  # each stage as last drawn
    assert final == {"decode": "2/2", "publish": "1/1", "detect": "1/1", "marts": "1/1", "snapshot": "1/1"}, screen
    assert ("marts", "0/?") in frames and ("decode", "2/2") in frames  # every stage shown from the start, then filled
    assert "warning: athlete 'default' has no profile" in screen  # a one-line warning of the CLI's own
    assert "Activities: 1 running; 2015-08-15 to 2015-08-15; athletes: default;" in screen
    assert "backward minutes; 0 duplicates folded across sources" in screen
    assert " - dagster - " not in screen and "Traceback" not in screen, screen

    (home / "new.fit").write_bytes(b"not a FIT file at all" * 10)
    code, screen = _in_a_terminal(
        [RETROSTRIDE, "import", str(RUN), str(BROKEN), str(home / "new.fit")], dict(os.environ)
    )
    decode = re.findall(r"decode\s+━*\s*(\d+/[\d?]+)", screen)
    assert code == 1 and decode[-1] == "1/1" and "2 already imported" in screen, screen  # only the new file counts


def test_a_failed_run_is_one_sentence_and_the_log_file_holds_the_traceback(home):
    (home / "data" / "reports" / "report.html" / "in-the-way").mkdir(parents=True)  # the report cannot replace a folder
    result = subprocess.run(
        [RETROSTRIDE, "import", str(RUN)], env=dict(os.environ), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    message = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(message) == 2 and re.match(r"retrostride import failed in \w+: IsADirectoryError: ", message[0]), (
        result.stderr
    )
    log = Path(message[1].removeprefix("Full traceback: "))
    assert log.parent == home / "data" / "logs" and "Traceback" in log.read_text()


@pytest.mark.parametrize(
    ("file", "text", "named"),
    [
        ("model.toml", "[detection]\nenter_ratio = 5.0\n", "enter_ratio = 5.0 is outside (0, 1]"),
        ("model.toml", "[energy]\nbackward_multiplier = 0.8\n", "backward_multiplier = 0.8 is outside (1, 3]"),
        ("model.toml", "[detection]\nmin_segment_s = -5\n", "min_segment_s = -5.0 is outside [0, ∞)"),
        ("model.toml", "[detection]\ngait_window_s = 0\n", "gait_window_s = 0.0 is outside (0, ∞)"),
        (
            "model.toml",
            "[marts]\nmeasurement_tolerance_days = -1\n",
            "measurement_tolerance_days = -1.0 is outside [0, ∞)",
        ),
        ("model.toml", "[detection]\nenter_ratio = 'x'\n", "enter_ratio = 'x' should be like 0.85"),
        ("model.toml", "[detection]\ncalibration_probabilities = [0.5, 0.9]\n", "(one more than the edges)"),
        ("retrostride.toml", "[duplicates]\ndistance_tolerance = 2\n", "distance_tolerance in [0, 1)"),
        ("retrostride.toml", "[import]\nmax_file_mb = -1\n", "limits must be positive"),
        ("athletes.toml", "[athletes.ann]\nweight_kg = 700\n", "athletes.ann.weight_kg = 700 is outside [20, 400]"),
        ("athletes.toml", "[athletes.ann]\ntimezone = 'Mars/Olympus'\n", "not an IANA zone"),
        ("athletes.toml", "[athletes.ann\n", "Expected ']'"),
    ],
)
def test_a_configuration_error_is_one_line_naming_the_file_and_the_value(home, file, text, named):
    (home / "data").mkdir()
    (home / "data" / file).write_text(text)
    for command in (["import", str(RUN)], ["athletes"], ["backfill", "--start", "2015-08-01", "--end", "2015-08-31"]):
        result = retrostride(*command)
        assert result.exit_code == 2, result.output
        assert result.output.replace("\n", "").startswith(str(home / "data" / file)) and named in result.output.replace(
            "\n", ""
        ), result.output
        assert "Traceback" not in result.output and len(result.output) < 400


def test_backfill_echoes_the_dates_given_skips_an_empty_range_and_says_what_changed(home):
    assert retrostride("import", str(RUN), "--athlete", "ann").exit_code == 0
    result = retrostride("backfill", "--start", "2015-08-03", "--end", "2015-08-31")
    assert result.exit_code == 0, result.output
    assert "Backfilling 2015-08-03..2015-08-31: the whole of 2015-08, 1 activities." in result.output
    assert re.search(r"activities: 1 rows replaced", result.output) and re.search(
        r"segments: \d+ rows replaced", result.output
    )
    assert re.search(r"model version: .*d\d+\.\w+\+e\d+\.\w+", result.output) and "materialized" not in result.output
    empty = retrostride("backfill", "--start", "2030-01-01", "--end", "2030-02-03")
    assert empty.exit_code == 0 and "No activities in 2030-01..2030-02" in empty.output and "done" not in empty.output
    backwards = retrostride("backfill", "--start", "2015-08-31", "--end", "2015-08-01")
    assert backwards.exit_code == 2 and "before" in backwards.output


def test_athletes_ledger_and_forget(home):
    (home / "data").mkdir()
    (home / "data" / "athletes.toml").write_text("[athletes.ann]\nweight_kg = 61.5\n[athletes.bo]\nheight_cm = 180\n")
    retrostride("import", str(RUN), str(BROKEN), "--athlete", "ann")
    athletes = retrostride("athletes")
    assert athletes.exit_code == 0
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in athletes.output.splitlines()
        if line.startswith("│")
    }
    assert rows["ann"][:2] == ["yes", "1"] and rows["bo"][:2] == ["yes", "0"]
    ledger = retrostride("ledger")
    unfolded = re.sub(r"\s+", "", ledger.output)  # long values fold at 80 columns
    assert ledger.exit_code == 0 and str(RUN) in unfolded and "2rows" in unfolded
    failed = retrostride("ledger", "--failed")
    assert "CRCmismatch" in re.sub(r"\s+", "", failed.output) and RUN.name not in re.sub(r"\s+", "", failed.output)

    forgotten = retrostride("forget", str(RUN))
    assert forgotten.exit_code == 0 and "Forgot" in forgotten.output and "Removed 1 activities" in forgotten.output
    assert retrostride("sql", "SELECT count(*) AS n FROM activities", "-f", "csv").output == "n\n0\n"
    assert retrostride("sql", "SELECT count(*) AS n FROM records", "-f", "csv").output == "n\n0\n"
    again = retrostride("forget", str(RUN))
    assert again.exit_code == 0 and "Nothing to forget" in again.output
    reimported = retrostride("import", str(RUN), "--athlete", "ann")  # forgotten means it imports anew
    assert reimported.exit_code == 0 and "1 imported" in reimported.output
    assert retrostride("forget", "abc").exit_code == 2  # too short to be a sha256 prefix, and no such path


def _commands() -> dict[str, list[str]]:
    """Every command and its options' long names, as `--help` shows them."""
    group = typer.main.get_command(app)
    return {
        name: sorted(o for p in command.params for o in p.opts if o.startswith("--") and o != "--help")
        for name, command in group.commands.items()
    }


def test_the_readme_command_table_matches_every_commands_help():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `retrostride (\w+)[^|]*\|.*$", readme, re.MULTILINE)}
    assert set(rows) == set(_commands())
    for name, options in _commands().items():
        for option in options:
            assert option in rows[name], f"README's row for `retrostride {name}` does not mention {option}"
        help_text = retrostride(name, "--help")
        assert help_text.exit_code == 0 and all(o in help_text.output for o in options)


def test_installing_prints_no_license_deprecation():
    """setuptools ≥ 77 wants an SPDX string; a table (`{ text = ... }`) warns three times per install."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert any(
        r.startswith("setuptools>=") and int(r.split(">=")[1].split(".")[0]) >= 77
        for r in project["build-system"]["requires"]
    )


def test_runs_cover_touched_months_in_few_ranges_without_long_empty_stretches():
    days = [date(2015, 3, 4), date(2015, 3, 20), date(2015, 4, 2), date(2021, 9, 27), date(2021, 10, 1)]
    assert months_of(days) == [date(2015, 3, 1), date(2015, 4, 1), date(2021, 9, 1), date(2021, 10, 1)]
    assert plan_ranges(months_of(days)) == [(date(2015, 3, 1), date(2015, 4, 1)), (date(2021, 9, 1), date(2021, 10, 1))]
    assert plan_ranges(months_of(days), max_ranges=1) == [(date(2015, 3, 1), date(2021, 10, 1))]
    assert plan_ranges([]) == []


def test_the_ui_says_what_each_asset_holds_and_why_early_months_are_empty(tmp_path):
    from retrostride.pipelines.definitions import build_definitions
    from tests.conftest import settings_for

    graph = build_definitions(settings_for(tmp_path)).resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and len(node.description) > 30, key
        if node.partitions_def is not None:
            assert "months without activities are never materialized" in node.description, key
    for table in ("activities", "records", "laps", "segments", "activity_energy"):
        assert graph.get(dg.AssetKey(table)).description.startswith(f"The `{table}` table: "), table
