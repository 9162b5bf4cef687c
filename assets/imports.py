"""The import assets: new files into the lake and ledger, then day partitions into the warehouse.

Each asset is a thin wrapper over a function doing its work (`import_sources`, `publish_range`,
`publish_body`), which the one-run `import_files` job (pipelines/import_job.py) calls as well.
"""

import logging
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from retrostride.assets.partitions import PARTITIONS_NOTE, monthly, run_athletes
from retrostride.assets.resources import RunProgress, Storage
from retrostride.connectors.ingest.importer import import_files
from retrostride.connectors.ingest.ledger import ImportSummary
from retrostride.connectors.sources import ExportOwners, as_location, expanded_sources
from retrostride.warehouse.profiles import privacy_zones_frame
from retrostride.warehouse.publish import publish_body_measurements, publish_days


class ImportConfig(dg.Config):
    """What to import: paths (files, inbox-like folders or `s3://bucket/prefix` URLs; default the inbox),
    optionally for one athlete; and `sources`: files, folders or URLs each with its own athlete ("": read
    the folder like the inbox), which is how the sensors and the nightly schedule ask."""

    paths: list[str] = []
    athlete: str | None = None
    sources: dict[str, str] = {}


@dg.asset(
    group_name="ingest",
    pool="warehouse",
    kinds={"python", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            "every_file_imported",
            asset="source_files",
            description="Fails (as a warning) naming each file of the run that was not imported, and why.",
        )
    ],
)
def source_files(
    context: dg.AssetExecutionContext, config: ImportConfig, storage: Storage, progress: dg.ResourceParam[RunProgress]
):
    """Every new source file hashed, copied, decoded into the lake and explained in the import ledger."""
    summary = import_sources(config, storage, context.log, progress)
    yield dg.MaterializeResult(metadata=summary_metadata(summary))
    yield failed_files_check(summary)


def import_sources(
    config: ImportConfig, storage: Storage, log: logging.Logger | dg.DagsterLogManager, progress: RunProgress
) -> ImportSummary:
    """Import what `config` names into the lake and the ledger (the work of `source_files`)."""
    profiles = storage.profiles()
    limits = storage.limits()
    groups = [([as_location(path)], athlete or None) for path, athlete in config.sources.items()]
    if config.paths or not config.sources:
        groups.append(([as_location(p) for p in (config.paths or [storage.inbox])], config.athlete))
    with ExitStack() as stack:
        files = [
            f
            for paths, athlete in groups
            for f in stack.enter_context(
                expanded_sources(paths, athlete, storage.staging, limits.intake, owners=ExportOwners.of(profiles))
            )
        ]
        progress.start("decode", len(files))
        for athlete in sorted({f.athlete_id for f in files} - set(profiles)):
            _warn(log, progress, f"athlete {athlete!r} has no profile in {storage.athletes_file}: using defaults")
        for profile in profiles.values():
            if profile.ignored_keys:
                log.info(f"athlete {profile.athlete_id!r}: ignored profile keys {list(profile.ignored_keys)}")
        zones = {a: p.timezone for a, p in profiles.items() if p.timezone}
        summary = import_files(
            files,
            storage.lake,
            storage.warehouse,
            zones=zones,
            workers=storage.workers,
            progress=_log_every(log, PROGRESS_EVERY_S, then=progress.file_done),
            limits=limits,
        )
    if summary.pending:
        log.info(f"{len(summary.pending)} day(s) imported by an interrupted run are published now")
    return summary


#: The tables `activity_tables` publishes from the lake, each with its asset's description.
TABLE_DESCRIPTIONS = {
    "activities": "The `activities` table: one row per activity (a FIT or TCX session, a GPX track, a platform's"
    " manual entry): athlete, sport, names, start and end, local day, distance, source file, duplicate link.",
    "records": "The `records` table: one row per sample (time, position, altitude, speed, cadence, heart rate,"
    " ...) in canonical units (DESIGN §4); positions inside privacy zones are null.",
    "laps": "The `laps` table: laps and GPX segments with their workout-step names (label evidence for detection).",
    "developer_fields": "The `developer_fields` table: values of FIT developer fields (Stryd, Connect IQ apps,"
    " running-dynamics pods), one row per sample and field, with the app, the field's name and units.",
}
PUBLISHED_TABLES = tuple(TABLE_DESCRIPTIONS)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(name, deps=[source_files], description=description + PARTITIONS_NOTE, kinds={"duckdb"})
        for name, description in TABLE_DESCRIPTIONS.items()
    ],
    partitions_def=monthly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="activities",
    pool="warehouse",
)
def activity_tables(context: dg.AssetExecutionContext, storage: Storage):
    """Replace the activities, records, laps and developer fields of the run's days (UTC start date) in one
    transaction, of the run's athletes (`run_athletes`)."""
    window = context.partition_time_window
    first, last = window.start.date(), (window.end - timedelta(days=1)).date()
    for name, metadata in publish_range(storage, first, last, context.log, run_athletes(context)).items():
        yield dg.MaterializeResult(asset_key=name, metadata=metadata)


def publish_range(
    storage: Storage,
    first: date,
    last: date,
    log: logging.Logger | dg.DagsterLogManager,
    athletes: list[str] | None = None,
) -> dict[str, dict]:
    """Publish the days first..last of `athletes` (None: all) from the lake (the work of
    `activity_tables`): metadata per table."""
    zones = privacy_zones_frame(storage.profiles())
    counts = publish_days(
        storage.warehouse,
        storage.lake,
        first,
        last,
        privacy_zones=zones,
        duplicates=storage.duplicate_policy(),
        athletes=athletes,
    )
    log.info(f"published {counts} for {first}..{last}")
    return {name: {"rows": counts[name], "first_day": str(first), "last_day": str(last)} for name in PUBLISHED_TABLES}


@dg.asset(deps=[source_files], group_name="body", pool="warehouse", kinds={"duckdb"})
def body_measurements(storage: Storage) -> dg.MaterializeResult:
    """Weight, body fat and the rest that scales record, per athlete and time."""
    return dg.MaterializeResult(metadata=publish_body(storage))


def publish_body(storage: Storage, athletes: list[str] | None = None) -> dict:
    """New body measurements of `athletes` (None: all) from the lake into the warehouse (the work of
    `body_measurements`)."""
    added = publish_body_measurements(storage.warehouse, storage.lake, athletes)
    rows = storage.warehouse.query("SELECT count(*) AS n FROM body_measurements")["n"][0]
    return {"rows": int(rows), "added": added}


def summary_metadata(summary: ImportSummary) -> dict:
    failures = "\n".join(f"| {Path(o.path).name} | {o.status} | {o.reason} |" for o in summary.failures[:200])
    days = summary.days
    return {
        "imported": summary.count("ok"),
        "partial": summary.count("partial"),
        "no_activity": summary.count("no_activity"),
        "failed": summary.count("failed"),
        "duplicate": summary.count("duplicate"),
        "skipped": summary.count("skipped"),
        "ignored": summary.count("ignored"),  # hidden archive members, each with a ledger row
        "records": summary.records,
        "days": dg.MetadataValue.json([d.isoformat() for d in days]),
        "first_day": days[0].isoformat() if days else None,
        "last_day": days[-1].isoformat() if days else None,
        "problems": dg.MetadataValue.md("| file | status | reason |\n|---|---|---|\n" + failures)
        if failures
        else "none",
    }


def failed_files_check(summary: ImportSummary) -> dg.AssetCheckResult:
    """The run's failed and partial files with their reasons, visible on the asset in the UI."""
    failures = summary.failures
    rows = "\n".join(f"| {o.path} | {o.status} | {o.reason} |" for o in failures[:200])
    return dg.AssetCheckResult(
        asset_key="source_files",
        check_name="every_file_imported",
        passed=not failures,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(failures)} file(s) not imported whole" if failures else "every file imported",
        metadata={
            "failed": summary.count("failed"),
            "partial": summary.count("partial"),
            "files": dg.MetadataValue.md("| file | status | reason |\n|---|---|---|\n" + rows) if rows else "none",
        },
    )


#: Seconds between progress lines in the run's log; each line is a stored Dagster event.
PROGRESS_EVERY_S = 5.0
#: Failed or partial files logged one by one; the rest are counted (the asset check lists them all).
WARNINGS_LOGGED = 50


def _log_every(log: logging.Logger | dg.DagsterLogManager, every_s: float, then):
    """Log a heartbeat every `every_s` seconds and the first problems, then pass each outcome on."""
    seen = {"files": 0, "problems": 0, "next": time.monotonic() + every_s}

    def report(outcome) -> None:
        then(outcome)
        seen["files"] += 1
        if outcome.status in ("failed", "partial"):
            seen["problems"] += 1
            if seen["problems"] <= WARNINGS_LOGGED:
                log.warning(f"{outcome.status}: {outcome.path}: {outcome.reason}")
            elif seen["problems"] == WARNINGS_LOGGED + 1:
                log.warning("more files not imported whole: the asset check every_file_imported lists them")
        if time.monotonic() >= seen["next"]:
            seen["next"] = time.monotonic() + every_s
            log.info(f"{seen['files']} files processed ({seen['problems']} not imported whole)")

    return report


def _warn(log: logging.Logger | dg.DagsterLogManager, progress: RunProgress, message: str) -> None:
    """A warning in the run's log, and for whoever watches the run (the CLI prints it as one line)."""
    log.warning(message)
    progress.note(message)
