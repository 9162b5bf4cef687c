"""`generate_export`: a deterministic export of several athletes' history, plus its ground truth."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

from . import fit_writer, gpx_writer
from .body import weight_readings
from .plans import SessionPlan, TrainingVolume, plan_sessions
from .profiles import Athlete, cast, write_athletes_toml
from .signals import simulate
from .truth import ACTIVITIES, BACKWARD_INTERVALS, WEIGHTS, ExportTruth, weekly_distance


def generate_export(
    out_dir: Path,
    *,
    seed: int = 7,
    athletes: int = 3,
    weeks: int = 16,
    start: date = date(2024, 1, 1),
    sample_interval_s: int = 1,
    truth_dir: Path | None = None,
    volume: TrainingVolume = TrainingVolume(),
) -> ExportTruth:
    """Write `out_dir/<athlete_id>/*.fit|*.gpx` (activities and weight-scale readings) and the truth.

    The same arguments give byte-identical files.  The truth (Parquet frames and `athletes.toml`)
    goes to `truth_dir`, by default the sibling folder `<out_dir>.truth/`: never inside `out_dir`,
    where every file is meant to be imported.  Existing files of the same names are overwritten.
    """
    if athletes < 1 or weeks < 1 or sample_interval_s < 1:
        raise ValueError("athletes, weeks and sample_interval_s must be at least 1")
    out_dir = Path(out_dir).resolve()
    truth_dir = Path(truth_dir).resolve() if truth_dir else out_dir.with_name(f"{out_dir.name}.truth")
    if truth_dir.is_relative_to(out_dir):
        raise ValueError(f"truth_dir {truth_dir} is inside out_dir {out_dir}: it would be imported")

    activities, intervals, weights = [], [], []
    profiles = cast(athletes, seed)
    for athlete in profiles:
        folder = out_dir / athlete.id
        folder.mkdir(parents=True, exist_ok=True)
        for plan in plan_sessions(athlete, seed, weeks, start, volume):
            samples = simulate(plan, athlete, seed, sample_interval_s)
            activities.append(_write_activity(out_dir, plan, athlete, samples, sample_interval_s))
            intervals += _backward_intervals(plan, samples)
        for reading in weight_readings(athlete, seed, start, weeks, volume.weigh_in_days):
            name = f"weight-{reading['local_day']:%Y-%m-%d}.fit"
            fit_writer.write_weight(folder / name, athlete, reading)
            weights.append({"athlete_id": athlete.id, "file": f"{athlete.id}/{name}", **reading})

    activity_frame = pl.DataFrame(activities, schema=ACTIVITIES)
    truth = ExportTruth(
        athletes=pl.DataFrame([{"athlete_id": a.id, **a.profile_row()} for a in profiles]),
        activities=activity_frame,
        backward_intervals=pl.DataFrame(intervals, schema=BACKWARD_INTERVALS),
        weights=pl.DataFrame([{k: w[k] for k in WEIGHTS.names()} for w in weights], schema=WEIGHTS),
        weekly_distance=weekly_distance(activity_frame),
    )
    truth.save(truth_dir)
    write_athletes_toml(truth_dir / "athletes.toml", profiles)
    return truth


def _write_activity(
    out_dir: Path, plan: SessionPlan, athlete: Athlete, samples: pl.DataFrame, sample_interval_s: int
) -> dict:
    """Write the file for `plan`; return its truth row."""
    path = out_dir / plan.file
    if plan.format == "fit":
        fit_writer.write_activity(path, plan, athlete, samples, sample_interval_s)
        distance = float(samples["distance_m"][-1])
    else:
        points = gpx_writer.track_points(samples)
        gpx_writer.write_activity(path, plan, points)
        distance = gpx_writer.track_length_m(points)
    gaps = samples["t_s"].diff().fill_null(0)
    return {
        "athlete_id": plan.athlete_id,
        "file": plan.file,
        "format": plan.format,
        "sport": plan.sport,
        "name": plan.name,
        "start_ts": plan.start_utc,
        "local_start_ts": plan.local_start,
        "utc_offset_s": plan.utc_offset_s,
        "duration_s": float(samples["t_s"][-1]),
        "timer_s": float(gaps.filter(gaps <= sample_interval_s).sum()),
        "distance_m": distance,
        "records": samples.height,
        "has_backward": plan.has_backward,
        "labelled": plan.labelled,
    }


def _backward_intervals(plan: SessionPlan, samples: pl.DataFrame) -> list[dict]:
    rows, offset = [], 0
    for index, phase in enumerate(plan.phases):
        if phase.kind == "backward":
            inside = samples.filter(pl.col("phase") == index)["speed_mps"]
            rows.append(
                {
                    "athlete_id": plan.athlete_id,
                    "file": plan.file,
                    "start_ts": plan.start_utc + timedelta(seconds=offset),
                    "end_ts": plan.start_utc + timedelta(seconds=offset + phase.duration_s),
                    "labelled": plan.labelled,
                    "mean_speed_mps": inside.mean() if inside.len() else None,
                }
            )
        offset += phase.duration_s
    return rows
