"""Backfills and re-processing: the same rows again, no row of an old model version, one writer at a time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from retrostride.assets.settings import Settings
from retrostride.pipelines.backfills import (
    VERSIONED_TABLES,
    backfill_months,
    current_model_versions,
    reprocess,
    stale_ranges,
)
from retrostride.pipelines.cli import app
from retrostride.pipelines.runs import import_paths, instance_for, process_tags
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.store import Warehouse
from retrostride.warehouse.versions import version_counts
from tests.conftest import CORPORA, settings_for

FIT = CORPORA / "fit" / "python-fitparse"
RUNS = [
    FIT / "20170518-191602-1740899583.fit",
    FIT / "garmin-fenix-5-run.fit",
    FIT / "garmin-fenix-5-walk.fit",
]  # 2017-05, 2017-06 ×2
TABLES = ["activities", "records", "laps", "segments", "activity_energy"]


def snapshot(settings: Settings) -> dict:
    warehouse = Warehouse(settings.catalog)
    return {t: warehouse.query(f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


def same(a: dict, b: dict) -> bool:
    return all(a[t].equals(b[t]) for t in TABLES)


@pytest.fixture(scope="module")
def imported_once(tmp_path_factory) -> Settings:
    settings = settings_for(tmp_path_factory.mktemp("backfill"))
    with dg.instance_for_test() as instance:
        import_paths(settings, RUNS, athlete="ann", instance=instance)
    return settings


@pytest.fixture
def imported(imported_once, tmp_path) -> Settings:
    """A private copy of a home where RUNS were imported."""
    settings = settings_for(tmp_path)
    shutil.copytree(imported_once.home, settings.home)
    return settings


def test_a_backfill_over_a_range_recreates_identical_rows(imported, instance):
    before = snapshot(imported)
    assert len(before["activities"]) == 3 and len(before["segments"]) > 0
    with Warehouse(imported.catalog).transaction() as connection:
        for table in TABLES:
            connection.execute(f"DELETE FROM {table}")
    seen = []
    run = backfill_months(
        imported,
        dg_date("2017-05-10"),
        dg_date("2017-06-30"),
        progress=lambda a, w: seen.append((a, w)),
        instance=instance,
    )
    assert run.success and (run.first, run.last) == (dg_date("2017-05-01"), dg_date("2017-06-01"))
    assert same(before, snapshot(imported))
    assert {a for a, w in seen if w == "materialized"} >= {
        "activities",
        "segments",
        "activity_energy",
        "mileage_weekly",
    }
    [record] = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
    assert record.dagster_run.tags["dagster/asset_partition_range_end"] == "2017-06-01"  # one run for the range


def test_a_failed_run_retried_converges_to_the_same_warehouse(imported, instance, monkeypatch):
    before = snapshot(imported)
    real = Lake.frame_path

    def broken(self, pack, frame):  # dies half-way through the month's transaction
        if frame == "laps":
            raise OSError("disk went away")
        return real(self, pack, frame)

    monkeypatch.setattr(Lake, "frame_path", broken)
    failed = backfill_months(imported, dg_date("2017-06-01"), dg_date("2017-06-30"), instance=instance)
    assert not failed.success
    assert same(before, snapshot(imported))  # the transaction rolled back: readers never saw half of it
    monkeypatch.setattr(Lake, "frame_path", real)
    retried = backfill_months(imported, dg_date("2017-06-01"), dg_date("2017-06-30"), instance=instance)
    assert retried.success and same(before, snapshot(imported))


def test_after_a_model_change_reprocess_leaves_no_row_of_the_old_version(imported, instance):
    old = current_model_versions(imported)["segments"]
    assert stale_ranges(imported) == []
    imported.model_path.write_text("[detection]\nenter_ratio = 0.84\n")
    new = current_model_versions(imported)["segments"]
    assert new != old
    ranges = stale_ranges(imported)
    assert ranges == [(dg_date("2017-05-01"), dg_date("2017-06-01"))]
    runs = reprocess(imported, instance=instance)
    assert len(runs) == 1 and runs[0].success and "activities" not in runs[0].assets
    counts = version_counts(Warehouse(imported.catalog), VERSIONED_TABLES)
    assert {t: set(c) for t, c in counts.items()} == {"segments": {new}, "activity_energy": {new}}
    assert stale_ranges(imported) == []


def test_months_without_derived_rows_are_stale(imported):
    with Warehouse(imported.catalog).transaction() as connection:
        connection.execute(
            "DELETE FROM segments WHERE activity_id IN (SELECT activity_id FROM activities WHERE start_day >= '2017-06-01')"
        )
    assert stale_ranges(imported) == [(dg_date("2017-06-01"), dg_date("2017-06-01"))]


def test_the_cli_backfills_with_progress_and_names_unknown_assets(tmp_path, monkeypatch):
    for name, value in {
        "RETROSTRIDE_HOME": tmp_path / "data",
        "DAGSTER_HOME": tmp_path / "dagster",
        "RETROSTRIDE_INBOX": tmp_path / "inbox",
        "RETROSTRIDE_WORKERS": "1",
    }.items():
        monkeypatch.setenv(name, str(value))
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(RUNS[0]), "--athlete", "ann"]).exit_code == 0
    result = runner.invoke(app, ["backfill", "--start", "2017-05-01", "--end", "2017-05-31", "--assets", "segments"])
    assert result.exit_code == 0, result.output
    assert re.search(r"segments: \d+ rows replaced", result.output) and re.search(
        r"activity_energy: \d+ rows replaced", result.output
    )
    assert "activities:" not in result.output and "done" in result.output
    bad = runner.invoke(app, ["backfill", "--start", "2017-05-01", "--end", "2017-05-31", "--assets", "segmentz"])
    assert bad.exit_code == 2 and "segmentz" in bad.output and "choose from" in bad.output
    assert "Nothing to reprocess" in runner.invoke(app, ["reprocess"]).output


def test_the_warehouse_pool_holds_its_limit(imported, tmp_path, monkeypatch):
    """The pool at 1 slot (the shipped default is 2: `tests/test_parallel_athletes.py` has two runs'
    steps at once): two `retrostride backfill` processes at once over the same months take turns."""
    env = {
        **os.environ,
        "RETROSTRIDE_HOME": str(imported.home),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "RETROSTRIDE_INBOX": str(imported.inbox),
        "RETROSTRIDE_WORKERS": "1",
    }
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    instance = instance_for(imported)  # the instance exists (shipped dagster.yaml, tables) before both start
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 2  # the shipped dagster.yaml
    instance.event_log_storage.set_concurrency_slots("warehouse", 1)
    # A run of this process holds the warehouse slot until both backfills wait for it: on SQLite, Dagster's
    # claim of a *free* slot is a select-then-update, so two steps asking in the same millisecond can both
    # get it (harmless: the warehouse file lock makes the second writer wait); a freed slot goes to one
    # queued step.  The holder is a live run of a live process, so `reap_dead_runs` leaves it alone.
    holder = dg.DagsterRun(
        job_name="holder", run_id="held-by-test", status=dg.DagsterRunStatus.STARTED, tags=process_tags()
    )
    instance.add_run(holder)
    events = instance.event_log_storage
    assert events.claim_concurrency_slot("warehouse", holder.run_id, "held").is_claimed
    command = [
        str(Path(sys.executable).with_name("retrostride")),
        "backfill",
        "--start",
        "2017-06-01",
        "--end",
        "2017-06-30",
    ]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    deadline = time.monotonic() + 300
    while len(events.get_concurrency_info("warehouse").pending_run_ids) < 2:  # both backfills queue a step
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes), [
            p.communicate()[0] for p in processes
        ]
        time.sleep(0.05)
    events.free_concurrency_slot_for_step(holder.run_id, "held")
    instance.delete_run(holder.run_id)
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    runs = instance.get_run_records(dg.RunsFilter(tags={"retrostride/trigger": "backfill"}))
    assert len(runs) == 2 and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    # Ordering, not timing: no warehouse step starts while another one (of either run) is under way.
    # The report (athlete_reports) only reads the snapshot: it is outside the pool and may overlap.
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    every_run = instance.get_run_records()  # the two backfills and the marts run after each
    events = sorted(
        (e.timestamp, e.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS)
        for r in every_run
        for e in instance.all_logs(r.dagster_run.run_id, of_type=kinds)
        if e.step_key != "athlete_reports"
    )
    in_flight = 0
    for _, finished in events:
        in_flight += -1 if finished else 1
        assert in_flight <= 1, "two steps held the warehouse at once: " + "\n".join(
            f"{e.timestamp:.3f} {e.run_id[:8]} {e.step_key} {e.dagster_event.event_type_value}"
            for r in every_run
            for e in sorted(instance.all_logs(r.dagster_run.run_id, of_type=kinds), key=lambda e: e.timestamp)
        )
    assert len(every_run) == 4 and len(events) == 2 * 2 * (3 + 2)  # tables, baselines, scores; marts, snapshot


def dg_date(text: str):
    from datetime import date

    return date.fromisoformat(text)
