"""Energy estimates (DESIGN §6): Minetti gradient cost × backward multiplier, with ACSM and heart-rate
cross-checks, per record and rolled up per segment and per activity."""

from __future__ import annotations

import polars as pl

from retrostride.assets.transforms.model_config import EnergyConfig, energy_row_version
from retrostride.assets.transforms.segments import timed_records, with_intervals
from retrostride.assets.transforms.windows import centred_rolling, edge_aggs, edge_change, run_ids, with_edges
from retrostride.warehouse.motion import CLEANED_ALTITUDE, with_cleaned_altitude
from retrostride.warehouse.schema import ACTIVITIES, ACTIVITY_ENERGY, BODY_MEASUREMENTS, UTC_US, conform

#: Athlete profiles as the energy model reads them; every column but athlete_id may be null.
PROFILES = pl.Schema(
    {
        "athlete_id": pl.String,
        "sex": pl.String,  # "male" | "female"
        "birth_year": pl.Int32,
        "weight_kg": pl.Float64,
        "max_hr_bpm": pl.Float64,  # measured; else estimated from age (Tanaka 2001)
    }
)

#: The body as of each activity (`as_of_mass`).
MASSES = pl.Schema(
    {
        "activity_id": pl.String,
        "athlete_id": pl.String,
        "mass_kg": pl.Float64,
        "mass_source": pl.String,  # measurement | profile | default
        "measured_at": UTC_US,  # the measurement used, when one was
        "sex": pl.String,
        "age_years": pl.Float64,
        "max_hr_bpm": pl.Float64,
    }
)


#: The record columns the energy model reads.
_ENERGY_COLUMNS = ["activity_id", "athlete_id", "ts", "altitude_m", "distance_m", "speed_mps", "heart_rate_bpm"]


def polynomial(coefficients: tuple[float, ...], x: pl.Expr) -> pl.Expr:
    """Σ c_k · x^(n−k) by Horner's rule (coefficients from the highest power)."""
    result = pl.lit(coefficients[0])
    for c in coefficients[1:]:
        result = result * x + c
    return result


def running_cost(grade: pl.Expr, config: EnergyConfig) -> pl.Expr:
    """Net cost of running, J/kg/m (Minetti et al. 2002); grade clamped to ±0.45."""
    return polynomial(config.minetti_run, grade.clip(-config.grade_clamp, config.grade_clamp))


def walking_cost(grade: pl.Expr, config: EnergyConfig) -> pl.Expr:
    """Net cost of walking, J/kg/m (Minetti et al. 2002); grade clamped to ±0.45."""
    return polynomial(config.minetti_walk, grade.clip(-config.grade_clamp, config.grade_clamp))


def acsm_vo2(speed_m_per_min: pl.Expr, grade: pl.Expr, coefficients: tuple[float, float, float]) -> pl.Expr:
    """ACSM gross VO2, mL/kg/min: rest + a·S + b·S·G (downhill counted as level: the equations are
    for level and uphill)."""
    rest, per_speed, per_climb = coefficients
    return rest + per_speed * speed_m_per_min + per_climb * speed_m_per_min * grade.clip(lower_bound=0.0)


def keytel_kcal_per_min(
    heart_rate: pl.Expr, mass_kg: pl.Expr, age_years: pl.Expr, sex: pl.Expr, config: EnergyConfig
) -> pl.Expr:
    """Keytel et al. 2005 energy expenditure from heart rate, kJ/min ÷ 4.184 → kcal/min (null when sex
    is unknown)."""

    def equation(c: tuple[float, float, float, float]) -> pl.Expr:
        return c[0] + c[1] * heart_rate + c[2] * mass_kg + c[3] * age_years

    kj = (
        pl.when(sex == "male")
        .then(equation(config.keytel_male))
        .when(sex == "female")
        .then(equation(config.keytel_female))
    )
    return kj / (config.joules_per_kcal / 1000.0)


def max_heart_rate(age_years: pl.Expr, config: EnergyConfig) -> pl.Expr:
    """Age-predicted maximum heart rate: 208 − 0.7·age (Tanaka et al. 2001)."""
    return config.max_hr_intercept - config.max_hr_age_slope * age_years


def as_of_mass(
    activities: pl.DataFrame,
    body_measurements: pl.DataFrame,
    profiles: pl.DataFrame | None = None,
    config: EnergyConfig = EnergyConfig(),
) -> pl.DataFrame:
    """Each activity's athlete as of its start: the latest weight measured at or before the start,
    else the profile weight, else `config.default_mass_kg`; the row says which (DESIGN §6)."""
    acts = conform(activities, ACTIVITIES).select("activity_id", "athlete_id", "start_ts").sort("start_ts")
    weights = (
        conform(body_measurements, BODY_MEASUREMENTS)
        .filter(pl.col("weight_kg").is_not_null() & (pl.col("weight_kg") > 0))
        .select("athlete_id", pl.col("ts").alias("measured_at"), pl.col("weight_kg").alias("_measured_kg"))
        .sort("measured_at")
    )
    tolerance = None if config.mass_max_age_days is None else f"{int(config.mass_max_age_days * 86400)}s"
    joined = acts.join_asof(
        weights,
        left_on="start_ts",
        right_on="measured_at",
        by="athlete_id",
        strategy="backward",
        tolerance=tolerance,
        check_sortedness=False,  # sorted above; Polars cannot check within `by` groups
    )
    people = (pl.DataFrame(schema=PROFILES) if profiles is None else conform(profiles, PROFILES)).unique(
        "athlete_id", keep="last"
    )
    joined = joined.join(people, on="athlete_id", how="left")
    source = (
        pl.when(pl.col("_measured_kg").is_not_null())
        .then(pl.lit("measurement"))
        .when(pl.col("weight_kg").is_not_null())
        .then(pl.lit("profile"))
        .otherwise(pl.lit("default"))
    )
    age = (pl.col("start_ts").dt.year() - pl.col("birth_year")).cast(pl.Float64)
    return (
        joined.with_columns(
            pl.coalesce("_measured_kg", "weight_kg", pl.lit(config.default_mass_kg)).alias("mass_kg"),
            source.alias("mass_source"),
            age.alias("age_years"),
        )
        .with_columns(pl.coalesce("max_hr_bpm", max_heart_rate(pl.col("age_years"), config)).alias("max_hr_bpm"))
        .select(MASSES.names())
        .cast(MASSES)
        .sort("activity_id")
    )


def _grade(samples: pl.DataFrame, config: EnergyConfig) -> pl.Series:
    """Grade per sample: Δ cleaned altitude (as climb is counted: `with_cleaned_altitude`) / Δ distance
    over a centred window (level when the window covers too little distance or has no altitude)."""
    keys = ["_activity"]  # an integer key is cheaper to partition windows by than the string id
    frame = samples.select(
        run_ids(["activity_id"]).alias("_activity"),
        "ts",
        "altitude_m",
        (pl.col("interval_m").cum_sum() - pl.col("interval_m")).over("activity_id").alias("_at_m"),
    )
    frame = with_edges(
        frame.with_columns(with_cleaned_altitude(samples)[CLEANED_ALTITUDE].alias("_alt")),
        "alt",
        pl.col("_alt").is_not_null(),
        ["_alt", "_at_m"],
        keys,
    )
    window = centred_rolling(frame, config.grade_window_s, keys, edge_aggs("alt", ["_alt", "_at_m"]))
    window = window.select(edge_change("alt", "_alt").alias("rise"), edge_change("alt", "_at_m").alias("run"))
    return window.select(
        pl.when(pl.col("run") >= config.grade_min_distance_m)
        .then(pl.col("rise") / pl.col("run"))
        .otherwise(0.0)
        .fill_null(0.0)
        .clip(-config.grade_clamp, config.grade_clamp)
        .alias("grade")
    ).to_series()


def record_energy(
    records: pl.DataFrame, segments: pl.DataFrame, masses: pl.DataFrame, config: EnergyConfig = EnergyConfig()
) -> pl.DataFrame:
    """Per record: the segment it lies in, grade, and kcal (net, gross, ACSM, heart rate).

    Each record owns the interval up to the next one; intervals longer than `max_record_interval_s`
    (pauses) add their distance but no time-based cost.
    """
    cleaned = [CLEANED_ALTITUDE] if CLEANED_ALTITUDE in records.columns else []  # cleaned by the caller
    samples = with_intervals(timed_records(records, [*_ENERGY_COLUMNS, *cleaned]), config.max_record_interval_s)
    samples = samples.with_columns(pl.col("interval_s").clip(upper_bound=config.max_record_interval_s))
    samples = samples.with_columns(_grade(samples, config).alias("grade")).drop(cleaned)
    spans = segments.select(
        "activity_id",
        "segment_index",
        "direction",
        "gait",
        pl.col("start_ts").alias("_seg_start"),
        _energy_version(pl.col("model_version"), config),
    ).sort("activity_id", "_seg_start")
    # Both sides are in time order within each activity, which is all an as-of join `by` needs.
    samples = samples.join_asof(
        spans, left_on="ts", right_on="_seg_start", by="activity_id", strategy="backward", check_sortedness=False
    )
    samples = samples.join(masses.drop("athlete_id", strict=False), on="activity_id", how="left").with_columns(
        pl.col("mass_kg").fill_null(config.default_mass_kg),
        pl.col("mass_source").fill_null("default"),
        pl.col("direction").fill_null("unknown"),
        pl.col("gait").fill_null("unknown"),
        pl.col("model_version").fill_null(energy_row_version("", config)),
    )
    mass, walking = pl.col("mass_kg"), pl.col("gait") == "walk"
    backward = pl.col("direction") == "backward"
    multiplier = pl.when(backward).then(config.backward_multiplier).otherwise(1.0)
    cost = pl.when(walking).then(walking_cost(pl.col("grade"), config)).otherwise(running_cost(pl.col("grade"), config))
    minutes = pl.col("interval_s").clip(upper_bound=config.max_record_interval_s) / 60.0
    speed = pl.coalesce(
        "speed_mps", pl.when(pl.col("interval_s") > 0).then(pl.col("interval_m") / pl.col("interval_s")), pl.lit(0.0)
    )
    s_m_min = speed * 60.0
    vo2 = (
        pl.when(walking)
        .then(acsm_vo2(s_m_min, pl.col("grade"), config.acsm_walk))
        .otherwise(acsm_vo2(s_m_min, pl.col("grade"), config.acsm_run))
    )
    rest = pl.when(walking).then(config.acsm_walk[0]).otherwise(config.acsm_run[0])
    vo2 = rest + multiplier * (vo2 - rest)  # the backward multiplier applies to the cost above rest
    hr = pl.col("heart_rate_bpm")
    hr_valid = hr.is_between(config.hr_valid_low * pl.col("max_hr_bpm"), config.hr_valid_high * pl.col("max_hr_bpm"))
    keytel = keytel_kcal_per_min(hr, mass, pl.col("age_years"), pl.col("sex"), config)
    kcal_net = multiplier * cost * mass * pl.col("interval_m") / config.joules_per_kcal
    # Lazily, so the shared sub-expressions (kcal_net, walking, minutes) are computed once.
    return (
        samples.lazy()
        .with_columns(
            kcal_net.alias("kcal_net"),
            (kcal_net + config.resting_kcal_per_kg_h * mass * minutes / 60.0).alias("kcal_gross"),
            (vo2 * mass * minutes / 1000.0 * config.kcal_per_l_o2).alias("kcal_acsm"),
            # Heart rate already carries the backward cost: never multiplied by M_dir.
            pl.when(hr_valid.fill_null(False)).then(keytel * minutes).alias("kcal_hr"),
            pl.when(hr_valid.fill_null(False)).then(minutes * 60.0).otherwise(0.0).alias("hr_valid_s"),
        )
        .select(
            "activity_id",
            "athlete_id",
            "ts",
            "segment_index",
            "direction",
            "gait",
            "interval_s",
            "interval_m",
            "grade",
            "mass_kg",
            "mass_source",
            "kcal_net",
            "kcal_gross",
            "kcal_acsm",
            "kcal_hr",
            "hr_valid_s",
            "model_version",
        )
        .collect()
    )


def _energy_version(detection_version: pl.Expr, config: EnergyConfig) -> pl.Expr:
    """`energy_row_version` as an expression: detection version + energy version."""
    suffix = energy_row_version("", config)
    return pl.concat_str(detection_version.fill_null(""), pl.lit(suffix)).alias("model_version")


def segment_energy(
    record_kcal: pl.DataFrame, segments: pl.DataFrame, config: EnergyConfig = EnergyConfig()
) -> pl.DataFrame:
    """Segments with `kcal_net`, `kcal_gross` (and ACSM / heart-rate kcal) summed from `record_energy`
    output, and the energy-aware `model_version`; `energy_low_confidence` flags backward walking and backward downhill, for which
    the multiplier has no measurements (DESIGN §6)."""
    sums = record_kcal.group_by("activity_id", "segment_index").agg(
        pl.col("kcal_net").sum(),
        pl.col("kcal_gross").sum(),
        pl.col("kcal_acsm").sum(),
        pl.col("kcal_hr").sum(),
        (pl.col("grade") * pl.col("interval_m")).sum().alias("_climb_m"),
    )
    out = segments.drop("kcal_net", "kcal_gross", strict=False).join(
        sums, on=["activity_id", "segment_index"], how="left"
    )
    mean_grade = pl.when(pl.col("distance_m") > 0).then(pl.col("_climb_m") / pl.col("distance_m"))
    low = (pl.col("direction") == "backward") & ((pl.col("gait") == "walk") | (mean_grade < -0.02).fill_null(False))
    return out.with_columns(
        pl.col("kcal_net", "kcal_gross", "kcal_acsm").fill_null(0.0),
        low.alias("energy_low_confidence"),
        _energy_version(pl.col("model_version"), config),
    ).drop("_climb_m")


def activity_energy(record_kcal: pl.DataFrame, masses: pl.DataFrame) -> pl.DataFrame:
    """Per activity in `masses`: net, gross, backward, ACSM and heart-rate kcal, and the mass used
    (activities without records get zero kcal and no model version)."""
    backward = pl.col("direction") == "backward"
    sums = record_kcal.group_by("activity_id").agg(
        pl.col("athlete_id").drop_nulls().first(),
        pl.col("kcal_net").sum(),
        pl.col("kcal_gross").sum(),
        pl.col("kcal_net").filter(backward).sum().alias("kcal_backward"),
        pl.col("kcal_acsm").sum(),
        pl.when(pl.col("kcal_hr").count() > 0).then(pl.col("kcal_hr").sum()).alias("kcal_hr"),
        pl.col("hr_valid_s").sum(),
        pl.col("interval_m").sum().alias("distance_m"),
        pl.col("interval_m").filter(backward).sum().alias("backward_distance_m"),
        pl.col("interval_s").filter(backward).sum().alias("backward_s"),
        pl.when(pl.col("interval_m").sum() > 0)  # no distance: no grade (null, never NaN)
        .then((pl.col("grade").abs() * pl.col("interval_m")).sum() / pl.col("interval_m").sum())
        .alias("mean_abs_grade"),
        pl.col("model_version").first(),
    )
    per_kg_km = pl.when(pl.col("distance_m") > 0).then(
        pl.col("kcal_net") / pl.col("mass_kg") / (pl.col("distance_m") / 1000.0)
    )
    base = masses.select("activity_id", "athlete_id", "mass_kg", "mass_source")
    totals = base.join(sums, on="activity_id", how="left", suffix="_records").with_columns(
        pl.coalesce("athlete_id", "athlete_id_records").alias("athlete_id"),
        pl.col("kcal_net", "kcal_gross", "kcal_backward", "kcal_acsm", "hr_valid_s").fill_null(0.0),
        pl.col("distance_m", "backward_distance_m", "backward_s").fill_null(0.0),
    )
    return (
        totals.with_columns(per_kg_km.alias("kcal_net_per_kg_km"))
        .select(ACTIVITY_ENERGY.names())
        .cast(ACTIVITY_ENERGY)
        .sort("activity_id")
    )


def implausible_energy(
    activity_energy: pl.DataFrame, *, level_grade: float = 0.02, low: float = 0.5, high: float = 2.5
) -> pl.DataFrame:
    """Activities with impossible values, for asset checks: activity_id, problem.

    Net cost on level ground (mean |grade| ≤ 2 %) outside 0.5–2.5 kcal/kg/km (Minetti's level
    costs: walking 0.60, running 0.86, backward running 1.16), or backward beyond the whole."""
    level = (pl.col("mean_abs_grade") <= level_grade) & (pl.col("distance_m") > 100.0)
    cost = pl.col("kcal_net_per_kg_km")
    problems = {
        "net cost on level ground outside 0.5–2.5 kcal/kg/km": level & ~cost.is_between(low, high),
        "backward distance above 100 %": pl.col("backward_distance_m") > pl.col("distance_m") + 1e-6,
        "backward kcal above the total": pl.col("kcal_backward") > pl.col("kcal_net") + 1e-6,
        "negative kcal": pl.min_horizontal("kcal_net", "kcal_gross", "kcal_acsm") < 0,
    }
    found = [
        activity_energy.filter(flag.fill_null(False)).select("activity_id", pl.lit(text).alias("problem"))
        for text, flag in problems.items()
    ]
    return pl.concat(found)
