"""Scoring backward detection against ground truth (generated exports), and loading files for it.

The truth is a frame of backward intervals `(athlete_id, file, start_ts, end_ts, labelled)`, as the
sample-export generator writes to `<out_dir>.truth/backward_intervals.parquet`.  Here an activity's
id is its file path relative to the export folder, so truth and segments join on `file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from retrostride.warehouse.schema import ACTIVITIES, LAPS, RECORDS, conform


@dataclass(frozen=True)
class Frames:
    """Warehouse-shaped frames of a set of files (what ingest would produce)."""

    records: pl.DataFrame
    activities: pl.DataFrame
    laps: pl.DataFrame


def load_files(paths: list[Path], root: Path | None = None) -> Frames:
    """Decode FIT/GPX files into RECORDS, ACTIVITIES, LAPS frames.

    `activity_id` is the path relative to `root` (plus `#session` after the first), `athlete_id`
    its first folder (or the file's stem without a root)."""
    from retrostride.connectors.formats import decoder_for  # decoders are only needed when reading files

    records, activities, laps = [], [], []
    for path in paths:
        _, decode = decoder_for(path)
        decoded = decode(path)
        relative = path.relative_to(root).as_posix() if root else path.name
        athlete = relative.split("/")[0] if root and "/" in relative else path.stem
        ids = [
            pl.when(pl.col("session") == 0).then(pl.lit(relative)).otherwise(
                pl.lit(relative + "#") + pl.col("session").cast(pl.String)
            ).alias("activity_id"),
            pl.lit(athlete).alias("athlete_id"),
        ]
        recs = decoded.records.with_columns(ids)
        bounds = recs.group_by("activity_id").agg(
            pl.col("ts").min().alias("_first"), pl.col("ts").max().alias("end_ts")
        )
        acts = (
            decoded.activities.with_columns(ids)
            .join(bounds, on="activity_id", how="left")
            .with_columns(pl.coalesce("start_ts", "_first").alias("start_ts"))
        )
        records.append(conform(recs, RECORDS))
        activities.append(conform(acts, ACTIVITIES))
        laps.append(conform(decoded.laps.with_columns(ids), LAPS))
    return Frames(
        records=pl.concat(records) if records else pl.DataFrame(schema=RECORDS),
        activities=pl.concat(activities) if activities else pl.DataFrame(schema=ACTIVITIES),
        laps=pl.concat(laps) if laps else pl.DataFrame(schema=LAPS),
    )


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds() / 1e6


def backward_overlap(segments: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Per truth interval: its duration and the seconds of it the segments call backward.

    `segments` must carry a `file` column matching the truth's."""
    backward = segments.filter(pl.col("direction") == "backward").select(
        "file", pl.col("start_ts").alias("_s"), pl.col("end_ts").alias("_e")
    )
    intervals = truth.with_row_index("_interval")
    found = (
        intervals.select("_interval", "file", "start_ts", "end_ts")
        .join(backward, on="file", how="left")
        .group_by("_interval")
        .agg(
            _seconds(pl.min_horizontal("end_ts", "_e") - pl.max_horizontal("start_ts", "_s"))
            .clip(lower_bound=0.0)
            .fill_null(0.0)
            .sum()
            .alias("found_s")
        )
    )
    return (
        intervals.join(found, on="_interval", how="left")
        .sort("_interval")
        .with_columns(_seconds(pl.col("end_ts") - pl.col("start_ts")).alias("truth_s"))
        .drop("_interval")
    )


def backward_time_scores(segments: pl.DataFrame, truth: pl.DataFrame, by: list[str] | None = None) -> pl.DataFrame:
    """Backward-time precision and recall: detected ∩ true over detected, and over true.

    Both frames need `file`; scores are per `by` columns (present in both) or overall."""
    keys = by or []
    overlap = backward_overlap(segments, truth)
    detected = segments.filter(pl.col("direction") == "backward")

    def total(frame: pl.DataFrame, sums: dict[str, str]) -> pl.DataFrame:
        aggs = [pl.col(column).sum().alias(name) for name, column in sums.items()]
        return frame.group_by(keys).agg(aggs) if keys else frame.select(aggs)

    found = total(overlap, {"truth_s": "truth_s", "true_positive_s": "found_s"})
    called = total(detected, {"detected_s": "duration_s"})
    if keys:
        scores = called.join(found, on=keys, how="full", coalesce=True)
    else:
        scores = pl.concat([called, found], how="horizontal")
    sums = pl.col("detected_s", "truth_s", "true_positive_s").fill_null(0.0)
    return scores.with_columns(sums).with_columns(
        pl.when(pl.col("detected_s") > 0).then(pl.col("true_positive_s") / pl.col("detected_s")).alias("precision"),
        pl.when(pl.col("truth_s") > 0).then(pl.col("true_positive_s") / pl.col("truth_s")).alias("recall"),
    )


def missed_labelled(segments: pl.DataFrame, truth: pl.DataFrame, min_share: float = 0.5) -> pl.DataFrame:
    """Labelled truth intervals of which less than `min_share` was detected as backward."""
    overlap = backward_overlap(segments, truth.filter(pl.col("labelled")))
    return overlap.filter(pl.col("found_s") < min_share * pl.col("truth_s"))
