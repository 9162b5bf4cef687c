"""A segment's confidence: the probability that its direction is right, from a logistic model.

p = 1 / (1 + exp(−w·x)) with one weight vector per direction (`calibration_backward`,
`calibration_forward` in the detection config) over the segment's evidence `x` (`FEATURES`):
a constant; how far the gait ratio sits on the segment's side of the hysteresis band (mean ln r of
the samples whose gait supports it, minus ln √(enter·leave), signed so that further in is larger);
the baseline's level uncertainty (0 for an own baseline); label and facing flags; ln of the minutes.
The weights are fitted by `benchmarks/calibrate_confidence.py` on generated exports of the product's
sample generator and checked on the independent generator of `benchmarks/retro_generator.py`.
"""

from __future__ import annotations

import math

import polars as pl

from retrostride.assets.transforms.model_config import DetectionConfig

#: The evidence a segment's confidence is computed from, in the order of the weights.
FEATURES = ("x_constant", "x_gait", "x_gait_margin", "x_gait_uncertainty", "x_label", "x_facing", "x_log_minutes")


def confidence_features(config: DetectionConfig) -> list[pl.Expr]:
    """The `FEATURES` of a segment row (with `direction`, `_gait`, `_label`, `_facing`, `_log_ratio`,
    `_intercept_sd`, `duration_s`)."""
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
    ]


def segment_confidence(config: DetectionConfig) -> pl.Expr:
    """The calibrated probability that a forward or backward segment's direction is right."""
    features = confidence_features(config)

    def score(weights: tuple[float, ...]) -> pl.Expr:
        return pl.sum_horizontal([w * x for w, x in zip(weights, features, strict=True)])

    logit = (
        pl.when(pl.col("direction") == "backward")
        .then(score(config.calibration_backward))
        .otherwise(score(config.calibration_forward))
    )
    return 1.0 / (1.0 + (-logit).exp())
