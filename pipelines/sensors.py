"""Sensors: one per watched folder imports new files; one publishes the months those imports touched.

Which months a file touches is known only after decoding, and a sensor must not parse bytes. So the
work is split in two event-driven steps, each deciding in `pipelines/planning.py`:

1. `<source>_sensor` lists its folder (stat only), waits until a file's size and mtime hold still for
   one tick, hashes the stable new files and requests ONE `ingest` run for the batch (run_key = hash
   of the content hashes: the same batch never runs twice; a copy or rename is not re-imported).
2. `publish_after_import` reads new `source_files` materializations (whoever ran them: a sensor, the
   nightly schedule, the UI) and requests `publish` runs over the ≤ 2 month ranges their `days`
   metadata names; a single-run backfill policy makes each range one run.  When such a run succeeds,
   `mark_published_after_publish` clears its days from `pending_days` (in a run, in the pool).
3. `marts_after_publish` refreshes the marts and the readers' snapshot once something they read is
   newer than they are and no ingest or publish run is still under way.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import dagster as dg

from retrostride.assets.resources import Storage
from retrostride.assets.settings import Settings, WatchedSource
from retrostride.connectors.ingest.importer import sha256_of
from retrostride.connectors.object_store import ObjectStore, ObjectStoreError, ObjectUrl, is_object_url
from retrostride.connectors.sources import DEFAULT_ATHLETE, list_objects, list_source_files
from retrostride.pipelines.planning import (
    FileStat,
    ImportEvent,
    SourceCursor,
    month_end,
    plan_import,
    plan_marts_refresh,
    plan_publish,
)
from retrostride.warehouse.publish import mark_published

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
#: An ingest run with this tag publishes its own days (the CLI does): the publish sensor leaves it.
PUBLISH_TAG = "retrostride/publish"
SOURCE_TAG = "retrostride/source"


def range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run cover the monthly partitions first..last (first days of months)."""
    return {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}


def list_stats(source: WatchedSource) -> list[FileStat]:
    """The source's files with size and mtime: no bytes read.  A missing folder is empty; an object
    store that cannot be listed raises ObjectStoreError."""
    if is_object_url(source.root):
        return _object_stats(source)
    stats = []
    for item in list_source_files([source.root], source.athlete) if source.root.is_dir() else []:
        try:
            stat = os.stat(item.path)
        except FileNotFoundError:  # removed while listing
            continue
        key = str(Path(item.path).relative_to(source.root))
        stats.append(FileStat(key, str(item.path), item.athlete_id, stat.st_size, stat.st_mtime_ns))
    return stats


def _object_stats(source: WatchedSource) -> list[FileStat]:
    """An `s3://` source's objects as FileStats: LastModified for mtime, the ETag for the content."""
    url = ObjectUrl.parse(str(source.root))
    stats = []
    for item in list_objects(url, ObjectStore()):
        owner = source.athlete or (item.name.split("/", 1)[0] if "/" in item.name else DEFAULT_ATHLETE)
        modified = int(item.modified_at.timestamp() * 1e9) if item.modified_at else 0
        stats.append(FileStat(item.name, url.child(item.key), owner, item.size, modified, item.etag or None))
    return stats


def _content_hash(stat: FileStat) -> str:
    return stat.content_tag or sha256_of(Path(stat.path))


def source_sensor(source: WatchedSource, ingest_job, poll_s: int) -> dg.SensorDefinition:
    """A sensor that imports `source`'s new, stable files in one `ingest` run per tick."""

    @dg.sensor(name=f"{source.name}_sensor", job=ingest_job, minimum_interval_seconds=poll_s,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Imports new files from {source.root} once they stop changing.")
    def watch_source(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        try:
            listing = list_stats(source)
        except ObjectStoreError as error:  # the store is down or the bucket gone: try again next tick
            return dg.SensorResult(skip_reason=str(error), cursor=context.cursor)
        plan, cursor = plan_import(SourceCursor.from_json(context.cursor), listing, _content_hash)
        waiting = f"{plan.waiting} file(s) new or still changing, {plan.deferred} deferred, {plan.known} already seen"
        if not plan.files:
            return dg.SensorResult(skip_reason=f"nothing new to import ({waiting})", cursor=cursor.to_json())
        context.log.info(f"{source.name}: importing {len(plan.files)} file(s); {waiting}")
        request = dg.RunRequest(
            run_key=plan.run_key,
            run_config={"ops": {"source_files": {"config": {"sources": plan.files}}}},
            tags={SOURCE_TAG: source.name, "retrostride/files": str(len(plan.files))},
        )
        return dg.SensorResult(run_requests=[request], cursor=cursor.to_json())

    return watch_source


def import_events(instance: dg.DagsterInstance, after: int | None, limit: int = 1000) -> list[ImportEvent]:
    """`source_files` materializations after storage id `after`, oldest first."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("source_files"), after_storage_id=after), limit=limit, ascending=True
    ).records
    events = []
    for record in records:
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        days = [date.fromisoformat(d) for d in (metadata["days"].value if "days" in metadata else [])]
        new = sum(int(metadata[k].value) for k in ("imported", "partial") if k in metadata)
        run = instance.get_run_by_id(record.run_id)
        inline = bool(run and run.tags.get(PUBLISH_TAG) == "inline")
        events.append(ImportEvent(record.storage_id, days, new, inline))
    return events


def publish_sensor(publish_job, poll_s: int) -> dg.SensorDefinition:
    """A sensor that publishes the months that new imports touched."""

    @dg.sensor(name="publish_after_import", job=publish_job, minimum_interval_seconds=poll_s,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="After each import, publishes the months it touched, in at most 2 runs.")
    def publish_after_import(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        after = int(context.cursor) if context.cursor else None
        plan = plan_publish(import_events(context.instance, after), after)
        cursor = str(plan.cursor) if plan.cursor is not None else None
        requests = [dg.RunRequest(run_key=f"publish-{after}-{plan.cursor}-{first}-{last}", tags=range_tags(first, last))
                    for first, last in plan.ranges]
        if not requests:
            return dg.SensorResult(skip_reason="no new imports with activities", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return publish_after_import


@dg.op(pool="warehouse", description="Forget the days a successful publish run covered (pending_days).")
def clear_published_days(context, storage: Storage) -> None:
    first, last = date.fromisoformat(context.run.tags[RANGE_START]), date.fromisoformat(context.run.tags[RANGE_END])
    cleared = mark_published(storage.warehouse, first, month_end(last))
    context.log.info(f"{cleared} pending day(s) of {first:%Y-%m}..{last:%Y-%m} published")


@dg.job(description="After a sensor's publish run succeeded: its days are no longer pending.")
def mark_published_job():
    clear_published_days()


def published_sensor(publish_job) -> dg.SensorDefinition:
    """Clears a publish run's days from pending_days once the run succeeded (a write, so a run in the pool)."""

    @dg.run_status_sensor(name="mark_published_after_publish", run_status=dg.DagsterRunStatus.SUCCESS,
                          monitored_jobs=[publish_job], request_job=mark_published_job,
                          default_status=dg.DefaultSensorStatus.RUNNING)
    def mark_published_after_publish(context: dg.RunStatusSensorContext):
        tags = context.dagster_run.tags
        if RANGE_START not in tags or tags.get("dagster/sensor_name") != "publish_after_import":
            return dg.SkipReason("not a publish run of the publish sensor")
        return dg.RunRequest(run_key=f"published-{context.dagster_run.run_id}", tags=range_tags(
            date.fromisoformat(tags[RANGE_START]), date.fromisoformat(tags[RANGE_END])))

    return mark_published_after_publish


def latest_storage_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int | None:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else None


def marts_sensor(marts_job, poll_s: int) -> dg.SensorDefinition:
    """Refreshes the marts (and the readers' snapshot) when something they read changed, once no
    import or publish run is still under way: one refresh after a burst of runs, whoever started them."""

    @dg.sensor(name="marts_after_publish", job=marts_job, minimum_interval_seconds=poll_s,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Refreshes the marts and the snapshot readers query after any import or publish.")
    def marts_after_publish(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        instance, graph = context.instance, context.repository_def.asset_graph
        marts = dg.AssetSelection.groups("marts").resolve(graph)
        inputs = {parent for key in marts for parent in graph.get(key).parent_keys} - marts
        refreshed = [latest_storage_id(instance, key) for key in marts]
        changed = [latest_storage_id(instance, key) for key in inputs]
        busy = instance.get_runs(dg.RunsFilter(statuses=list(UNFINISHED)))
        decision = plan_marts_refresh(changed, refreshed, any(r.job_name in WRITERS for r in busy))
        if decision is None:
            return dg.SensorResult(skip_reason="marts are up to date, or imports are still running")
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"marts-{decision}")])

    return marts_after_publish


UNFINISHED = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED}
#: Jobs whose runs change what the marts read: the marts wait until none is under way.
WRITERS = {"ingest", "publish"}


def build_sensors(settings: Settings, ingest_job, publish_job, marts_job) -> list:
    """A sensor per watched source (the inbox, RETROSTRIDE_WATCH), then publish, pending days, marts."""
    return [*(source_sensor(s, ingest_job, settings.poll_s) for s in settings.sources),
            publish_sensor(publish_job, settings.poll_s), published_sensor(publish_job),
            marts_sensor(marts_job, settings.poll_s)]
