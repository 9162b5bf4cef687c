"""Gait signature (DESIGN §5.3): step length against speed, and each athlete's forward baseline.

Step length L = 60·v / spm from 10-s rolling medians.  Forward running follows log L = a + b·log v
closely for one person; backward running at the same speed takes shorter, quicker steps (Wright &
Weyand 2001), so r = L / L_fwd(v) drops well below 1.
"""

from __future__ import annotations

import polars as pl

from assets.transforms.labels import in_labelled_lap, labelled_activities
from assets.transforms.model_config import DetectionConfig

#: One row per athlete with enough forward running; stable column names.
BASELINES = pl.Schema(
    {
        "athlete_id": pl.String,
        "intercept": pl.Float64,  # a in ln L = a + b·ln v (L in m, v in m/s)
        "slope": pl.Float64,  # b
        "speed_min_mps": pl.Float64,  # coverage: speeds with enough inlier samples
        "speed_max_mps": pl.Float64,
        "runs": pl.UInt32,
        "samples": pl.UInt32,
        "residual_sd": pl.Float64,  # robust s.d. of ln L residuals (per-run speed-bin medians)
        "inlier_share": pl.Float64,  # share of training samples the robust fit kept
        "r_squared": pl.Float64,  # weighted, on inliers
        "model_version": pl.String,
    }
)


def gait_features(records: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Records sorted by activity and time, plus centred rolling-median gait columns.

    Adds `gait_speed_mps` and `gait_step_m` (from samples with speed in 1.2–4.5 m/s and a cadence),
    `gait_spm` (any sample with a cadence) and `gait` ('run' | 'walk' | 'unknown').
    """
    sorted_records = records.sort("activity_id", "ts")
    speed_ok = pl.col("speed_mps").is_between(config.speed_min_mps, config.speed_max_mps)
    spm = pl.when(pl.col("cadence_spm") > 0).then(pl.col("cadence_spm"))
    inputs = sorted_records.select(
        "activity_id",
        "ts",
        pl.when(speed_ok & spm.is_not_null()).then(pl.col("speed_mps")).alias("_v"),
        pl.when(speed_ok).then(60.0 * pl.col("speed_mps") / spm).alias("_step"),
        spm.alias("_spm"),
    )
    half = f"{int(config.gait_window_s * 1e6) // 2}us"
    period = f"{int(config.gait_window_s * 1e6)}us"
    n = config.gait_min_samples
    rolled = inputs.rolling("ts", period=period, offset=f"-{half}", group_by="activity_id").agg(
        pl.when(pl.col("_step").count() >= n).then(pl.col("_v").median()).alias("gait_speed_mps"),
        pl.when(pl.col("_step").count() >= n).then(pl.col("_step").median()).alias("gait_step_m"),
        pl.when(pl.col("_spm").count() >= n).then(pl.col("_spm").median()).alias("gait_spm"),
    )
    # `rolling` may emit the activities in another order; rows tied on (activity, ts) share a window.
    rolled = rolled.sort("activity_id", "ts", maintain_order=True)
    features = sorted_records.with_columns(rolled.select("gait_speed_mps", "gait_step_m", "gait_spm"))
    moving = pl.col("speed_mps") >= config.speed_min_mps
    return features.with_columns(
        pl.when(pl.col("gait_spm") >= config.run_min_spm)
        .then(pl.lit("run"))
        .when(pl.col("gait_spm").is_not_null() & moving)
        .then(pl.lit("walk"))
        .otherwise(pl.lit("unknown"))
        .alias("gait")
    )


def course_deg(config: DetectionConfig) -> pl.Expr:
    """GPS course over ground (0–360°, from north) from positions a few samples before and after."""
    k = config.course_lag_samples
    lat1 = pl.col("lat_deg").shift(k).over("activity_id").radians()
    lat2 = pl.col("lat_deg").shift(-k).over("activity_id").radians()
    dlon = (pl.col("lon_deg").shift(-k) - pl.col("lon_deg").shift(k)).over("activity_id").radians()
    y = dlon.sin() * lat2.cos()
    x = lat1.cos() * lat2.sin() - lat1.sin() * lat2.cos() * dlon.cos()
    return (pl.arctan2(y, x).degrees() + 360.0) % 360.0


def facing_evidence(features: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """`facing_backward_share` per sample: share of a centred window's moving samples facing away
    from the course by more than 135° (null where too few samples have both)."""
    moving = pl.col("speed_mps").is_between(config.speed_min_mps, config.speed_max_mps)
    angle = ((pl.col("facing_deg") - course_deg(config) + 180.0) % 360.0 - 180.0).abs()
    flags = features.select(
        "activity_id", "ts", pl.when(moving).then(angle > config.facing_angle_deg).cast(pl.Float64).alias("_away")
    )
    half = f"{int(config.facing_window_s * 1e6) // 2}us"
    period = f"{int(config.facing_window_s * 1e6)}us"
    rolled = flags.rolling("ts", period=period, offset=f"-{half}", group_by="activity_id").agg(
        pl.when(pl.col("_away").count() >= config.facing_min_samples)
        .then(pl.col("_away").mean())
        .alias("facing_backward_share")
    )
    rolled = rolled.sort("activity_id", "ts", maintain_order=True)
    return features.with_columns(rolled["facing_backward_share"])


def facing_direction(config: DetectionConfig) -> pl.Expr:
    """'backward' / 'forward' / null from `facing_backward_share`."""
    share = pl.col("facing_backward_share")
    return (
        pl.when(share >= config.facing_share)
        .then(pl.lit("backward"))
        .when(share <= 1.0 - config.facing_share)
        .then(pl.lit("forward"))
    )


def training_samples(
    records: pl.DataFrame, activities: pl.DataFrame, laps: pl.DataFrame, config: DetectionConfig
) -> pl.DataFrame:
    """Forward running samples to fit baselines on: running sports, not walking, not in a lap or
    activity labelled backward, not facing backward."""
    sports = activities.select(
        "activity_id",
        (pl.col("sport").is_null() | pl.col("sport").is_in(list(config.running_sports))).alias("_running"),
    ).join(labelled_activities(activities, config), on="activity_id")
    features = facing_evidence(gait_features(records, config), config)
    features = features.with_columns(in_labelled_lap(features, laps, config).alias("_lap_label"))
    return (
        features.join(sports, on="activity_id", how="left")
        .filter(
            pl.col("_running").fill_null(True)
            & ~pl.col("activity_label").fill_null(False)
            & ~pl.col("_lap_label")
            & (pl.col("gait") == "run")
            & pl.col("gait_step_m").is_not_null()
            & pl.col("gait_speed_mps").is_not_null()
            & (facing_direction(config).fill_null("") != "backward")
        )
        .select("athlete_id", "activity_id", "gait_speed_mps", "gait_step_m")
    )


def _weighted_line(points: pl.DataFrame, weight: str) -> pl.DataFrame:
    """Per athlete, weighted least squares of y on x: athlete_id, intercept, slope."""
    w, x, y = pl.col(weight), pl.col("x"), pl.col("y")
    sums = points.group_by("athlete_id").agg(
        w.sum().alias("sw"), (w * x).sum().alias("sx"), (w * y).sum().alias("sy"),
        (w * x * x).sum().alias("sxx"), (w * x * y).sum().alias("sxy"),
    )
    det = pl.col("sw") * pl.col("sxx") - pl.col("sx") ** 2
    slope = pl.when(det > 0).then((pl.col("sw") * pl.col("sxy") - pl.col("sx") * pl.col("sy")) / det).otherwise(0.0)
    return sums.with_columns(slope.alias("slope")).select(
        "athlete_id", "slope", ((pl.col("sy") - pl.col("slope") * pl.col("sx")) / pl.col("sw")).alias("intercept")
    )


def _theil_sen(points: pl.DataFrame) -> pl.DataFrame:
    """Per athlete, median pairwise slope through the speed-bin medians, median intercept."""
    pooled = points.group_by("athlete_id", "bin").agg(pl.col("x").median(), pl.col("y").median())
    pairs = pooled.join(pooled, on="athlete_id", suffix="_2").filter(pl.col("bin") < pl.col("bin_2"))
    slopes = pairs.group_by("athlete_id").agg(
        ((pl.col("y_2") - pl.col("y")) / (pl.col("x_2") - pl.col("x"))).median().alias("slope")
    )
    return (
        points.join(slopes, on="athlete_id", how="left")
        .with_columns(pl.col("slope").fill_null(0.0))
        .group_by("athlete_id")
        .agg(pl.col("slope").first(), (pl.col("y") - pl.col("slope") * pl.col("x")).median().alias("intercept"))
    )


def _residuals(points: pl.DataFrame, fit: pl.DataFrame) -> pl.DataFrame:
    return points.drop("slope", "intercept", strict=False).join(fit, on="athlete_id").with_columns(
        (pl.col("y") - pl.col("intercept") - pl.col("slope") * pl.col("x")).alias("resid")
    )


def _biweights(points: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Tukey biweights × sample counts; scale = 1.4826 · MAD of the residuals (floored)."""
    scale = (1.4826 * (pl.col("resid") - pl.col("resid").median()).abs().median()).over("athlete_id")
    u = pl.col("resid") / (config.baseline_tukey_c * pl.max_horizontal(scale, pl.lit(0.005)))
    return points.with_columns(
        (pl.when(u.abs() < 1).then((1 - u**2) ** 2).otherwise(0.0) * pl.col("n")).alias("w"),
        scale.alias("scale"),
    )


def fit_gait_baselines(
    records: pl.DataFrame, activities: pl.DataFrame, laps: pl.DataFrame, config: DetectionConfig
) -> pl.DataFrame:
    """Per athlete with ≥ 5 forward runs: robust fit of ln L on ln v, its coverage and quality.

    Each run's samples are reduced to medians per 0.1-m/s speed bin, so noise averages out and one
    run cannot dominate; a Theil–Sen start is refined by Tukey-biweight IRLS, which gives zero weight
    to points far below the line, such as unlabelled backward stretches in the training data.
    """
    samples = training_samples(records, activities, laps, config)
    runs = (
        samples.group_by("athlete_id", "activity_id")
        .len()
        .filter(pl.col("len") >= config.baseline_min_run_samples)
    )
    eligible = runs.group_by("athlete_id").len("runs").filter(pl.col("runs") >= config.baseline_min_runs)
    samples = samples.join(runs.select("athlete_id", "activity_id"), on=["athlete_id", "activity_id"]).join(
        eligible.select("athlete_id"), on="athlete_id"
    )
    if samples.is_empty():
        return pl.DataFrame(schema=BASELINES)
    points = (
        samples.with_columns((pl.col("gait_speed_mps") / config.baseline_bin_mps).floor().cast(pl.Int32).alias("bin"))
        .group_by("athlete_id", "activity_id", "bin")
        .agg(
            pl.col("gait_speed_mps").log().median().alias("x"),
            pl.col("gait_step_m").log().median().alias("y"),
            pl.len().alias("n"),
        )
        .filter(pl.col("n") >= config.baseline_min_bin_samples)
    )
    fit = _theil_sen(points)
    for _ in range(config.baseline_iterations):  # a loop over iterations, not samples
        weighted = _biweights(_residuals(points, fit), config)
        fit = _weighted_line(weighted, "w")
    final = _biweights(_residuals(points, fit), config)
    inliers = final.filter(pl.col("w") > 0)
    y_mean = (pl.col("w") * pl.col("y")).sum() / pl.col("w").sum()
    quality = final.group_by("athlete_id").agg(
        pl.col("scale").first().alias("residual_sd"),
        (pl.col("n").filter(pl.col("w") > 0).sum() / pl.col("n").sum()).alias("inlier_share"),
    )
    r_squared = inliers.group_by("athlete_id").agg(
        (1 - (pl.col("w") * pl.col("resid") ** 2).sum() / (pl.col("w") * (pl.col("y") - y_mean) ** 2).sum()).alias(
            "r_squared"
        )
    )
    covered = (
        inliers.group_by("athlete_id", "bin")
        .agg(pl.col("n").sum())
        .filter(pl.col("n") >= config.baseline_coverage_min_samples)
        .group_by("athlete_id")
        .agg(
            (pl.col("bin").min() * config.baseline_bin_mps).alias("speed_min_mps"),
            ((pl.col("bin").max() + 1) * config.baseline_bin_mps).alias("speed_max_mps"),
        )
    )
    counts = samples.group_by("athlete_id").agg(
        pl.col("activity_id").n_unique().cast(pl.UInt32).alias("runs"), pl.len().cast(pl.UInt32).alias("samples")
    )
    baselines = (
        fit.join(covered, on="athlete_id")
        .join(counts, on="athlete_id")
        .join(quality, on="athlete_id")
        .join(r_squared, on="athlete_id", how="left")
        .with_columns(pl.lit(config.model_version).alias("model_version"))
    )
    return baselines.select(BASELINES.names()).cast(BASELINES).sort("athlete_id")


def forward_step_m(speed: pl.Expr) -> pl.Expr:
    """Expected forward step length at `speed` from a joined baseline row."""
    return (pl.col("intercept") + pl.col("slope") * speed.log()).exp()

