"""The import assets: new files into the lake and ledger, then day partitions into the warehouse."""


from datetime import timedelta
from pathlib import Path

import dagster as dg

from assets.partitions import monthly
from connectors.sources import expanded_sources
from pipelines.profiles import privacy_zones_frame
from pipelines.resources import ImportProgress, Storage
from warehouse.ingest import ImportSummary, import_files
from warehouse.publish import publish_body_measurements, publish_days


class ImportConfig(dg.Config):
    """What to import: paths (files or inbox-like folders; default the inbox), optionally for one athlete."""

    paths: list[str] = []
    athlete: str | None = None


@dg.asset(group_name="ingest", pool="warehouse", kinds={"python", "parquet"})
def source_files(context: dg.AssetExecutionContext, config: ImportConfig, storage: Storage,
                 import_progress: dg.ResourceParam[ImportProgress]) -> dg.MaterializeResult:
    """Every new source file hashed, copied, decoded into the lake and explained in the import ledger."""
    profiles = storage.profiles()
    paths = [Path(p) for p in (config.paths or [storage.inbox])]
    limits = storage.limits()
    with expanded_sources(paths, config.athlete, storage.staging, limits.intake) as files:
        for athlete in sorted({f.athlete_id for f in files} - set(profiles)):
            context.log.warning(f"athlete {athlete!r} has no profile in {storage.athletes_file}: using defaults")
        for profile in profiles.values():
            if profile.ignored_keys:
                context.log.info(f"athlete {profile.athlete_id!r}: ignored profile keys {list(profile.ignored_keys)}")
        zones = {a: p.timezone for a, p in profiles.items() if p.timezone}
        summary = import_files(files, storage.lake, storage.warehouse, zones=zones, workers=storage.workers,
                               progress=_log_every(context, 100, then=import_progress), limits=limits)
    if summary.pending:
        context.log.info(f"{len(summary.pending)} day(s) imported by an interrupted run are published now")
    return dg.MaterializeResult(metadata=_summary_metadata(summary))


@dg.multi_asset(
    specs=[
        dg.AssetSpec("activities", deps=[source_files], description="One row per activity (a FIT session or a GPX track).", kinds={"duckdb"}),
        dg.AssetSpec("records", deps=[source_files], description="One row per sample, canonical units (DESIGN §4).", kinds={"duckdb"}),
        dg.AssetSpec("laps", deps=[source_files], description="Laps with their workout-step names.", kinds={"duckdb"}),
    ],
    partitions_def=monthly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="activities",
    pool="warehouse",
)
def activity_tables(context: dg.AssetExecutionContext, storage: Storage):
    """Replace the activities, records and laps of the run's days (UTC start date) in one transaction."""
    window = context.partition_time_window
    first, last = window.start.date(), (window.end - timedelta(days=1)).date()
    zones = privacy_zones_frame(storage.profiles())
    counts = publish_days(storage.warehouse, storage.lake, first, last, privacy_zones=zones)
    context.log.info(f"published {counts} for {first}..{last}")
    for name in ("activities", "records", "laps"):
        yield dg.MaterializeResult(asset_key=name, metadata={"rows": counts[name], "first_day": str(first), "last_day": str(last)})


@dg.asset(deps=[source_files], group_name="body", pool="warehouse", kinds={"duckdb"})
def body_measurements(storage: Storage) -> dg.MaterializeResult:
    """Weight, body fat and the rest that scales record, per athlete and time."""
    added = publish_body_measurements(storage.warehouse, storage.lake)
    rows = storage.warehouse.query("SELECT count(*) AS n FROM body_measurements")["n"][0]
    return dg.MaterializeResult(metadata={"rows": int(rows), "added": added})


def _summary_metadata(summary: ImportSummary) -> dict:
    failures = "\n".join(f"| {Path(o.path).name} | {o.status} | {o.reason} |" for o in summary.failures[:200])
    days = summary.days
    return {
        "imported": summary.count("ok"),
        "partial": summary.count("partial"),
        "failed": summary.count("failed"),
        "duplicate": summary.count("duplicate"),
        "skipped": summary.count("skipped"),
        "records": summary.records,
        "days": dg.MetadataValue.json([d.isoformat() for d in days]),
        "first_day": days[0].isoformat() if days else None,
        "last_day": days[-1].isoformat() if days else None,
        "problems": dg.MetadataValue.md("| file | status | reason |\n|---|---|---|\n" + failures) if failures else "none",
    }


def _log_every(context: dg.AssetExecutionContext, every: int, then: ImportProgress):
    """Log problems and a heartbeat every `every` files, then pass the outcome on."""
    seen = {"n": 0}

    def log(outcome) -> None:
        then(outcome)
        seen["n"] += 1
        if outcome.status in ("failed", "partial"):
            context.log.warning(f"{outcome.status}: {outcome.path}: {outcome.reason}")
        if seen["n"] % every == 0:
            context.log.info(f"{seen['n']} files processed")

    return log

