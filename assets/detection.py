"""Backward detection and energy: each athlete's forward gait, then segments and kcal per month.

The assets wrap `refit_baselines` and `score_range`, which the one-run `import_files` job calls as well.
"""

import logging
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import polars as pl

from retrostride.assets.imports import body_measurements
from retrostride.assets.partitions import PARTITIONS_NOTE, monthly, run_athletes
from retrostride.assets.resources import Models, RunProgress, Storage, no_progress
from retrostride.assets.transforms.energy import implausible_energy
from retrostride.assets.transforms.gait import fit_gait_baselines, stale_baselines, training_digests
from retrostride.assets.transforms.model_config import energy_row_version
from retrostride.assets.transforms.scoring import RECORD_COLUMNS, score_activities
from retrostride.assets.transforms.segments import backward_seconds
from retrostride.warehouse import scores
from retrostride.warehouse.processes import map_in_processes
from retrostride.warehouse.profiles import profiles_frame
from retrostride.warehouse.store import Warehouse

PLAUSIBLE_ENERGY = "plausible_energy"
SEGMENTS_COVER_ACTIVITIES = "segments_cover_activities"
#: Samples scored at once: consecutive months are batched up to this (memory stays bounded; each of
#: `storage.workers` processes scores a batch, and one more is read ahead).
SCORE_BATCH_RECORDS = 250_000
#: Batches whose records are read from the warehouse by one query: a query costs tens of ms whatever
#: it finds, and the pipeline's process holds what it read until the last batch of it is handed over
#: (4: 200 MB more).
BATCHES_PER_READ = 2
#: Score rows (segments, energy, detection) written in one transaction: many batches' rows go in
#: together, since a commit per batch costs more than its rows (a kill before the last write leaves
#: the months pending, and the next run scores them again either way).
SCORE_ROWS_PER_WRITE = 500_000
#: Batches from which scoring spreads over `storage.workers` processes (about a year of one runner):
#: with fewer, starting the processes costs more than they save (README, Performance).
BATCHES_FOR_PROCESSES = 4


@dg.asset(deps=["activities", "records", "laps"], group_name="detection", pool="warehouse", kinds={"polars", "duckdb"})
def athlete_gait_baselines(context: dg.AssetExecutionContext, storage: Storage, models: Models) -> dg.MaterializeResult:
    """Per athlete: a robust fit of log step length on log speed over their latest forward runs, with
    its coverage and quality; with fewer than `baseline_min_runs` runs, the literature prior blended
    towards them.  No forward run at all: no row, and scoring uses the prior alone.
    Only athletes whose latest runs (or their names, or the model) changed are refit (of the run's
    athletes, `run_athletes`)."""
    return dg.MaterializeResult(metadata=refit_baselines(storage, models, run_athletes(context)))


def refit_baselines(storage: Storage, models: Models, athletes: list[str] | None = None) -> dict:
    """Refit the stale forward-gait baselines of `athletes` (None: all; the work of
    `athlete_gait_baselines`): its metadata."""
    detection, _ = models.configs()
    chosen = scores.latest_runs(storage.warehouse, detection.running_sports, detection.baseline_max_runs)
    refit = stale_baselines(training_digests(chosen), scores.gait_baselines(storage.warehouse), detection.model_version)
    refit = [athlete for athlete in refit if athletes is None or athlete in athletes]
    runs = scores.activity_frames(storage.warehouse, chosen.filter(pl.col("athlete_id").is_in(refit)))
    baselines = fit_gait_baselines(
        runs.records, runs.activities, runs.laps, detection, profiles_frame(storage.profiles())
    )
    scores.replace_gait_baselines(storage.warehouse, baselines, refit, athletes)
    baselines = scores.gait_baselines(storage.warehouse)
    athletes = sorted(set(chosen["athlete_id"].unique().to_list()))
    return {
        "athletes": len(athletes),
        "with_baseline": len(baselines),
        "without_baseline": dg.MetadataValue.json(sorted(set(athletes) - set(baselines["athlete_id"].to_list()))),
        "refit": dg.MetadataValue.json(refit),
        "model_version": detection.model_version,
        "baselines": dg.MetadataValue.md(_markdown(baselines.drop("model_version"))),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "segments",
            deps=["activities", "records", "laps", athlete_gait_baselines],
            description="The `segments` table: forward, backward and unknown stretches of every activity (run, walk"
            " or unknown), with evidence, confidence and kcal." + PARTITIONS_NOTE,
            kinds={"polars", "duckdb"},
        ),
        dg.AssetSpec(
            "activity_energy",
            deps=["segments", body_measurements],
            description="The `activity_energy` table: net, gross, backward, ACSM and heart-rate kcal per activity, and"
            " the body mass used." + PARTITIONS_NOTE,
            kinds={"polars", "duckdb"},
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            PLAUSIBLE_ENERGY,
            asset="activity_energy",
            description="Level-ground net cost within 0.5–2.5 kcal/kg/km; backward never above the whole.",
        ),
        dg.AssetCheckSpec(
            SEGMENTS_COVER_ACTIVITIES,
            asset="segments",
            description="Every activity has segments, in order, without overlaps.",
        ),
    ],
    partitions_def=monthly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="detection",
    pool="warehouse",
)
def scored_activities(context: dg.AssetExecutionContext, storage: Storage, models: Models):
    """Detect segments and estimate energy for the activities of each month in the run's range (of the
    run's athletes, `run_athletes`), and replace that month's rows in one transaction."""
    window = context.partition_time_window
    yield from score_range(
        storage, models, window.start.date(), window.end.date(), context.log, athletes=run_athletes(context)
    )


def score_range(
    storage: Storage,
    models: Models,
    start: date,
    end: date,
    log: logging.Logger | dg.DagsterLogManager,
    progress: RunProgress = no_progress,
    athletes: list[str] | None = None,
) -> list[dg.MaterializeResult | dg.AssetCheckResult]:
    """Score the activities of `athletes` (None: all) that started in [start, end) (the work of `scored_activities`): a result
    for `segments` and `activity_energy`, and their two checks.  `progress` hears of each month done."""
    detection, energy = models.configs()
    warehouse = storage.warehouse
    baselines = scores.gait_baselines(warehouse)
    measurements = scores.body_measurements(warehouse)
    profiles = profiles_frame(storage.profiles())
    scores.drop_orphan_scores(warehouse, athletes)
    totals = {"segments": 0, "activity_energy": 0, "activity_detection": 0}
    statuses: dict[str, int] = {}
    backward_s, kcal, problems, gaps = 0.0, 0.0, [], []
    months_left = _months(start, end)
    batches = scores.month_batches(warehouse, start, end, SCORE_BATCH_RECORDS, athletes)
    workers = storage.workers if len(batches) >= BATCHES_FOR_PROCESSES else 1
    scoring = map_in_processes(
        score_activities,
        _read(warehouse, batches, athletes),
        workers,
        storage.staging,
        baselines=baselines,
        body_measurements=measurements,
        profiles=profiles,
        detection=detection,
        energy=energy,
    )
    unwritten = _UnwrittenScores()
    with warehouse.held():  # many reads and writes: one open of the file instead of one each
        for (first, last, activities, samples), scored in scoring:
            counts = unwritten.add(activities["activity_id"].to_list(), scored)
            if unwritten.rows >= SCORE_ROWS_PER_WRITE:
                unwritten.write(warehouse)
            for status, count in scored.activity_detection["detection_status"].value_counts().iter_rows():
                statuses[status] = statuses.get(status, 0) + count
            for table, count in counts.items():
                totals[table] += count
            backward_s += backward_seconds(scored.segments)
            kcal += float(scored.activity_energy["kcal_net"].sum() or 0.0)
            problems.append(implausible_energy(scored.activity_energy))
            gaps.append(_coverage_problems(activities, scored.segments))
            log.info(
                f"{first:%Y-%m}..{last:%Y-%m}: {samples:,} samples, "
                f"{counts['activity_energy']} activities, {counts['segments']} segments"
            )
            done = min(months_left, _months(first, last + timedelta(days=1)))
            progress.advance("detect", done)
            months_left -= done
        unwritten.write(warehouse)
    progress.advance("detect", months_left)  # months without activities
    version = energy_row_version(detection.model_version, energy)
    return [
        dg.MaterializeResult(
            asset_key="segments",
            metadata={
                "rows": totals["segments"],
                "backward_minutes": round(backward_s / 60, 1),
                "model_version": version,
                "detection_status": dg.MetadataValue.json(dict(sorted(statuses.items()))),
            },
        ),
        dg.MaterializeResult(
            asset_key="activity_energy",
            metadata={"rows": totals["activity_energy"], "kcal_net": round(kcal, 1), "model_version": version},
        ),
        _check_result(PLAUSIBLE_ENERGY, "activity_energy", pl.concat(problems) if problems else None),
        _check_result(SEGMENTS_COVER_ACTIVITIES, "segments", pl.concat(gaps) if gaps else None),
    ]


class _UnwrittenScores:
    """Scored batches not yet in the warehouse: written together, in one transaction."""

    def __init__(self) -> None:
        self._empty()

    def _empty(self) -> None:
        self.activity_ids: list[str] = []
        self.frames: dict[str, list[pl.DataFrame]] = {table: [] for table in scores.SCORE_TABLES}
        self.rows = 0

    def add(self, activity_ids: list[str], scored) -> dict[str, int]:
        """Hold a batch's rows (its `activity_ids` and what `score_activities` gave): rows per table."""
        self.activity_ids += activity_ids
        counts = {}
        for table in scores.SCORE_TABLES:
            frame = getattr(scored, table)
            self.frames[table].append(frame)
            counts[table] = frame.height
        self.rows += sum(counts.values())
        return counts

    def write(self, warehouse: Warehouse) -> None:
        """Replace the held activities' score rows with the held rows, in one transaction."""
        if self.activity_ids:
            rows = {table: pl.concat(frames, how="vertical_relaxed") for table, frames in self.frames.items()}
            scores.replace_scores(warehouse, self.activity_ids, rows)
        self._empty()


def _read(
    warehouse: Warehouse, batches: list[tuple[date, date]], athletes: list[str] | None
) -> Iterator[tuple[tuple, dict[str, pl.DataFrame]]]:
    """Each batch's frames to score (of `athletes`; None: all), keyed by (first day, last day, activities, samples)."""
    for first, last, frames in scores.batches_started(warehouse, batches, BATCHES_PER_READ, RECORD_COLUMNS, athletes):
        yield (first, last, frames.activities, frames.records.height), frames.as_dict()


def _coverage_problems(activities: pl.DataFrame, segments: pl.DataFrame) -> pl.DataFrame:
    """activity_id, problem: activities without segments, and segments overlapping their predecessor."""
    missing = activities.join(segments, on="activity_id", how="anti").select(
        "activity_id", pl.lit("no segments").alias("problem")
    )
    overlapping = (
        segments.sort("activity_id", "segment_index")
        .filter((pl.col("start_ts") < pl.col("end_ts").shift(1).over("activity_id")).fill_null(False))
        .select("activity_id", pl.lit("segments overlap").alias("problem"))
    )
    return pl.concat([missing, overlapping])


def _check_result(name: str, asset: str, problems: pl.DataFrame | None) -> dg.AssetCheckResult:
    problems = (
        problems if problems is not None else pl.DataFrame(schema={"activity_id": pl.String, "problem": pl.String})
    )
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=asset,
        passed=problems.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failures": len(problems), "examples": dg.MetadataValue.md(_markdown(problems.head(50)))},
    )


def _markdown(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "none"
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.width + "\n"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return header + "\n".join(rows)


def _cell(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _months(start: date, end: date) -> int:
    """Months from the one holding `start` up to the one holding `end` (exclusive: a first day)."""
    return max(0, (end.year - start.year) * 12 + end.month - start.month)
