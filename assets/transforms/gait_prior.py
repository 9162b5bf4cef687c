"""A forward-gait prior from the literature, for athletes with few or no runs of their own (cold start).

Forward step length grows with speed as L = e^a · v^b.  The centre comes from van Oeveren et al. 2017
(PLoS ONE 12:e0184273): recreational runners' self-selected stride frequencies of 77, 79 and 80
strides/min at 2.4, 2.6 and 2.9 m/s, i.e. steps of 0.94, 0.99 and 1.09 m: b ≈ 0.80, and
a = ln 0.987 − 0.80 · ln 2.6 ≈ −0.777 (162 steps/min at 3 m/s).  Between runners the preferred stride
frequency at one speed spans about 75–95 strides/min (Lieberman et al. 2015, J Exp Biol 218:3406,
whose runners varied widely in height; Cavanagh & Kram 1989, Med Sci Sports Exerc 21:467, found body
dimensions explain little of it): the prior's spread, `prior_sd` in ln L, is set wide to cover that.
Where a profile gives the height, the step scales with leg length as dynamic similarity predicts
(Alexander & Jayes 1983, J Zool 201:135): at one speed L ∝ l^(1 − b/2), with height standing in for l.

An athlete with a few runs (fewer than `baseline_min_runs`) keeps the prior's slope and moves its
level towards their own: the precision-weighted mean of the prior (s.d. `prior_sd`) and the median
offset of their runs (s.d. per run: `run_offset_sd`, or the runs' own spread where larger), so one
run already pulls most of the way and the remaining uncertainty (`intercept_sd`) shrinks as
consistent runs accrue.  Detection widens its thresholds by it.
"""

from __future__ import annotations

import polars as pl

from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.warehouse.schema import BASELINES, conform


def prior_line(athletes: pl.DataFrame, profiles: pl.DataFrame | None, config: DetectionConfig) -> pl.DataFrame:
    """athlete_id, prior_intercept, prior_slope: the literature line, scaled by height where known."""
    ids = athletes.select(pl.col("athlete_id").cast(pl.String)).unique().drop_nulls()
    height = pl.lit(None, pl.Float64)
    if profiles is not None and "height_cm" in profiles.columns:
        ids = ids.join(
            profiles.select(pl.col("athlete_id").cast(pl.String), pl.col("height_cm").cast(pl.Float64)),
            on="athlete_id",
            how="left",
        )
        height = pl.col("height_cm")
    exponent = 1.0 - config.prior_slope / 2.0
    scaling = (height / config.prior_height_cm).log() * exponent
    return ids.select(
        "athlete_id",
        (config.prior_intercept + scaling.fill_null(0.0)).alias("prior_intercept"),
        pl.lit(config.prior_slope).alias("prior_slope"),
    )


def prior_baselines(athletes: pl.DataFrame, profiles: pl.DataFrame | None, config: DetectionConfig) -> pl.DataFrame:
    """A BASELINES row per athlete from the prior alone (`basis` 'prior', no runs of their own)."""
    line = prior_line(athletes, profiles, config)
    rows = line.select(
        "athlete_id",
        pl.col("prior_intercept").alias("intercept"),
        pl.col("prior_slope").alias("slope"),
        pl.lit(config.prior_speed_min_mps).alias("speed_min_mps"),
        pl.lit(config.prior_speed_max_mps).alias("speed_max_mps"),
        pl.lit(0).alias("runs"),
        pl.lit(0).alias("samples"),
        pl.lit(config.prior_sd).alias("intercept_sd"),
        pl.lit("prior").alias("basis"),
        pl.lit(config.model_version).alias("model_version"),
    )
    return conform(rows, BASELINES)


def with_prior_baselines(
    baselines: pl.DataFrame, activities: pl.DataFrame, profiles: pl.DataFrame | None, config: DetectionConfig
) -> pl.DataFrame:
    """`baselines` plus a prior row for each athlete of `activities` who has none."""
    missing = activities.select("athlete_id").unique().join(baselines.select("athlete_id"), on="athlete_id", how="anti")
    if missing.is_empty():
        return baselines
    return pl.concat([conform(baselines, BASELINES), prior_baselines(missing, profiles, config)])


def blended_levels(points: pl.DataFrame, priors: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """athlete_id, intercept, slope, intercept_sd: the prior's slope, its level moved towards the
    athlete's runs.  `points` are per-run speed-bin medians (athlete_id, activity_id, x = ln v,
    y = ln L, n samples); each run's offset from the prior line is its median residual, the
    athlete's the median over runs (robust to backward stretches in them)."""
    prior_precision = 1.0 / config.prior_sd**2
    offsets = (
        points.join(priors, on="athlete_id")
        .with_columns((pl.col("y") - pl.col("prior_intercept") - pl.col("prior_slope") * pl.col("x")).alias("e"))
        .group_by("athlete_id", "activity_id")
        .agg(pl.col("e").median(), pl.col("prior_intercept").first(), pl.col("prior_slope").first())
        .group_by("athlete_id")
        .agg(
            pl.col("e").median(),
            pl.len().alias("_runs"),
            pl.col("e").std().fill_null(0.0).alias("_spread"),
            pl.col("prior_intercept").first(),
            pl.col("prior_slope").first(),
        )
    )
    own = pl.col("_runs") / pl.max_horizontal(pl.col("_spread"), pl.lit(config.run_offset_sd)) ** 2
    return offsets.select(
        "athlete_id",
        (pl.col("prior_intercept") + pl.col("e") * own / (own + prior_precision)).alias("intercept"),
        pl.col("prior_slope").alias("slope"),
        (1.0 / (own + prior_precision).sqrt()).alias("intercept_sd"),
    )


def threshold_widening(z: float) -> pl.Expr:
    """exp(z · intercept_sd): how far the baseline's uncertainty moves a ratio threshold."""
    return (z * pl.col("intercept_sd").fill_null(0.0)).exp()
