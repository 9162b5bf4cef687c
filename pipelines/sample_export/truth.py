"""What the sample export contains, as Polars frames: the ground truth importers are tested against."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

ACTIVITIES = pl.Schema(
    {
        "athlete_id": pl.String,
        "file": pl.String,  # relative to the export folder, "/"-separated
        "format": pl.String,  # "fit" | "gpx"
        "sport": pl.String,  # "running" | "walking"
        "name": pl.String,  # workout name (labelled FIT), GPX track name, else a Strava-style name
        "start_ts": UTC_US,
        "local_start_ts": pl.Datetime("us"),
        "utc_offset_s": pl.Int32,
        "duration_s": pl.Float64,  # elapsed, first to last record
        "timer_s": pl.Float64,  # elapsed minus auto-pauses
        "distance_m": pl.Float64,  # FIT: final record distance; GPX: haversine length of the track
        "records": pl.Int64,  # records (FIT) or track points (GPX) in the file
        "has_backward": pl.Boolean,
        "labelled": pl.Boolean,
    }
)

BACKWARD_INTERVALS = pl.Schema(
    {
        "athlete_id": pl.String,
        "file": pl.String,
        "start_ts": UTC_US,
        "end_ts": UTC_US,
        "labelled": pl.Boolean,
        "mean_speed_mps": pl.Float64,  # mean recorded speed inside the interval
    }
)

WEIGHTS = pl.Schema(
    {
        "athlete_id": pl.String,
        "file": pl.String,
        "ts": UTC_US,
        "weight_kg": pl.Float64,
        "body_fat_pct": pl.Float64,
    }
)

WEEKLY_DISTANCE = pl.Schema(
    {
        "athlete_id": pl.String,
        "week_start": pl.Date,  # ISO Monday of the local start date
        "distance_km": pl.Float64,  # running and walking
        "sessions": pl.Int64,
    }
)


@dataclass(frozen=True)
class ExportTruth:
    """The ground truth of one generated export (see `generate_export`)."""

    athletes: pl.DataFrame  # one row per athlete: the `athletes.toml` profile
    activities: pl.DataFrame
    backward_intervals: pl.DataFrame
    weights: pl.DataFrame
    weekly_distance: pl.DataFrame

    _FRAMES = ("activities", "backward_intervals", "weights", "weekly_distance")

    def save(self, truth_dir: Path) -> None:
        """Write the frames as `<name>.parquet` (athletes.toml is written with the profiles)."""
        truth_dir.mkdir(parents=True, exist_ok=True)
        for name in self._FRAMES:
            getattr(self, name).write_parquet(truth_dir / f"{name}.parquet")

    @classmethod
    def load(cls, truth_dir: Path) -> ExportTruth:
        """Read a truth folder written by `generate_export`."""
        truth_dir = Path(truth_dir)
        profiles = tomllib.loads((truth_dir / "athletes.toml").read_text(encoding="utf-8"))["athletes"]
        athletes = pl.DataFrame([{"athlete_id": key, **row} for key, row in profiles.items()])
        frames = {name: pl.read_parquet(truth_dir / f"{name}.parquet") for name in cls._FRAMES}
        return cls(athletes=athletes, **frames)


def weekly_distance(activities: pl.DataFrame) -> pl.DataFrame:
    """Distance and sessions per athlete and local ISO week."""
    return (
        activities.group_by("athlete_id", week_start=pl.col("local_start_ts").dt.truncate("1w").dt.date())
        .agg(distance_km=pl.col("distance_m").sum() / 1000.0, sessions=pl.len().cast(pl.Int64))
        .sort("athlete_id", "week_start")
        .select(WEEKLY_DISTANCE.names())
    )
