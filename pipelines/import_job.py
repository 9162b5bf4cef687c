"""The `import_files` job: one run per import, from new files to what readers query.

Decode the new files into the lake, publish and score the months they touched (and any an
interrupted run left pending), refresh the marts and publish the readers' snapshot. The daemon's
sensors and the nightly schedule request it; `retrostride import` executes it in-process: the chain
is written once, here.

Which months a file touches is known only once it is decoded, so this is a job of ops rather than an
asset job (a run covers one partition range, fixed when it starts). Each op does the work of the
assets it names by calling their functions (`assets.imports`, `assets.detection`, `assets.marts`)
and records their materializations, per month partition where the assets are partitioned, so the
asset graph shows what the run did. Backfills and `reprocess` materialize the assets themselves.
"""

from datetime import date, timedelta

import dagster as dg

from retrostride.assets.detection import refit_baselines, score_range
from retrostride.assets.imports import (
    ImportConfig,
    failed_files_check,
    import_sources,
    publish_body,
    publish_range,
    summary_metadata,
)
from retrostride.assets.marts import publish_readers_snapshot
from retrostride.assets.reports import draw_report
from retrostride.assets.resources import Models, RunProgress, Storage
from retrostride.pipelines.planning import month_end, months_between, months_of, plan_ranges
from retrostride.warehouse.marts import MARTS, refresh_marts
from retrostride.warehouse.publish import mark_published


@dg.op(pool="warehouse", description="Import new files into the lake and the ledger: the days they touched.")
def import_new_files(
    context: dg.OpExecutionContext, config: ImportConfig, storage: Storage, progress: dg.ResourceParam[RunProgress]
) -> dict[str | None, list[date]]:
    summary = import_sources(config, storage, context.log, progress)
    context.log_event(dg.AssetMaterialization("source_files", metadata=summary_metadata(summary)))
    context.log_event(_evaluation(failed_files_check(summary)))
    context.log_event(dg.AssetMaterialization("body_measurements", metadata=publish_body(storage, summary.athletes)))
    return summary.athlete_days


@dg.op(
    pool="warehouse",
    description="Publish, detect and score the months the import touched; then they are no longer pending.",
)
def publish_months(
    context: dg.OpExecutionContext,
    days: dict[str | None, list[date]],
    storage: Storage,
    models: Models,
    progress: dg.ResourceParam[RunProgress],
) -> list[tuple[date, date]]:
    # only the run's athletes' rows (their own files in the warehouse): runs for other athletes go on beside it
    athletes = None if None in days else sorted(days)
    ranges = plan_ranges(months_of([day for found in days.values() for day in found]))
    months = sum(len(months_between(first, last)) for first, last in ranges)
    progress.start("publish", months)
    progress.start("detect", months)
    for first, last in ranges:
        for name, metadata in publish_range(storage, first, month_end(last), context.log, athletes).items():
            _materialized(context, name, first, last, metadata)
        progress.advance("publish", len(months_between(first, last)))
    if ranges:
        context.log_event(
            dg.AssetMaterialization("athlete_gait_baselines", metadata=refit_baselines(storage, models, athletes))
        )
    for first, last in ranges:
        scored = score_range(
            storage, models, first, month_end(last) + timedelta(days=1), context.log, progress, athletes
        )
        for result in scored:
            if isinstance(result, dg.AssetCheckResult):
                context.log_event(_evaluation(result))
            else:
                _materialized(context, result.asset_key.to_user_string(), first, last, result.metadata)
        cleared = mark_published(storage.warehouse, first, month_end(last), athletes)
        context.log.info(f"{cleared} pending day(s) of {first:%Y-%m}..{last:%Y-%m} published")
    return ranges


@dg.op(pool="warehouse", description="Refresh the marts, then publish the snapshot readers query.")
def refresh_marts_and_snapshot(
    context: dg.OpExecutionContext,
    ranges: list[tuple[date, date]],
    storage: Storage,
    models: Models,
    progress: dg.ResourceParam[RunProgress],
) -> None:
    progress.start("marts", 1)
    progress.start("snapshot", 1)
    refresh_marts(storage.warehouse, models.marts())
    for name in MARTS:
        context.log_event(dg.AssetMaterialization(name))
    progress.advance("marts")
    context.log_event(dg.AssetMaterialization("published_warehouse", metadata=publish_readers_snapshot(storage)))
    progress.advance("snapshot")


@dg.op(
    ins={"after": dg.In(dg.Nothing)},
    description="Redraw the HTML report from the readers' snapshot (read-only: outside the warehouse pool).",
)
def redraw_report(context: dg.OpExecutionContext, storage: Storage) -> None:
    context.log_event(dg.AssetMaterialization("athlete_reports", metadata=draw_report(storage)))


@dg.job(
    name="import_files",
    description="Import new files and publish them: decode, publish and score the months "
    "they touched, refresh the marts and the readers' snapshot, redraw the report, in one run.",
)
def import_job():
    redraw_report(after=refresh_marts_and_snapshot(publish_months(import_new_files())))


def published_ranges(result: dg.ExecuteInProcessResult) -> list[tuple[date, date]]:
    """The month ranges an in-process run of the job published (first days of months)."""
    return result.output_for_node("publish_months")


def _materialized(context: dg.OpExecutionContext, asset: str, first: date, last: date, metadata) -> None:
    """A materialization of each month partition first..last of `asset`, with the range's metadata."""
    for month in months_between(first, last):
        context.log_event(dg.AssetMaterialization(asset, partition=month.isoformat(), metadata=metadata))


def _evaluation(result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    """An asset check's result as an event an op can log."""
    return dg.AssetCheckEvaluation(
        asset_key=result.asset_key,
        check_name=result.check_name,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
    )
