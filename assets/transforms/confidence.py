"""A segment's confidence: the probability that its direction is right, in two steps.

1. A score s = w·x, with one weight vector per direction (`calibration_backward`,
   `calibration_forward` in the detection config) over the segment's evidence `x` (`FEATURES`): a
   constant; how far the gait ratio sits on the segment's side of the hysteresis band (mean ln r of
   the samples whose gait supports it, minus ln √(enter·leave), signed so that further in is larger);
   the baseline's level uncertainty (0 for an own baseline); label and facing flags; ln of the
   minutes; ln of its speed over its activity's forward-and-backward speed.
2. The probability: a step function of s (an isotonic map): up to `calibration_scores[i]` it is
   `calibration_probabilities[i]`, above the last edge the last probability; so the stated
   confidence is the share of calibration segments with such a score that were right.

Both are fitted by `benchmarks/calibrate_confidence.py` (logistic regression, then isotonic
regression over blocks of at least 300 segments) on the product's sample exports and the
`--ambiguous` exports of `benchmarks/retro_generator.py` at other seeds than the ones
`benchmarks/detection_accuracy.py` checks the calibration on; they are fixed values of the config.
"""

from __future__ import annotations

import math
from itertools import accumulate

import polars as pl

from retrostride.assets.transforms.model_config import DetectionConfig

#: The evidence a segment's confidence is computed from, in the order of the weights.
FEATURES = (
    "x_constant",
    "x_gait",
    "x_gait_margin",
    "x_gait_uncertainty",
    "x_label",
    "x_facing",
    "x_log_minutes",
    "x_speed_ratio",
)


def confidence_features(config: DetectionConfig) -> list[pl.Expr]:
    """The `FEATURES` of a segment row (with `activity_id`, `direction`, `_gait`, `_label`, `_facing`,
    `_log_ratio`, `_intercept_sd`, `duration_s`, `distance_m`)."""
    middle = math.log(math.sqrt(config.enter_ratio * config.leave_ratio))
    sign = pl.when(pl.col("direction") == "backward").then(-1.0).otherwise(1.0)
    gait = pl.col("_gait").fill_null(False).cast(pl.Float64)
    margin = (sign * (pl.col("_log_ratio") - middle)).fill_null(0.0) * gait
    return [
        pl.lit(1.0).alias("x_constant"),
        gait.alias("x_gait"),
        margin.alias("x_gait_margin"),
        (pl.col("_intercept_sd").fill_null(0.0) * gait).alias("x_gait_uncertainty"),
        pl.col("_label").fill_null(False).cast(pl.Float64).alias("x_label"),
        pl.col("_facing").fill_null(False).cast(pl.Float64).alias("x_facing"),
        (pl.col("duration_s").clip(lower_bound=1.0) / 60.0).log().alias("x_log_minutes"),
        _speed_ratio().alias("x_speed_ratio"),
    ]


def _speed_ratio() -> pl.Expr:
    """ln(the segment's speed / its activity's speed over all forward and backward segments): backward
    running is slower than the same runner's forward running."""
    called = pl.col("direction").is_in(["forward", "backward"])
    moving_speed = pl.col("distance_m").filter(called).sum() / pl.col("duration_s").filter(called).sum()
    ratio = (pl.col("distance_m") / pl.col("duration_s")) / moving_speed.over("activity_id")
    return pl.when(ratio > 0).then(ratio.log()).otherwise(0.0).fill_nan(0.0).fill_null(0.0)


def confidence_score(config: DetectionConfig) -> pl.Expr:
    """Step 1: the evidence score w·x of a forward or backward segment (higher: more likely right)."""
    features = confidence_features(config)

    def score(weights: tuple[float, ...]) -> pl.Expr:
        return pl.sum_horizontal([w * x for w, x in zip(weights, features, strict=True)])

    return (
        pl.when(pl.col("direction") == "backward")
        .then(score(config.calibration_backward))
        .otherwise(score(config.calibration_forward))
    )


def calibrated(score: pl.Expr, edges: tuple[float, ...], probabilities: tuple[float, ...]) -> pl.Expr:
    """Step 2: `probabilities[i]` for scores up to `edges[i]` (the first edge that holds), else the
    last probability (one more probability than edges).  One sorted lookup: the first edge that holds
    is the first of the edges' running maxima that does."""
    upper = pl.Series(list(accumulate(edges, max)), dtype=pl.Float64)
    step = pl.lit(upper).search_sorted(score, side="left")
    return (
        pl.when(score <= upper[-1])
        .then(pl.lit(pl.Series(probabilities, dtype=pl.Float64)).gather(step))
        .otherwise(pl.lit(probabilities[-1]))
    )


def segment_confidence(config: DetectionConfig) -> pl.Expr:
    """The calibrated probability that a forward or backward segment's direction is right."""
    return calibrated(confidence_score(config), config.calibration_scores, config.calibration_probabilities)
