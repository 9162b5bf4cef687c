"""Backfills and re-processing from the CLI: the publish job over a month range, in one run each.

`backfill` re-runs every stage downstream of the lake (activities, records, laps, gait baselines,
segments, energy) for the months holding the given days in one run, then refreshes the marts; `reprocess` finds the months a detection or
energy model change left stale and backfills exactly those.  Both run in-process on the persistent
instance, so they appear in the UI, and take the same "warehouse" pool slot as the daemon's runs.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from retrostride.assets.imports import PUBLISHED_TABLES
from retrostride.assets.partitions import athletes_tags
from retrostride.assets.settings import Settings
from retrostride.pipelines.definitions import build_definitions
from retrostride.pipelines.planning import month_ranges
from retrostride.pipelines.runs import QUIET, instance_for, process_tags, range_tags, reap_dead_runs
from retrostride.warehouse.store import Warehouse, of_athletes
from retrostride.warehouse.versions import occupied_months, stale_months

#: Called with (asset name, "materialized" | "failed") as a backfill run goes.
StageProgress = Callable[[str, str], None]

#: Tables whose rows record the model version that made them, and the one that must exist per month.
VERSIONED_TABLES = ("segments", "activity_energy")
REQUIRED_TABLE = "segments"
#: What the publish job copies from the lake; everything else in it is derived.
PUBLISHED = {dg.AssetKey(k) for k in PUBLISHED_TABLES}


@dataclass(frozen=True)
class BackfillRun:
    first: date  # first days of months
    last: date
    assets: tuple[str, ...]
    run_id: str
    success: bool
    rows: dict[str, int] = field(default_factory=dict)  # table → rows the run wrote (replacing the months' rows)
    model_versions: frozenset[str] = frozenset()  # of the detection and energy rows written


def activities_between(settings: Settings, first: date, last: date, athletes: list[str] | None = None) -> int:
    """Activities of `athletes` (None: any) starting (UTC day) from `first` to `last`; 0 without a warehouse."""
    if not settings.catalog.exists():
        return 0
    found = Warehouse(settings.catalog).query(
        f"SELECT count(*) AS n FROM activities WHERE start_day BETWEEN ? AND ? AND {of_athletes(athletes)}",
        [first, last],
    )
    return int(found["n"][0])


def _changes(result: dg.ExecuteInProcessResult) -> tuple[dict[str, int], frozenset[str]]:
    """Rows written per table and the model versions, from a run's materializations."""
    rows, versions = {}, set()
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if "rows" in metadata:
            table = event.asset_key.to_user_string()
            rows[table] = rows.get(table, 0) + int(metadata["rows"].value)
        if "model_version" in metadata:
            versions.add(str(metadata["model_version"].value))
    return rows, frozenset(versions)


def current_model_versions(settings: Settings) -> dict[str, str]:
    """The model_version the configured detection and energy model (RETROSTRIDE_MODEL) writes into
    each versioned table."""
    from retrostride.assets.settings import load_model_config
    from retrostride.assets.transforms.model_config import energy_row_version

    detection, energy = load_model_config(settings.model_path)
    version = energy_row_version(detection.model_version, energy)
    return {table: version for table in VERSIONED_TABLES}


def select_assets(defs: dg.Definitions, names: Sequence[str] | None, job: str = "publish") -> list[dg.AssetKey]:
    """The job's assets named in `names` (all when empty), with the assets that must run with them."""
    job_def = defs.resolve_job_def(job)
    graph = defs.resolve_asset_graph()
    available = job_def.asset_layer.selected_asset_keys
    if not names:
        return sorted(available)
    unknown = sorted(n for n in names if dg.AssetKey(n) not in available)
    if unknown:
        known = ", ".join(sorted(k.to_user_string() for k in available))
        raise ValueError(f"not in the {job} job: {', '.join(unknown)} (choose from {known})")
    keys = {k for n in names for k in graph.get(dg.AssetKey(n)).execution_set_asset_keys}
    return sorted(keys)


def backfill_months(
    settings: Settings,
    first: date,
    last: date,
    assets: Sequence[str] | None = None,
    progress: StageProgress | None = None,
    instance: dg.DagsterInstance | None = None,
    tags: Mapping[str, str] | None = None,
    athletes: list[str] | None = None,
) -> BackfillRun:
    """One run of the publish job over months first..last (any day in them), optionally for some
    assets, and for some `athletes` (None: every athlete): only their rows are replaced."""
    first, last = first.replace(day=1), last.replace(day=1)
    if last < first:
        raise ValueError(f"end {last} is before start {first}")
    Warehouse(settings.catalog).ensure_schema()  # a home from an older version publishes into today's tables
    if instance is None:
        instance = instance_for(settings)  # which has reaped the dead runs
    else:
        reap_dead_runs(instance)
    defs = build_definitions(settings)
    selection = select_assets(defs, assets)
    run_id = str(uuid.uuid4())
    with _watching(instance, run_id, progress):
        result = defs.resolve_job_def("publish").execute_in_process(
            instance=instance,
            run_config=QUIET,
            asset_selection=selection,
            run_id=run_id,
            raise_on_error=False,
            tags={
                **range_tags(first, last),
                "retrostride/trigger": "backfill",
                **athletes_tags(athletes),
                **process_tags(),
                **(tags or {}),
            },
        )
    success = result.success
    rows, versions = _changes(result)
    if success:  # then the marts and the readers' snapshot, as after an import
        marts_run = str(uuid.uuid4())
        with _watching(instance, marts_run, progress):
            success = (
                defs.resolve_job_def("marts")
                .execute_in_process(
                    instance=instance, run_config=QUIET, run_id=marts_run, raise_on_error=False, tags=process_tags()
                )
                .success
            )
    return BackfillRun(first, last, tuple(k.to_user_string() for k in selection), run_id, success, rows, versions)


def stale_ranges(
    settings: Settings, versions: Mapping[str, str] | None = None, athletes: list[str] | None = None
) -> list[tuple[date, date]]:
    """Month ranges holding rows of an old model version, or activities without derived rows, of
    `athletes` (None: any)."""
    warehouse = Warehouse(settings.catalog)
    versions = current_model_versions(settings) if versions is None else versions
    required = [REQUIRED_TABLE] if REQUIRED_TABLE in versions else []
    stale = stale_months(warehouse, versions, required, athletes)
    return month_ranges(stale, occupied_months(warehouse, athletes))


def reprocess(
    settings: Settings,
    versions: Mapping[str, str] | None = None,
    progress: StageProgress | None = None,
    instance: dg.DagsterInstance | None = None,
    athletes: list[str] | None = None,
) -> list[BackfillRun]:
    """Backfill exactly the stale months of `athletes` (None: every athlete), for them only: every
    stage derived from the published tables (gait baselines, segments, energy, marts) re-runs there;
    the tables decoded files fill are left as they are."""
    versions = current_model_versions(settings) if versions is None else versions
    defs = build_definitions(settings)
    in_job = defs.resolve_job_def("publish").asset_layer.selected_asset_keys
    derived = sorted(k.to_user_string() for k in in_job if k not in PUBLISHED)
    instance = instance or instance_for(settings)
    assets = derived or None
    return [
        backfill_months(
            settings, first, last, assets, progress, instance, {"retrostride/trigger": "reprocess"}, athletes
        )
        for first, last in stale_ranges(settings, versions, athletes)
    ]


class _watching:
    """Report a run's materializations and failed steps while it executes (polls the event log)."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, progress: StageProgress | None):
        self.instance, self.run_id, self.progress = instance, run_id, progress
        self.done, self.seen = threading.Event(), 0
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        if self.progress:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.done.set()
            self.thread.join()
            self._report()

    def _poll(self) -> None:
        while not self.done.wait(0.5):
            self._report()

    def _report(self) -> None:
        types = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.STEP_FAILURE}
        try:
            entries = self.instance.all_logs(self.run_id, of_type=types)
        except Exception:  # the run's log may not exist yet
            return
        for entry in entries[self.seen :]:
            event = entry.dagster_event
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                self.progress(event.asset_key.to_user_string(), "materialized")
            else:
                self.progress(event.step_key or "?", "failed")
        self.seen = len(entries)
