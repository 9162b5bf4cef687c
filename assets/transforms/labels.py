"""Label evidence (DESIGN §5.2): words like "backward" or "rückwärts" in lap and activity names."""

from __future__ import annotations

import re

import polars as pl

from assets.transforms.model_config import DetectionConfig

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
    return laps.filter(says_backward(pl.col("name"), config)).select(
        "activity_id", "lap_index", "start_ts", "end_ts"
    )


def labelled_activities(activities: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """activity_id, activity_label: whether the activity's name or description says backward."""
    return activities.select(
        "activity_id",
        (says_backward(pl.col("name"), config) | says_backward(pl.col("description"), config)).alias(
            "activity_label"
        ),
    )


def in_labelled_lap(records: pl.DataFrame, laps: pl.DataFrame, config: DetectionConfig) -> pl.Series:
    """Per record (in order): whether its time falls inside a lap whose name says backward."""
    spans = labelled_laps(laps, config).select("activity_id", "start_ts", "end_ts").sort("start_ts")
    keyed = records.select("activity_id", "ts").with_row_index("_row")
    if spans.is_empty():
        return pl.Series("lap_label", [False] * len(records), dtype=pl.Boolean)
    # Laps of one activity do not overlap; the latest lap started at or before ts is the candidate.
    hit = (
        keyed.sort("ts")
        .join_asof(spans, left_on="ts", right_on="start_ts", by="activity_id", strategy="backward")
        .with_columns((pl.col("end_ts").is_not_null() & (pl.col("ts") <= pl.col("end_ts"))).alias("lap_label"))
        .sort("_row")
    )
    return hit["lap_label"]
