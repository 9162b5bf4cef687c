"""Sensors: one per watched folder (the inbox, RETROSTRIDE_WATCH) imports its new files.

`<source>_sensor` lists its folder (stat only, no bytes parsed), waits until a file's size and mtime
hold still for one tick, hashes the stable new files and requests ONE `import_files` run for the batch
(run_key = hash of the content hashes: the same batch never runs twice; a copy or rename is not
re-imported). The run does the rest (`pipelines/import_job.py`): publish, score, marts, snapshot.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import dagster as dg

from retrostride.assets.settings import Settings, WatchedSource
from retrostride.connectors.ingest.importer import sha256_of
from retrostride.connectors.object_store import ObjectStore, ObjectStoreError, ObjectUrl, is_object_url
from retrostride.connectors.sources import DEFAULT_ATHLETE, list_objects, list_source_files
from retrostride.pipelines.planning import (
    FileStat,
    SourceCursor,
    plan_import,
)

SOURCE_TAG = "retrostride/source"


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
        # a file that cannot be read (a FIFO, no permission) is named by its refusal, never opened
        refused = hashlib.sha256(f"{item.path}\0{item.refusal}".encode()).hexdigest() if item.refusal else None
        stats.append(FileStat(key, str(item.path), item.athlete_id, stat.st_size, stat.st_mtime_ns, refused))
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


#: Seconds between looks when RETROSTRIDE_POLL_S is not set: a folder is cheap to list, an object
#: store's listing is a billed request.
FOLDER_POLL_S, OBJECT_STORE_POLL_S = 5, 30


def source_sensor(source: WatchedSource, import_job, poll_s: int | None, settle_s: float) -> dg.SensorDefinition:
    """A sensor that imports `source`'s new, stable files in one `import_files` run per tick.

    A new file in a folder is watched for `settle_s` within the tick: unchanged by then, it goes in
    this tick's run (an object in a store is complete once listed, and waits for the next tick)."""
    remote = is_object_url(source.root)
    interval = poll_s or (OBJECT_STORE_POLL_S if remote else FOLDER_POLL_S)

    @dg.sensor(
        name=f"{source.name}_sensor",
        job=import_job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Imports new files from {source.root} once they stop changing.",
    )
    def watch_source(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        try:
            listing = list_stats(source)
        except ObjectStoreError as error:  # the store is down or the bucket gone: try again next tick
            return dg.SensorResult(skip_reason=str(error), cursor=context.cursor)
        plan, cursor = plan_import(SourceCursor.from_json(context.cursor), listing, _content_hash)
        if not plan.files and plan.waiting and settle_s and not remote:  # look again shortly: still unchanged?
            time.sleep(_unsettled_s(listing, settle_s))
            plan, cursor = plan_import(cursor, list_stats(source), _content_hash)
        waiting = f"{plan.waiting} file(s) new or still changing, {plan.deferred} deferred, {plan.known} already seen"
        if not plan.files:
            return dg.SensorResult(skip_reason=f"nothing new to import ({waiting})", cursor=cursor.to_json())
        context.log.info(f"{source.name}: importing {len(plan.files)} file(s); {waiting}")
        return dg.SensorResult(run_requests=athlete_requests(source, plan), cursor=cursor.to_json())

    return watch_source


#: Runs carry their athlete: dagster.yaml lets one run per athlete run at a time (its rows are its own
#: files in the warehouse), runs of different athletes side by side.
ATHLETE_TAG = "retrostride/athlete"


def athlete_requests(source: WatchedSource, plan) -> list[dg.RunRequest]:
    """One `import_files` run per athlete of the plan's files, tagged with the athlete."""
    by_athlete: dict[str, dict[str, str]] = {}
    for path, athlete in plan.files.items():
        by_athlete.setdefault(athlete, {})[path] = athlete
    return [
        dg.RunRequest(
            run_key=plan.run_key if len(by_athlete) == 1 else f"{plan.run_key}-{athlete}",
            run_config={"ops": {"import_new_files": {"config": {"sources": files}}}},
            tags={SOURCE_TAG: source.name, ATHLETE_TAG: athlete, "retrostride/files": str(len(files))},
        )
        for athlete, files in sorted(by_athlete.items())
    ]


def _unsettled_s(listing: list[FileStat], settle_s: float) -> float:
    """How much longer the youngest file must hold still to have held still for `settle_s`: its
    modification time says since when it has (a file written a while ago needs only the second look)."""
    youngest_s = max(stat.mtime_ns for stat in listing) / 1e9
    return min(settle_s, max(0.0, youngest_s + settle_s - time.time()))


def build_sensors(settings: Settings, import_job) -> list:
    """A sensor per watched source (the inbox, RETROSTRIDE_WATCH), each requesting `import_files` runs."""
    return [source_sensor(s, import_job, settings.poll_s, settings.settle_s) for s in settings.sources]
