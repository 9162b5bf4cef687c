"""Unattended operation: files dropped in a watched folder end up in the warehouse, once, in few runs."""

from __future__ import annotations

import os
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from retrostride.assets.settings import Settings, WatchedSource, parse_watch
from retrostride.pipelines.definitions import build_definitions
from retrostride.pipelines.planning import (
    FileStat,
    ImportEvent,
    SourceCursor,
    month_ranges,
    plan_import,
    plan_marts_refresh,
    plan_publish,
)
from retrostride.pipelines.runs import import_paths
from retrostride.pipelines.schedules import nightly_cron
from retrostride.warehouse.access import Reading, read_only_query
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA

FIT = CORPORA / "fit" / "python-fitparse"
RUNS = ["activity-small-fenix2-run.fit", "garmin-fenix-5-run.fit"]  # 2015-08 and 2017-06


def stat(key: str, size: int, mtime: int = 1, athlete: str = "ann") -> FileStat:
    return FileStat(key, f"/inbox/{key}", athlete, size, mtime)


def fake_hash(item: FileStat) -> str:
    return f"{item.key}:{item.size}".encode().hex().ljust(64, "0")


# ── The decisions, in plain code ────────────────────────────────────────────────────────────────────


def test_a_new_file_waits_one_tick_then_imports_once():
    listing = [stat("ann/a.fit", 100)]
    first, cursor = plan_import(SourceCursor(), listing, fake_hash)
    assert first.files == {} and first.waiting == 1
    second, cursor = plan_import(cursor, listing, fake_hash)
    assert second.files == {"/inbox/ann/a.fit": "ann"} and second.run_key
    third, _ = plan_import(cursor, listing, fake_hash)
    assert third.files == {} and third.run_key is None


def test_a_file_still_growing_waits_until_it_holds_still():
    cursor = SourceCursor()
    for size in (10, 20, 30):
        plan, cursor = plan_import(cursor, [stat("a.fit", size, mtime=size)], fake_hash)
        assert plan.files == {} and plan.waiting == 1
    plan, _ = plan_import(cursor, [stat("a.fit", 30, mtime=30)], fake_hash)
    assert list(plan.files) == ["/inbox/a.fit"]


def test_copies_and_renames_of_known_content_are_not_imported_again():
    same = lambda item: "ab" * 32  # noqa: E731 - every file has the same content
    _, cursor = plan_import(SourceCursor(), [stat("a.fit", 5)], same)
    plan, cursor = plan_import(cursor, [stat("a.fit", 5)], same)
    assert len(plan.files) == 1
    moved = [stat("old/b.fit", 5)]  # a.fit renamed
    _, cursor = plan_import(cursor, moved, same)
    plan, cursor = plan_import(cursor, moved, same)
    assert plan.files == {} and plan.known == 1
    copied = [*moved, stat("c.fit", 5)]
    _, cursor = plan_import(cursor, copied, same)
    plan, _ = plan_import(cursor, copied, same)
    assert plan.files == {} and plan.known == 1


def test_the_run_key_names_the_content_not_the_paths():
    a, ca = plan_import(plan_import(SourceCursor(), [stat("x.fit", 1)], lambda f: "1" * 64)[1], [stat("x.fit", 1)], lambda f: "1" * 64)
    b, cb = plan_import(plan_import(SourceCursor(), [stat("y.fit", 1)], lambda f: "1" * 64)[1], [stat("y.fit", 1)], lambda f: "1" * 64)
    assert a.run_key == b.run_key and SourceCursor.from_json(ca.to_json()) == ca


def test_a_huge_drop_is_imported_in_batches_of_the_limit():
    listing = [stat(f"f{i:04}.fit", 10) for i in range(12)]
    _, cursor = plan_import(SourceCursor(), listing, fake_hash)
    plan, cursor = plan_import(cursor, listing, fake_hash, max_files=5)
    assert len(plan.files) == 5 and plan.deferred == 7
    plan, cursor = plan_import(cursor, listing, fake_hash, max_files=5)
    plan, cursor = plan_import(cursor, listing, fake_hash, max_files=5)
    assert len(plan.files) == 2 and plan.deferred == 0


def test_publish_plans_follow_the_imported_days_in_at_most_two_ranges():
    events = [ImportEvent(7, [date(2015, 8, 15), date(2015, 9, 2)], 2, False),
              ImportEvent(8, [date(2021, 1, 3)], 1, False),
              ImportEvent(9, [date(2019, 5, 5)], 1, True)]  # the CLI published its own import
    plan = plan_publish(events, cursor=6)
    assert plan.ranges == [(date(2015, 8, 1), date(2015, 9, 1)), (date(2021, 1, 1), date(2021, 1, 1))]
    assert plan.cursor == 9
    assert plan_publish([ImportEvent(10, [], 1, False)], 9).ranges == []  # weight-scale files only
    assert plan_publish([], 9).cursor == 9


def test_marts_refresh_once_inputs_are_newer_and_no_writer_runs():
    assert plan_marts_refresh([5, 9], [7, 8], writers_busy=False) == 9
    assert plan_marts_refresh([5, 9], [7, 8], writers_busy=True) is None  # wait for the burst to end
    assert plan_marts_refresh([5, 6], [7, 8], writers_busy=False) is None  # marts already newer
    assert plan_marts_refresh([5], [None, 8], writers_busy=False) == 5  # a mart never made
    assert plan_marts_refresh([None], [None], writers_busy=False) is None  # nothing imported yet


def test_reprocessing_covers_stale_months_exactly_bridging_only_empty_months():
    m = lambda y, mo: date(y, mo, 1)  # noqa: E731
    occupied = [m(2020, 1), m(2020, 2), m(2020, 4), m(2020, 5), m(2021, 1)]
    stale = [m(2020, 1), m(2020, 4), m(2021, 1)]  # 2020-02 and 2020-05 are up to date
    assert month_ranges(stale, occupied) == [(m(2020, 1), m(2020, 1)), (m(2020, 4), m(2020, 4)), (m(2021, 1), m(2021, 1))]
    assert month_ranges([m(2020, 1), m(2020, 4)], [m(2020, 1), m(2020, 4)]) == [(m(2020, 1), m(2020, 4))]


def test_settings_name_the_watched_folders_and_the_nightly_time(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTRIDE_WATCH", f"{tmp_path}/Garmin Sync, bob={tmp_path}/bob-watch")
    monkeypatch.setenv("RETROSTRIDE_NIGHTLY", "02:30")
    monkeypatch.setenv("RETROSTRIDE_TIMEZONE", "Europe/Berlin")
    settings = Settings.from_env()
    assert [(s.name, s.athlete) for s in settings.sources] == [("inbox", None), ("watch_garmin_sync", None), ("watch_bob_watch", "bob")]
    assert nightly_cron(settings.nightly) == "30 2 * * *" and settings.timezone == "Europe/Berlin"
    assert parse_watch("") == ()
    with pytest.raises(ValueError):
        nightly_cron("25:00")


# ── The sensors on an instance ──────────────────────────────────────────────────────────────────────


class Ticks:
    """Evaluates a sensor tick after tick, carrying its cursor as the daemon does."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, name: str):
        self.defs, self.instance, self.sensor, self.cursor = defs, instance, defs.resolve_sensor_def(name), None

    def tick(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs)
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return list(data.run_requests or [])


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest, job: str) -> dg.ExecuteInProcessResult:
    """Run a sensor's run request in-process, as the daemon would launch it."""
    return defs.resolve_job_def(request.job_name or job).execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance)


@pytest.fixture
def watched(settings: Settings, tmp_path: Path) -> Settings:
    return Settings(settings.home, settings.inbox, settings.athletes_file, 1,
                    watch=(WatchedSource("watch_bob", tmp_path / "bob-sync", "bob"),))


def drop(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(FIT / name, folder / name)


def test_dropped_files_reach_the_warehouse_through_the_sensors(watched, instance):
    defs = build_definitions(watched)
    inbox, publish = Ticks(defs, instance, "inbox_sensor"), Ticks(defs, instance, "publish_after_import")
    drop(watched.inbox / "ann", RUNS)
    assert inbox.tick() == []  # first sight: wait for the files to hold still
    [request] = inbox.tick()
    assert request.run_key.startswith("import-") and request.tags["retrostride/source"] == "inbox"
    config = request.run_config["ops"]["source_files"]["config"]["sources"]
    assert sorted(Path(p).name for p in config) == sorted(RUNS) and set(config.values()) == {"ann"}
    assert inbox.tick() == []  # unchanged folder: no new run
    assert execute(defs, instance, request, "ingest").success

    requests = publish.tick()
    ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests]
    assert ranges == [("2015-08-01", "2015-08-01"), ("2017-06-01", "2017-06-01")]
    for r in requests:
        assert execute(defs, instance, r, "publish").success
        assert execute(defs, instance, r, "mark_published_job").success  # what the run-status sensor asks for
    assert publish.tick() == []
    warehouse = Warehouse(watched.catalog)
    assert warehouse.query("SELECT count(*) AS n FROM pending_days")["n"][0] == 0
    marts = Ticks(defs, instance, "marts_after_publish")
    [refresh] = marts.tick()  # the marts follow, without a manual step
    assert execute(defs, instance, refresh, "marts").success
    assert marts.tick() == []

    rows = warehouse.query("SELECT athlete_id, start_day FROM activities ORDER BY start_day").rows()
    assert rows == [("ann", date(2015, 8, 15)), ("ann", date(2017, 6, 11))]
    assert warehouse.query("SELECT count(*) AS n FROM mileage_weekly")["n"][0] > 0
    published = read_only_query(Reading(watched.catalog), "SELECT count(*) AS n FROM activities")["n"][0]
    assert published == 2  # what `retrostride sql` reads

    # A watched folder with its own athlete; a copy of known content in the inbox is not imported again.
    bob = Ticks(defs, instance, "watch_bob_sensor")
    drop(watched.watch[0].root / "2019", ["2019-02-17-062644-ELEMNT-297E-195-0.fit"])
    shutil.copy(FIT / RUNS[0], watched.inbox / "ann" / "copy.fit")
    assert bob.tick() == [] and inbox.tick() == []
    [request] = bob.tick()
    assert inbox.tick() == []
    assert set(request.run_config["ops"]["source_files"]["config"]["sources"].values()) == {"bob"}
    assert execute(defs, instance, request, "ingest").success
    [request] = publish.tick()
    assert execute(defs, instance, request, "publish").success
    assert warehouse.query("SELECT count(*) AS n FROM activities WHERE athlete_id = 'bob'")["n"][0] == 1


def test_a_growing_file_waits_for_the_next_tick(settings, instance):
    defs = build_definitions(settings)
    inbox = Ticks(defs, instance, "inbox_sensor")
    target = settings.inbox / "ann" / "run.fit"
    target.parent.mkdir(parents=True)
    data = (FIT / RUNS[0]).read_bytes()
    target.write_bytes(data[:1000])
    assert inbox.tick() == []
    with open(target, "ab") as handle:
        handle.write(data[1000:])
    assert inbox.tick() == []  # it grew since the last look
    [request] = inbox.tick()
    assert list(request.run_config["ops"]["source_files"]["config"]["sources"]) == [str(target)]


def test_a_bulk_drop_of_500_files_is_one_import_run(settings, instance):
    defs = build_definitions(settings)
    inbox = Ticks(defs, instance, "inbox_sensor")
    for i in range(500):
        folder = settings.inbox / f"athlete{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:04}.fit").write_bytes(os.urandom(64) + i.to_bytes(4, "big"))
    first = inbox.tick()
    second = inbox.tick()
    assert len(first) + len(second) <= 2
    [request] = second
    assert len(request.run_config["ops"]["source_files"]["config"]["sources"]) == 500
    assert inbox.tick() == []


def test_the_publish_sensor_leaves_cli_imports_alone_and_weight_files_refresh_the_marts(settings, instance):
    defs = build_definitions(settings)
    publish, marts = Ticks(defs, instance, "publish_after_import"), Ticks(defs, instance, "marts_after_publish")
    import_paths(settings, [FIT / RUNS[0]], athlete="ann", instance=instance)  # publishes and refreshes itself
    assert publish.tick() == [] and marts.tick() == []
    result = defs.resolve_job_def("ingest").execute_in_process(
        run_config={"ops": {"source_files": {"config": {"sources": {str(FIT / "WeightScaleSingleUser.fit"): "ann"}}}}},
        instance=instance)
    assert result.success
    assert publish.tick() == []  # no activity days
    [request] = marts.tick()  # but body measurements changed
    assert execute(defs, instance, request, "marts").success and marts.tick() == []


def test_the_nightly_schedule_imports_every_watched_folder(watched, instance):
    defs = build_definitions(watched)
    schedule = defs.resolve_schedule_def("nightly_import")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in defs.sensors)
    drop(watched.inbox / "ann", [RUNS[0]])
    drop(watched.watch[0].root, [RUNS[1]])
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 1, 2, 3, tzinfo=timezone.utc))
    [request] = schedule.evaluate_tick(context).run_requests
    result = defs.resolve_job_def("ingest").execute_in_process(run_config=request.run_config, tags=request.tags, instance=instance)
    assert result.success
    ledger = Warehouse(watched.catalog).query("SELECT athlete_id, status FROM import_ledger ORDER BY athlete_id").rows()
    assert ledger == [("ann", "ok"), ("bob", "ok")]
    publish = Ticks(defs, instance, "publish_after_import").tick()  # the publish sensor follows
    assert [r.tags["dagster/asset_partition_range_start"] for r in publish] == ["2015-08-01", "2017-06-01"]


def test_a_failed_file_is_named_in_an_asset_check(settings, instance):
    defs = build_definitions(settings)
    result = defs.resolve_job_def("ingest").execute_in_process(
        run_config={"ops": {"source_files": {"config": {"sources": {str(FIT / "activity-filecrc.fit"): "ann"}}}}},
        instance=instance)
    assert result.success  # a bad file never fails the run ...
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN  # ... but it shows, with file and reason
    assert "activity-filecrc.fit" in check.metadata["files"].value and "CRC mismatch" in check.metadata["files"].value
