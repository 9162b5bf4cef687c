"""The Dagster code location: assets, jobs, sensors, schedules and resources (`workspace.yaml` points here)."""

from __future__ import annotations

import dagster as dg

from retrostride.assets.detection import athlete_gait_baselines, scored_activities
from retrostride.assets.imports import PUBLISHED_TABLES, activity_tables, body_measurements, source_files
from retrostride.assets.maintenance import compacted_warehouse, maintenance_job, maintenance_schedule
from retrostride.assets.marts import mart_views, published_warehouse
from retrostride.assets.reports import athlete_reports
from retrostride.assets.resources import Models, RunProgress, Storage, no_progress
from retrostride.assets.settings import Settings
from retrostride.pipelines.import_job import import_job
from retrostride.pipelines.schedules import nightly_schedule
from retrostride.pipelines.sensors import build_sensors

ASSETS = [
    source_files,
    activity_tables,
    body_measurements,
    athlete_gait_baselines,
    scored_activities,
    mart_views,
    published_warehouse,
    athlete_reports,
    compacted_warehouse,
]

publish_job = dg.define_asset_job(
    "publish",
    selection=dg.AssetSelection.assets(*PUBLISHED_TABLES, athlete_gait_baselines, "segments", "activity_energy"),
    description="Publish, detect and score month partitions again (backfills, reprocess); imports run `import_files`.",
)
marts_job = dg.define_asset_job(
    "marts",
    selection=dg.AssetSelection.assets(mart_views, published_warehouse, athlete_reports),
    description="Refresh the marts, publish the snapshot readers query and redraw the HTML report (after a backfill; "
    "imports run `import_files`).",
)


def build_definitions(settings: Settings, progress: RunProgress = no_progress) -> dg.Definitions:
    """Definitions for `settings`; the CLI passes its progress bar as `progress`."""
    return dg.Definitions(
        assets=ASSETS,
        jobs=[import_job, publish_job, marts_job, maintenance_job],
        sensors=build_sensors(settings, import_job),
        schedules=[nightly_schedule(settings, import_job), maintenance_schedule],
        # Steps run one after another anyway (one warehouse writer): a process per step would only add start-up time.
        executor=dg.in_process_executor,
        resources={
            "storage": Storage.from_settings(settings),
            "models": Models.from_settings(settings),
            "progress": progress,
        },
    )


defs = build_definitions(Settings.from_env())
