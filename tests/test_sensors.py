"""Unattended operation: files dropped in a watched folder end up in the warehouse, once, in few runs."""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from retrostride.assets.settings import Settings, WatchedSource, parse_watch
from retrostride.pipelines.definitions import build_definitions
from retrostride.pipelines.import_job import published_ranges
from retrostride.pipelines.planning import FileStat, SourceCursor, month_ranges, plan_import, plan_ranges
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
    a, ca = plan_import(
        plan_import(SourceCursor(), [stat("x.fit", 1)], lambda f: "1" * 64)[1], [stat("x.fit", 1)], lambda f: "1" * 64
    )
    b, cb = plan_import(
        plan_import(SourceCursor(), [stat("y.fit", 1)], lambda f: "1" * 64)[1], [stat("y.fit", 1)], lambda f: "1" * 64
    )
    assert a.run_key == b.run_key and SourceCursor.from_json(ca.to_json()) == ca


def test_a_huge_drop_is_imported_in_batches_of_the_limit():
    listing = [stat(f"f{i:04}.fit", 10) for i in range(12)]
    _, cursor = plan_import(SourceCursor(), listing, fake_hash)
    plan, cursor = plan_import(cursor, listing, fake_hash, max_files=5)
    assert len(plan.files) == 5 and plan.deferred == 7
    plan, cursor = plan_import(cursor, listing, fake_hash, max_files=5)
    plan, cursor = plan_import(cursor, listing, fake_hash, max_files=5)
    assert len(plan.files) == 2 and plan.deferred == 0


def test_the_months_an_import_touched_are_published_in_at_most_two_ranges():
    months = [date(2015, 8, 1), date(2015, 9, 1), date(2021, 1, 1)]
    assert plan_ranges(months) == [(date(2015, 8, 1), date(2015, 9, 1)), (date(2021, 1, 1), date(2021, 1, 1))]
    assert plan_ranges([]) == []  # weight-scale files only


def test_reprocessing_covers_stale_months_exactly_bridging_only_empty_months():
    m = lambda y, mo: date(y, mo, 1)  # noqa: E731
    occupied = [m(2020, 1), m(2020, 2), m(2020, 4), m(2020, 5), m(2021, 1)]
    stale = [m(2020, 1), m(2020, 4), m(2021, 1)]  # 2020-02 and 2020-05 are up to date
    assert month_ranges(stale, occupied) == [
        (m(2020, 1), m(2020, 1)),
        (m(2020, 4), m(2020, 4)),
        (m(2021, 1), m(2021, 1)),
    ]
    assert month_ranges([m(2020, 1), m(2020, 4)], [m(2020, 1), m(2020, 4)]) == [(m(2020, 1), m(2020, 4))]


def test_settings_name_the_watched_folders_and_the_nightly_time(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTRIDE_WATCH", f"{tmp_path}/Garmin Sync, bob={tmp_path}/bob-watch")
    monkeypatch.setenv("RETROSTRIDE_NIGHTLY", "02:30")
    monkeypatch.setenv("RETROSTRIDE_TIMEZONE", "Europe/Berlin")
    settings = Settings.from_env()
    assert [(s.name, s.athlete) for s in settings.sources] == [
        ("inbox", None),
        ("watch_garmin_sync", None),
        ("watch_bob_watch", "bob"),
    ]
    assert settings.poll_s is None and settings.settle_s == 1.0  # 5 s for folders, 30 s for object stores
    defs = build_definitions(settings)
    assert defs.resolve_sensor_def("inbox_sensor").minimum_interval_seconds == 5
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


def execute(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest, job: str
) -> dg.ExecuteInProcessResult:
    """Run a sensor's run request in-process, as the daemon would launch it."""
    return defs.resolve_job_def(request.job_name or job).execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance
    )


@pytest.fixture
def watched(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, watch=(WatchedSource("watch_bob", tmp_path / "bob-sync", "bob"),))


def drop(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(FIT / name, folder / name)


def test_dropped_files_reach_the_warehouse_through_the_sensors(watched, instance):
    defs = build_definitions(watched)
    inbox = Ticks(defs, instance, "inbox_sensor")
    drop(watched.inbox / "ann", RUNS)
    assert inbox.tick() == []  # first sight: wait for the files to hold still
    [request] = inbox.tick()
    assert request.run_key.startswith("import-") and request.tags["retrostride/source"] == "inbox"
    config = request.run_config["ops"]["import_new_files"]["config"]["sources"]
    assert sorted(Path(p).name for p in config) == sorted(RUNS) and set(config.values()) == {"ann"}
    assert inbox.tick() == []  # unchanged folder: no new run
    result = execute(defs, instance, request, "import_files")  # one run: import, publish, score, marts, snapshot
    assert result.success
    assert published_ranges(result) == [(date(2015, 8, 1), date(2015, 8, 1)), (date(2017, 6, 1), date(2017, 6, 1))]
    materialized = {
        (m.asset_key.to_user_string(), m.partition)
        for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    assert {
        ("segments", "2015-08-01"),
        ("segments", "2017-06-01"),
        ("activities", "2017-06-01"),
        ("mileage_weekly", None),
        ("published_warehouse", None),
    } <= materialized
    warehouse = Warehouse(watched.catalog)
    assert warehouse.query("SELECT count(*) AS n FROM pending_days")["n"][0] == 0

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
    assert set(request.run_config["ops"]["import_new_files"]["config"]["sources"].values()) == {"bob"}
    assert execute(defs, instance, request, "import_files").success
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
    assert list(request.run_config["ops"]["import_new_files"]["config"]["sources"]) == [str(target)]


def test_with_a_settle_time_a_new_file_is_taken_in_the_tick_that_first_sees_it(settings, instance):
    """The product's default: a sensor watches a new file hold still for `settle_s` within its tick."""
    defs = build_definitions(replace(settings, settle_s=1.0))
    inbox = Ticks(defs, instance, "inbox_sensor")
    drop(settings.inbox / "ann", [RUNS[0]])
    [request] = inbox.tick()
    assert list(request.run_config["ops"]["import_new_files"]["config"]["sources"]) == [
        str(settings.inbox / "ann" / RUNS[0])
    ]
    growing = settings.inbox / "ann" / "growing.fit"
    data = (FIT / RUNS[1]).read_bytes()
    growing.write_bytes(data[:1000])

    def write_the_rest_within_the_settle_time():
        time.sleep(0.3)
        with open(growing, "ab") as handle:
            handle.write(data[1000:])

    writer = threading.Thread(target=write_the_rest_within_the_settle_time)
    writer.start()
    assert inbox.tick() == []  # it grew while the sensor watched
    writer.join()
    [request] = inbox.tick()  # unchanged over the next tick's settle time
    assert list(request.run_config["ops"]["import_new_files"]["config"]["sources"]) == [str(growing)]


def test_a_bulk_drop_of_500_files_is_one_import_run_per_athlete(settings, instance):
    defs = build_definitions(settings)
    inbox = Ticks(defs, instance, "inbox_sensor")
    for i in range(500):
        folder = settings.inbox / f"athlete{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:04}.fit").write_bytes(os.urandom(64) + i.to_bytes(4, "big"))
    first = inbox.tick()
    second = inbox.tick()
    assert first == [] and len(second) == 5  # five athletes: five runs that may run at once
    assert {len(r.run_config["ops"]["import_new_files"]["config"]["sources"]) for r in second} == {100}
    assert inbox.tick() == []


def test_weight_files_alone_refresh_the_marts(settings, instance):
    defs = build_definitions(settings)
    result = defs.resolve_job_def("import_files").execute_in_process(
        run_config={
            "ops": {"import_new_files": {"config": {"sources": {str(FIT / "WeightScaleSingleUser.fit"): "ann"}}}}
        },
        instance=instance,
    )
    assert result.success and published_ranges(result) == []  # no activity days ...
    refreshed = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert {"body_measurements", "outcomes_6wk", "published_warehouse"} <= refreshed  # ... but the marts follow
    assert read_only_query(Reading(settings.catalog), "SELECT count(*) AS n FROM body_measurements")["n"][0] > 0


def test_the_nightly_schedule_imports_every_watched_folder(watched, instance):
    defs = build_definitions(watched)
    schedule = defs.resolve_schedule_def("nightly_import")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in defs.sensors)
    drop(watched.inbox / "ann", [RUNS[0]])
    drop(watched.watch[0].root, [RUNS[1]])
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 1, 2, 3, tzinfo=UTC))
    [request] = schedule.evaluate_tick(context).run_requests
    result = defs.resolve_job_def("import_files").execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance
    )
    assert result.success
    ledger = Warehouse(watched.catalog).query("SELECT athlete_id, status FROM import_ledger ORDER BY athlete_id").rows()
    assert ledger == [("ann", "ok"), ("bob", "ok")]
    assert published_ranges(result) == [(date(2015, 8, 1), date(2015, 8, 1)), (date(2017, 6, 1), date(2017, 6, 1))]


def test_a_failed_file_is_named_in_an_asset_check(settings, instance):
    defs = build_definitions(settings)
    result = defs.resolve_job_def("import_files").execute_in_process(
        run_config={"ops": {"import_new_files": {"config": {"sources": {str(FIT / "activity-filecrc.fit"): "ann"}}}}},
        instance=instance,
    )
    assert result.success  # a bad file never fails the run ...
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN  # ... but it shows, with file and reason
    assert "activity-filecrc.fit" in check.metadata["files"].value and "CRC mismatch" in check.metadata["files"].value


def test_a_tick_asks_for_one_run_per_athlete_tagged_so_that_one_athlete_never_has_two_runs_at_once(tmp_path):
    from retrostride.pipelines.planning import ImportPlan
    from retrostride.pipelines.runs import shipped_instance_config
    from retrostride.pipelines.sensors import ATHLETE_TAG, athlete_requests

    plan = ImportPlan({"/in/ann/a.fit": "ann", "/in/bob/b.fit": "bob", "/in/ann/c.fit": "ann"}, "import-x", 0, 0, 0)
    requests = athlete_requests(WatchedSource("inbox", tmp_path), plan)
    assert [(r.tags[ATHLETE_TAG], r.run_key) for r in requests] == [("ann", "import-x-ann"), ("bob", "import-x-bob")]
    assert requests[0].run_config["ops"]["import_new_files"]["config"]["sources"] == {
        "/in/ann/a.fit": "ann",
        "/in/ann/c.fit": "ann",
    }
    (tmp_path / "dagster.yaml").write_text(shipped_instance_config(postgres=False))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        [limit] = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert limit["key"] == ATHLETE_TAG and limit["limit"] == 1 and limit["value"] == {"applyLimitPerUniqueValue": True}
