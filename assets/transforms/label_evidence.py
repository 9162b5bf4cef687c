"""Label evidence (DESIGN §5.2): words like "backward" or "rückwärts" in lap and activity names."""

from __future__ import annotations

import re

import polars as pl

from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.warehouse.schema import in_time_order

_APOSTROPHES = r"[\u2018\u2019\u02bc\u0060\u00b4]"  # typographic apostrophes read as '


def normalised_text(text: pl.Expr, config: DetectionConfig) -> pl.Expr:
    """Text as labels are matched: accents and case folded unless configured otherwise."""
    if not config.label_accent_sensitive:
        text = text.str.normalize("NFKD").str.replace_all(r"\p{Mn}", "")
    if not config.label_case_sensitive:
        text = text.str.to_lowercase()
    return text.str.replace_all(_APOSTROPHES, "'")


def _normalised_word(word: str, config: DetectionConfig) -> str:
    return pl.select(normalised_text(pl.lit(word), config)).item()


def label_pattern(config: DetectionConfig) -> str:
    """One regex matching any configured word as a whole word (spaces match any whitespace)."""
    words = sorted({_normalised_word(w, config) for w in config.label_words}, key=len, reverse=True)
    alternatives = "|".join(r"\s+".join(re.escape(part) for part in w.split()) for w in words)
    return rf"(?:^|[^\p{{L}}\p{{N}}])(?:{alternatives})(?:$|[^\p{{L}}\p{{N}}])"


def says_backward(text: pl.Expr, config: DetectionConfig) -> pl.Expr:
    """True where `text` contains a backward word; false where it does not or is null."""
    return normalised_text(text, config).str.contains(label_pattern(config)).fill_null(False)


def labelled_laps(laps: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """The laps whose name says backward: activity_id, lap_index, start_ts, end_ts."""
    return laps.filter(says_backward(pl.col("name"), config)).select("activity_id", "lap_index", "start_ts", "end_ts")


def labelled_activities(activities: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """activity_id, activity_label: whether the activity's name or description says backward."""
    return activities.select(
        "activity_id",
        (says_backward(pl.col("name"), config) | says_backward(pl.col("description"), config)).alias("activity_label"),
    )


def in_labelled_lap(records: pl.DataFrame, laps: pl.DataFrame, config: DetectionConfig) -> pl.Series:
    """Per record of `records` (in time order within each activity): whether its time falls inside a
    lap whose name says backward.

    A record at the boundary of two laps belongs to the one starting there."""
    spans = (
        laps.select("activity_id", "start_ts", "end_ts", says_backward(pl.col("name"), config).alias("_says"))
        .filter(pl.col("start_ts").is_not_null())
        .sort("start_ts")
    )
    if not spans["_says"].any():
        return pl.repeat(False, records.height, dtype=pl.Boolean, eager=True).alias("lap_label")
    hit = (
        records.select("activity_id", "ts")
        .join_asof(  # as-of joins `by` a key need both sides in time order within it, not overall
            spans, left_on="ts", right_on="start_ts", by="activity_id", strategy="backward", check_sortedness=False
        )
        .select(
            (pl.col("_says").fill_null(False) & (pl.col("ts") <= pl.col("end_ts")).fill_null(False)).alias("lap_label")
        )
    )
    return hit["lap_label"]


def with_lap_labels(records: pl.DataFrame, laps: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Records sorted by activity and time with `lap_label` and `label_block` (a run id that changes
    at every edge of a labelled lap, so gait windows can stop there)."""
    ordered = in_time_order(records)
    return ordered.with_columns(in_labelled_lap(ordered, laps, config).alias("lap_label")).with_columns(
        pl.col("lap_label").rle_id().alias("label_block")  # with the activity, it tells the stretches apart
    )
