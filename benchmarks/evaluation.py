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
            pl.when(pl.col("session") == 0)
            .then(pl.lit(relative))
            .otherwise(pl.lit(relative + "#") + pl.col("session").cast(pl.String))
            .alias("activity_id"),
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


def _overlap_s(start: str, end: str, other_start: str, other_end: str) -> pl.Expr:
    """Seconds two intervals share (0 where either is missing: min/max_horizontal skip nulls)."""
    shared = _seconds(pl.min_horizontal(end, other_end) - pl.max_horizontal(start, other_start)).clip(lower_bound=0.0)
    return pl.when(pl.col(other_start).is_not_null() & pl.col(start).is_not_null()).then(shared).otherwise(0.0)


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
        .agg(_overlap_s("start_ts", "end_ts", "_s", "_e").sum().alias("found_s"))
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


def segment_correctness(segments: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Forward and backward segments with `truth_backward_share` (of their time inside true backward
    intervals) and `correct`: a backward segment mostly inside them, a forward one mostly outside."""
    called = segments.filter(pl.col("direction").is_in(["forward", "backward"])).with_row_index("_segment")
    overlap = (
        called.select("_segment", "file", pl.col("start_ts").alias("_s"), pl.col("end_ts").alias("_e"))
        .join(truth.select("file", "start_ts", "end_ts"), on="file", how="left")
        .group_by("_segment")
        .agg(_overlap_s("start_ts", "end_ts", "_s", "_e").sum().alias("_inside_s"))
    )
    share = (pl.col("_inside_s") / pl.col("duration_s")).clip(0.0, 1.0)
    return (
        called.join(overlap, on="_segment")
        .sort("_segment")
        .with_columns(share.alias("truth_backward_share"))
        .with_columns(
            pl.when(pl.col("direction") == "backward")
            .then(pl.col("truth_backward_share") >= 0.5)
            .otherwise(pl.col("truth_backward_share") < 0.5)
            .alias("correct")
        )
        .drop("_segment", "_inside_s")
    )


def calibration_table(judged: pl.DataFrame, bins: int = 10) -> pl.DataFrame:
    """Per decile of stated confidence: segments, mean confidence, share correct, and their gap."""
    return (
        judged.with_columns((pl.col("confidence") * bins).floor().clip(0, bins - 1).cast(pl.Int32).alias("bin"))
        .group_by("bin")
        .agg(
            pl.len().alias("segments"),
            pl.col("confidence").mean().alias("mean_confidence"),
            pl.col("correct").mean().alias("share_correct"),
        )
        .with_columns((pl.col("share_correct") - pl.col("mean_confidence")).alias("gap"))
        .sort("bin")
    )
