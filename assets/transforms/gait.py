"""Gait signature (DESIGN §5.3): step length against speed, and each athlete's forward baseline.

Step length L = 60·v / spm from 10-s rolling medians.  Forward running follows log L = a + b·log v
closely for one person; backward running at the same speed takes shorter, quicker steps (Wright &
Weyand 2001), so r = L / L_fwd(v) drops well below 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np
import polars as pl

from retrostride.assets.transforms.gait_prior import blended_levels, prior_line
from retrostride.assets.transforms.label_evidence import labelled_activities, with_lap_labels
from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.assets.transforms.windows import (
    centred_rolling,
    centred_window_rows,
    edge_change,
    edge_rows,
    nulled,
    run_ids,
    sorted_medians,
    window_counts,
    window_medians_at,
    window_statistic,
    with_edges,
)
from retrostride.warehouse.schema import ACTIVITY_LABELS, BASELINES, conform, in_time_order


def _window_speed(name: str) -> pl.Expr:
    """Speed over a rolled window from the distance between its first and last edge rows (null
    with fewer than two, or without distances)."""
    elapsed = edge_change(name, "_t")
    return pl.when(elapsed > 0).then(edge_change(name, "_d") / elapsed)


def gait_features(records: pl.DataFrame, config: DetectionConfig, within: str | None = None) -> pl.DataFrame:
    """`windowed_gait_features` with windows wide enough for each activity's sampling: an activity
    recorded every few seconds ("smart" recording) gets its windows widened by whole multiples, so
    they hold about as many samples as a 1-s recording's 10-s window holds seconds' worth."""
    timed = records.filter(pl.col("ts").is_not_null())
    interval = (pl.col("ts").diff().dt.total_microseconds() / 1e6).median().over("activity_id")
    widening = (config.gait_sampling_share * interval / config.gait_window_s).ceil().clip(1, 6).fill_null(1)
    widening = timed.select(widening.cast(pl.Int32).alias("_widening")).to_series()
    if (widening == 1).all():
        return windowed_gait_features(timed, config, within)
    classes = timed.with_columns(widening).partition_by("_widening", as_dict=True)
    parts = [
        windowed_gait_features(
            part.drop("_widening"),
            dataclasses.replace(
                config, gait_window_s=config.gait_window_s * k, speed_smooth_s=config.speed_smooth_s * k
            ),
            within,
        )
        for (k,), part in classes.items()
    ]
    return in_time_order(pl.concat(parts, how="diagonal_relaxed"))


def windowed_gait_features(records: pl.DataFrame, config: DetectionConfig, within: str | None = None) -> pl.DataFrame:
    """Records sorted by activity and time, plus centred 10-s rolling gait columns.

    A sample is a running sample when its cadence is >= 140 spm and its speed, over a short centred
    window, is in 1.2–4.5 m/s (GPS-derived speeds are too noisy sample by sample).  A 10-s window
    speaks only when most of its samples are running samples and their cadence is steady (a sensor
    jumping between 90 and 240 spm is not a gait), so stops, turns, dropouts and glitches cannot fake
    a short step; its speed is the distance covered over the window (else the median
    speed), its cadence the median, and L = 60·v / spm.  Windows never straddle a change of the
    `within` run id (e.g. at the edge of a labelled lap; it must not decrease over time).  Adds
    `gait_speed_mps`, `gait_spm`, `gait_step_m` and `gait` ('run' | 'walk' | 'unknown', from the median cadence).
    """
    sorted_records = in_time_order(records.filter(pl.col("ts").is_not_null()))  # untimed: no gait
    edge_columns = ["_d", "_t"]
    keys = ["_block"]  # one integer key: windows partitioned by a string and a number would hash both
    inputs = sorted_records.select(
        run_ids(["activity_id"] if within is None else ["activity_id", within]).alias("_block"),
        "ts",
        pl.when(pl.col("cadence_spm") > 0).then(pl.col("cadence_spm")).alias("_spm"),
        pl.col("speed_mps").alias("_v"),
        pl.col("distance_m").alias("_d"),
        (pl.col("ts").dt.epoch("us") / 1e6).alias("_t"),
    )
    inputs = with_edges(inputs, "all", pl.col("_d").is_not_null(), edge_columns, keys)
    first, last = centred_window_rows(inputs, config.speed_smooth_s, keys)
    by_distance = inputs.select(edge_rows("all", edge_columns, first, last)).select(_window_speed("all")).to_series()
    by_median = window_medians_at(inputs["_v"], first, last, by_distance.is_null().arg_true().to_numpy())
    inputs = inputs.with_columns(pl.coalesce(by_distance, by_median).alias("_v_smooth"))
    in_range = pl.col("_v_smooth").is_between(config.speed_min_mps, config.speed_max_mps)
    ok = (in_range & (pl.col("_spm") >= config.run_min_spm)).fill_null(False)
    inputs = with_edges(
        inputs.with_columns(ok.alias("_ok")), "ok", pl.col("_ok") & pl.col("_d").is_not_null(), edge_columns, keys
    ).with_columns(
        pl.when(pl.col("_ok")).then(pl.col("_v")).alias("_v_ok"),
        pl.when(pl.col("_ok")).then(pl.col("_spm")).alias("_spm_ok"),
    )
    # Each 10-s window's counts and edges come from its first and last row, its medians from its
    # values sorted (`window_statistic`).
    first, last = centred_window_rows(inputs, config.gait_window_s, keys)
    ok_n = window_counts(inputs["_ok"].to_numpy(), first, last)
    spm_n = window_counts(inputs["_spm"].is_not_null().to_numpy(), first, last)
    ok_share = ok_n / (last - first + 1)
    # The running cadences' median and spread where the window may speak or where they are all its
    # cadences (their median is then the cadence median); the cadence median of the other windows.
    only_running = ok_n == spm_n
    running = np.flatnonzero(only_running | ((ok_n >= config.gait_min_samples) & (ok_share >= config.gait_valid_share)))
    running_cadence = np.full((inputs.height, 2), np.nan)
    if len(running):
        running_cadence[running] = window_statistic(
            inputs["_spm_ok"].to_numpy(),
            first[running],
            last[running],
            lambda windows, counts: _running_cadence(windows, counts, config.gait_max_cadence_spread),
        )
    with_others = np.flatnonzero(~only_running)
    cadence = running_cadence[:, 0].copy()
    cadence[with_others] = window_statistic(
        inputs["_spm"].to_numpy(), first[with_others], last[with_others], sorted_medians
    )
    rolled = inputs.select(edge_rows("ok", edge_columns, first, last)).with_columns(
        pl.Series("_ok_n", ok_n),
        pl.Series("_ok_share", ok_share),
        pl.Series("_spm_n", spm_n),
        nulled("_spm", cadence),
        nulled("_spm_spread", running_cadence[:, 1]),
    )
    steady = (pl.col("_spm_spread") <= config.gait_max_cadence_spread).fill_null(True)
    speaks = (pl.col("_ok_n") >= config.gait_min_samples) & (pl.col("_ok_share") >= config.gait_valid_share) & steady
    # Running samples' medians are needed where the distance gives no speed, or where some of the
    # window's cadences are not running samples' (else their median is the cadence median, `_spm`).
    mixed = pl.col("_ok_n") != pl.col("_spm_n")
    needed = rolled.select(speaks & (_window_speed("ok").is_null() | mixed)).to_series().arg_true().to_numpy()
    by_median = [
        window_medians_at(inputs["_v_ok"], first, last, needed),
        pl.repeat(None, inputs.height, dtype=pl.Float64, eager=True)
        .scatter(needed, nulled("", running_cadence[needed, 0]))
        .alias("_spm_ok"),
    ]
    gait = rolled.with_columns(by_median).select(
        pl.when(speaks).then(pl.coalesce(_window_speed("ok"), "_v_ok")).alias("gait_speed_mps"),
        pl.when(speaks).then(pl.coalesce("_spm_ok", "_spm")).alias("_run_spm"),
        pl.when(pl.col("_spm_n") >= config.gait_min_samples).then("_spm").alias("gait_spm"),
    )
    features = sorted_records.with_columns(*gait.get_columns(), inputs["_v_smooth"].alias("gait_moving_mps"))
    speed_ok = pl.col("gait_speed_mps").is_between(config.speed_min_mps, config.speed_max_mps)
    moving = pl.col("gait_moving_mps") >= config.speed_min_mps
    return features.with_columns(
        pl.when(speed_ok).then(60.0 * pl.col("gait_speed_mps") / pl.col("_run_spm")).alias("gait_step_m"),
        pl.when(pl.col("gait_spm") >= config.run_min_spm)
        .then(pl.lit("run"))
        .when(pl.col("gait_spm").is_not_null() & moving)
        .then(pl.lit("walk"))
        .otherwise(pl.lit("unknown"))
        .alias("gait"),
    ).drop("_run_spm")


def _running_cadence(windows: np.ndarray, counts: np.ndarray, most: float) -> np.ndarray:
    """Per sorted window of running cadences: their median, and their median absolute deviation
    over their median where it may be above `most` (it is at most their range over their median;
    NaN elsewhere)."""
    median = sorted_medians(windows, counts)
    wide = np.flatnonzero((windows[np.arange(len(windows)), np.maximum(counts - 1, 0)] - windows[:, 0]) / median > most)
    deviations = np.abs(windows[wide] - median[wide, None])
    deviations.sort(axis=1)
    spread = np.full(len(windows), np.nan)
    spread[wide] = sorted_medians(deviations, counts[wide]) / median[wide]
    return np.column_stack([median, spread])


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
    if features["facing_deg"].null_count() == features.height:  # most devices record no heading
        return features.with_columns(pl.lit(None, pl.Float64).alias("facing_backward_share"))
    moving = pl.col("speed_mps").is_between(config.speed_min_mps, config.speed_max_mps)
    angle = ((pl.col("facing_deg") - course_deg(config) + 180.0) % 360.0 - 180.0).abs()
    flags = features.select(
        "activity_id", "ts", pl.when(moving).then(angle > config.facing_angle_deg).cast(pl.Float64).alias("_away")
    )
    rolled = centred_rolling(
        flags, config.facing_window_s, ["activity_id"], [pl.col("_away").count().alias("_n"), pl.col("_away").mean()]
    )
    share = rolled.select(pl.when(pl.col("_n") >= config.facing_min_samples).then("_away"))
    return features.with_columns(share.to_series().alias("facing_backward_share"))


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
    features = with_lap_labels(records, laps, config)
    features = facing_evidence(gait_features(features, config, within="label_block"), config)
    return (
        features.join(sports, on="activity_id", how="left")
        .filter(
            pl.col("_running").fill_null(True)
            & ~pl.col("activity_label").fill_null(False)
            & ~pl.col("lap_label")
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
        w.sum().alias("sw"),
        (w * x).sum().alias("sx"),
        (w * y).sum().alias("sy"),
        (w * x * x).sum().alias("sxx"),
        (w * x * y).sum().alias("sxy"),
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
    return (
        points.drop("slope", "intercept", strict=False)
        .join(fit, on="athlete_id")
        .with_columns((pl.col("y") - pl.col("intercept") - pl.col("slope") * pl.col("x")).alias("resid"))
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
    records: pl.DataFrame,
    activities: pl.DataFrame,
    laps: pl.DataFrame,
    config: DetectionConfig,
    profiles: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per athlete with forward runs: their baseline, its coverage and quality.

    With ≥ `baseline_min_runs` runs, a robust fit of ln L on ln v (`basis` 'own'): each run's samples
    are reduced to medians per 0.1-m/s speed bin, so noise averages out and one run cannot dominate;
    a Theil–Sen start is refined by Tukey-biweight IRLS, which gives zero weight to points far below
    the line, such as unlabelled backward stretches in the training data.  With fewer runs, the
    literature prior's line moved towards them (`basis` 'blended', `gait_prior.blended_levels`),
    covering the prior's speeds as well as theirs.
    """
    samples = training_samples(records, activities, laps, config)
    runs = samples.group_by("athlete_id", "activity_id").len().filter(pl.col("len") >= config.baseline_min_run_samples)
    samples = samples.join(runs.select("athlete_id", "activity_id"), on=["athlete_id", "activity_id"])
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
        .sort("athlete_id", "activity_id", "bin")  # a fixed order: float sums give the same bits every time
    )
    counts = samples.group_by("athlete_id").agg(
        pl.col("activity_id").n_unique().cast(pl.UInt32).alias("runs"), pl.len().cast(pl.UInt32).alias("samples")
    )
    own = counts.filter(pl.col("runs") >= config.baseline_min_runs).select("athlete_id")
    fits = [_own_fits(_screened(points.join(own, on="athlete_id"), profiles, config), config)]
    few = points.join(own, on="athlete_id", how="anti")
    if not few.is_empty():
        fits.append(_blended_fits(few, profiles, config))
    baselines = (
        pl.concat(fits, how="diagonal_relaxed")
        .join(counts, on="athlete_id")
        .join(training_digests(activities), on="athlete_id", how="left")
        .with_columns(pl.lit(config.model_version).alias("model_version"))
    )
    return conform(baselines, BASELINES).sort("athlete_id")


def _screened(points: pl.DataFrame, profiles: pl.DataFrame | None, config: DetectionConfig) -> pl.DataFrame:
    """Points not far below the athlete's level on the prior's slope (`baseline_screen_ratio`):
    unlabelled backward running done at its own speeds would otherwise tilt the line (a cluster of
    short steps at low speed reads as a steep slope, which the biweight cannot tell from one)."""
    if points.is_empty():
        return points
    level = blended_levels(points, prior_line(points, profiles, config), config)
    resid = pl.col("y") - pl.col("_a") - pl.col("_b") * pl.col("x")
    return (
        points.join(
            level.select("athlete_id", pl.col("intercept").alias("_a"), pl.col("slope").alias("_b")), on="athlete_id"
        )
        .filter(resid >= math.log(config.baseline_screen_ratio))
        .drop("_a", "_b")
    )


def _own_fits(points: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """The robust line per athlete, with its quality and the speeds its inliers cover."""
    if points.is_empty():
        return pl.DataFrame(schema={"athlete_id": pl.String})
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
    return (
        fit.join(_coverage(inliers, config), on="athlete_id")
        .join(quality, on="athlete_id")
        .join(r_squared, on="athlete_id", how="left")
        .with_columns(pl.lit(0.0).alias("intercept_sd"), pl.lit("own").alias("basis"))
    )


def _coverage(points: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """athlete_id, speed_min_mps, speed_max_mps: speed bins with enough samples."""
    return (
        points.group_by("athlete_id", "bin")
        .agg(pl.col("n").sum())
        .filter(pl.col("n") >= config.baseline_coverage_min_samples)
        .group_by("athlete_id")
        .agg(
            (pl.col("bin").min() * config.baseline_bin_mps).alias("speed_min_mps"),
            ((pl.col("bin").max() + 1) * config.baseline_bin_mps).alias("speed_max_mps"),
        )
    )


def _blended_fits(points: pl.DataFrame, profiles: pl.DataFrame | None, config: DetectionConfig) -> pl.DataFrame:
    """The prior moved towards the athlete's few runs, covering the speeds the prior is trusted at
    (slower jogging often keeps a running cadence: its short steps must not be scored as backward)."""
    levels = blended_levels(points, prior_line(points, profiles, config), config)
    resid = points.join(levels, on="athlete_id").with_columns(
        (pl.col("y") - pl.col("intercept") - pl.col("slope") * pl.col("x")).alias("resid")
    )
    quality = resid.group_by("athlete_id").agg(
        (1.4826 * (pl.col("resid") - pl.col("resid").median()).abs().median()).alias("residual_sd")
    )
    covered = levels.select(
        "athlete_id",
        pl.lit(config.prior_speed_min_mps).alias("speed_min_mps"),
        pl.lit(config.prior_speed_max_mps).alias("speed_max_mps"),
    )
    return (
        levels.join(covered, on="athlete_id")
        .join(quality, on="athlete_id")
        .with_columns(pl.lit("blended").alias("basis"))
    )


def training_digests(activities: pl.DataFrame) -> pl.DataFrame:
    """athlete_id, inputs_sha256: a digest of each athlete's training activities and their labels
    (records never change under an activity id, names and sports may)."""
    columns = ["activity_id", *ACTIVITY_LABELS]
    rows = activities.select("athlete_id", *columns).sort("athlete_id", "activity_id")
    digests = {
        athlete: hashlib.sha256(group.select(columns).write_csv().encode()).hexdigest()
        for (athlete,), group in rows.group_by("athlete_id", maintain_order=True)
    }
    return pl.DataFrame(
        {"athlete_id": list(digests), "inputs_sha256": list(digests.values())},
        schema={"athlete_id": pl.String, "inputs_sha256": pl.String},
    )


def stale_baselines(digests: pl.DataFrame, stored: pl.DataFrame, model_version: str) -> list[str]:
    """Athletes whose stored baseline was fit on other activities, by another model, or is missing."""
    current = stored.filter(pl.col("model_version") == model_version).select("athlete_id", "inputs_sha256")
    unchanged = digests.join(current, on=["athlete_id", "inputs_sha256"], how="semi")
    return sorted(set(digests["athlete_id"]) - set(unchanged["athlete_id"]))


def forward_step_m(speed: pl.Expr, slow_exponent: float = 1.0) -> pl.Expr:
    """Expected forward step length at `speed` from a joined baseline row.  Below the speeds it covers
    (`speed_min_mps`), the line is continued at constant cadence or steeper (exponent max(b, 1)):
    runners slowing down keep their cadence and shorten their steps, so this never expects longer
    forward steps than the fit would, and a slow forward jog does not read as backward."""
    low = pl.col("speed_min_mps")
    at_low = pl.col("intercept") + pl.col("slope") * low.log()
    below = at_low + pl.max_horizontal(pl.col("slope"), pl.lit(slow_exponent)) * (speed.log() - low.log())
    return pl.when(speed < low).then(below).otherwise(pl.col("intercept") + pl.col("slope") * speed.log()).exp()
