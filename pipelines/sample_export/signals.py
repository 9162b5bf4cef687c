"""A session plan turned into what a watch records, one row per sample (vectorised, Polars).

Signals are simulated at 1 Hz and thinned to the sample interval, so totals do not depend on it.
Columns: t_s (s since start), ts (UTC), phase, kind, step, lat_deg, lon_deg, altitude_m,
distance_m (the device's cumulative distance, from its own speed), speed_mps (reported),
heart_rate_bpm, cadence_spm (steps/min; null during sensor dropouts), step_length_mm,
stance_time_ms, vertical_oscillation_mm (running dynamics, null when not recorded) and
temperature_c.  Rows the watch did not record (auto-pause) are already removed.
"""

from __future__ import annotations

import math

import polars as pl

from .plans import SessionPlan
from .profiles import Athlete
from .randomness import Noise, noise_frame

EARTH_RADIUS_M = 6_371_000.0
BACKWARD_COST = 1.35  # metabolic cost of backward running vs forward (Wright & Weyand 2001)
BACKWARD_STANCE = 0.84  # backward ground contact is shorter (Wright & Weyand 2001)
BACKWARD_OSCILLATION = 0.85  # assumed: shorter, choppier backward steps bounce less


def simulate(plan: SessionPlan, athlete: Athlete, seed: int, sample_interval_s: int) -> pl.DataFrame:
    """The samples a watch records during `plan`."""
    session = Noise(seed, athlete.id, plan.number, "session")
    noise = noise_frame(
        plan.duration_s,
        (seed, athlete.id, plan.number),
        {
            "drift": (90.0, 1.0),  # pace wandering around the target
            "step_noise": (8.0, 0.025),  # step-to-step variability, ~2.5 %
            "speed_noise": (15.0, 0.02),  # speed sensor error, ~2 %
            "speed_white": 0.04,
            "cadence_white": 0.01,
            "stance_noise": (10.0, 0.03),
            "hr_noise": (6.0, 1.2),
            "gps_x": (120.0, 2.5),  # GPS error drifts slowly, a couple of metres
            "gps_y": (120.0, 2.5),
            "gps_x_white": 0.15,
            "gps_y_white": 0.15,
            "wobble": (150.0, 0.5),  # route bends, radians
            "baro": (120.0, 0.5),  # barometric altitude noise, m
            "thermal": (600.0, 0.6),  # temperature drift, °C
        },
    )
    frame = pl.concat([_timeline(plan), noise], how="horizontal").with_columns(
        gps_x=pl.col("gps_x") + pl.col("gps_x_white"), gps_y=pl.col("gps_y") + pl.col("gps_y_white")
    )
    frame = _speed(frame, session)
    frame = _route(frame, athlete, session)
    frame = _gait(frame, athlete, session)
    frame = _heart_rate(frame, athlete)
    frame = _temperature(frame, athlete, plan)
    frame = _dropouts(frame, session)

    recorded = pl.lit(True)
    if athlete.device.auto_pause:  # the watch stops ~3 s into a standstill and resumes on moving
        recorded = ~((pl.col("kind") == "stop") & (pl.col("t_in_phase") >= 3) & (pl.col("t_to_end") > 2))
    start_us = int(plan.start_utc.timestamp()) * 1_000_000
    return (
        frame.filter((pl.col("t_s") % sample_interval_s == 0) & recorded)
        .with_columns(ts=(pl.col("t_s").cast(pl.Int64) * 1_000_000 + start_us).cast(pl.Datetime("us", "UTC")))
        .select(
            "t_s",
            "ts",
            "phase",
            "kind",
            "step",
            "lat_deg",
            "lon_deg",
            "altitude_m",
            "distance_m",
            "speed_mps",
            "heart_rate_bpm",
            "cadence_spm",
            "step_length_mm",
            "stance_time_ms",
            "vertical_oscillation_mm",
            "temperature_c",
        )
    )


def _timeline(plan: SessionPlan) -> pl.DataFrame:
    """One row per second: which phase, its kind, target speed and step, time in and left."""
    phases = pl.DataFrame(
        {
            "kind": [p.kind for p in plan.phases],
            "target": [p.speed_mps for p in plan.phases],
            "step": [p.step for p in plan.phases],
            "duration": [p.duration_s for p in plan.phases],
        },
        schema_overrides={"step": pl.Int32, "duration": pl.Int64},
    ).with_columns(phase=pl.int_range(pl.len(), dtype=pl.Int32), end=pl.col("duration").cum_sum())
    t = pl.int_range(plan.duration_s, eager=True, dtype=pl.Int64).alias("t_s")
    index = phases["end"].search_sorted(t, side="right")
    return (
        phases.select(pl.all().gather(index))
        .with_columns(t_s=t)
        .with_columns(
            t_in_phase=pl.col("t_s") - (pl.col("end") - pl.col("duration")),
            t_to_end=pl.col("end") - pl.col("t_s"),
        )
    )


def _speed(frame: pl.DataFrame, session: Noise) -> pl.DataFrame:
    """True speed (targets + pace drift, ~3 s acceleration, slower uphill) and reported speed."""
    hills = _hills(session)
    drift_sd = (
        pl.when(pl.col("kind") == "run")
        .then(0.10)
        .when(pl.col("kind") == "backward")
        .then(0.06)
        .when(pl.col("kind") == "walk")
        .then(0.04)
        .otherwise(0.0)
    )
    accel = 1.0 - math.exp(-1.0 / 3.0)
    frame = frame.with_columns(
        v_plan=((pl.col("target") + pl.col("drift") * drift_sd).clip(lower_bound=0.0)).ewm_mean(
            alpha=accel, adjust=False
        )
        * (1.0 - (-(pl.col("t_s") + 1) / 4.0).exp())
    )
    # Gentle hills slow the runner a little: −1.5 % speed per % grade, grade at the planned distance.
    grade = _grade(hills, pl.col("v_plan").cum_sum())
    frame = frame.with_columns(
        v_true=pl.when(pl.col("v_plan") < 0.1)
        .then(0.0)
        .otherwise(pl.col("v_plan") * (1.0 - 1.5 * grade).clip(0.92, 1.08))
    )
    return frame.with_columns(
        s_true=pl.col("v_true").cum_sum() - pl.col("v_true"),
        speed_mps=pl.when(pl.col("v_true") == 0.0)
        .then(0.0)
        .otherwise((pl.col("v_true") * (1.0 + pl.col("speed_noise")) + pl.col("speed_white")).clip(0.0))
        .round(3),
    ).with_columns(
        # The watch integrates its own speed; recorded to the centimetre.
        distance_m=(pl.col("speed_mps").cum_sum() - pl.col("speed_mps")).round(2),
        altitude_m=_altitude(hills, pl.col("s_true")) + pl.col("baro"),
    )


def _hills(session: Noise) -> list[tuple[float, float, float]]:
    """Amplitude (m), wavelength (m) and phase of three gentle undulations (grades ≤ ~4 %)."""
    return [
        (session.uniform_scalar(3.0, 10.0), session.uniform_scalar(1500.0, 3500.0), session.uniform_scalar(0, 6.3)),
        (session.uniform_scalar(1.5, 5.0), session.uniform_scalar(600.0, 1200.0), session.uniform_scalar(0, 6.3)),
        (session.uniform_scalar(0.5, 1.5), session.uniform_scalar(200.0, 400.0), session.uniform_scalar(0, 6.3)),
    ]


def _altitude(hills, s: pl.Expr) -> pl.Expr:
    return pl.sum_horizontal(a * (s * (2 * math.pi / w) + p).sin() for a, w, p in hills)


def _grade(hills, s: pl.Expr) -> pl.Expr:
    return pl.sum_horizontal(a * 2 * math.pi / w * (s * (2 * math.pi / w) + p).cos() for a, w, p in hills)


def _route(frame: pl.DataFrame, athlete: Athlete, session: Noise) -> pl.DataFrame:
    """A wobbly loop from near home: heading turns once round over the session, plus GPS error.

    GPS error is mostly slow (AR(1), τ 2 min, ~2.5 m) with a little white noise, as real receivers
    drift rather than jump; a 1 Hz track is then 1–3 % longer than the path (more when slow).
    """
    bearing0 = session.uniform_scalar(0.0, 2 * math.pi)
    offset = session.uniform_scalar(0.0, 300.0)
    x0, y0 = offset * math.cos(bearing0), offset * math.sin(bearing0)
    loops = session.pick((1.0, 1.0, -1.0, 2.0))  # clockwise or not; some do two laps
    heading0 = session.uniform_scalar(0.0, 2 * math.pi)
    total = max(float(frame["v_true"].sum()), 1.0)
    frame = frame.with_columns(
        heading=heading0 + (2 * math.pi * loops / total) * pl.col("s_true") + pl.col("wobble"),
    ).with_columns(
        x=x0 + (pl.col("v_true") * pl.col("heading").sin()).cum_sum() + pl.col("gps_x"),
        y=y0 + (pl.col("v_true") * pl.col("heading").cos()).cum_sum() + pl.col("gps_y"),
    )
    metres_per_deg = EARTH_RADIUS_M * math.pi / 180.0
    return frame.with_columns(
        lat_deg=athlete.home_lat + pl.col("y") / metres_per_deg,
        lon_deg=athlete.home_lon + pl.col("x") / (metres_per_deg * math.cos(math.radians(athlete.home_lat))),
        altitude_m=(athlete.home_alt_m + pl.col("altitude_m")).round(1),
    )


def _gait(frame: pl.DataFrame, athlete: Athlete, session: Noise) -> pl.DataFrame:
    """Cadence, step length, stance time and vertical oscillation (DESIGN §5).

    Forward running L = a·v^b; backward L = r·a·v^b (r ≈ 0.6–0.78, so cadence is higher at the same
    speed); walking L = 0.415·height·(v/1.4)^0.6 (step ≈ 0.41–0.42 × height at 1.4 m/s).
    """
    r = athlete.backward_ratio * (1.0 + session.uniform_scalar(-0.03, 0.03))  # day-to-day
    v, kind = pl.col("v_true"), pl.col("kind")
    forward = athlete.step_a * v.pow(athlete.step_b)
    walking = 0.415 * athlete.height_cm / 100.0 * (v / 1.4).pow(0.6)
    length = (pl.when(kind == "backward").then(forward * r).when(kind == "walk").then(walking).otherwise(forward)) * (
        1.0 + pl.col("step_noise")
    )
    running = kind.is_in(["run", "backward"]) & (v >= 1.0) & athlete.device.running_dynamics
    stance = athlete.stance_ms_at_3 * (v / 3.0).pow(-0.55) * (1.0 + pl.col("stance_noise"))
    oscillation = 92.0 * (v / 3.0).pow(0.2) * (1.0 - 0.5 * pl.col("stance_noise"))
    backward = kind == "backward"
    frame = frame.with_columns(
        cadence_spm=pl.when(v < 0.3).then(0.0).otherwise(60.0 * v / length * (1.0 + pl.col("cadence_white"))),
    )
    return frame.with_columns(
        step_length_mm=pl.when(running).then((60_000.0 * pl.col("speed_mps") / pl.col("cadence_spm")).round(1)),
        stance_time_ms=pl.when(running).then(
            (stance * pl.when(backward).then(BACKWARD_STANCE).otherwise(1.0)).round(1)
        ),
        vertical_oscillation_mm=pl.when(running).then(
            (oscillation * pl.when(backward).then(BACKWARD_OSCILLATION).otherwise(1.0)).round(1)
        ),
    )


def _heart_rate(frame: pl.DataFrame, athlete: Athlete) -> pl.DataFrame:
    """Heart rate following effort with a ~30 s lag, drifting up ~4 bpm/h.

    Effort is the fraction of heart-rate reserve; backward running at a given speed costs ~35 %
    more (Wright & Weyand 2001) and raises heart rate accordingly (Flynn et al. 1994).
    """
    v, kind = pl.col("v_true"), pl.col("kind")
    effort = (
        pl.when(kind == "run")
        .then(0.22 + 0.18 * v)
        .when(kind == "backward")
        .then(0.22 + 0.18 * BACKWARD_COST * v)
        .when(kind == "walk")
        .then(0.12 + 0.12 * v)
        .otherwise(0.32)
    ).clip(0.25, 0.97)
    reserve = athlete.hr_max - athlete.hr_rest
    target = athlete.hr_rest + reserve * effort + 4.0 * pl.col("t_s") / 3600.0
    lag = 1.0 - math.exp(-1.0 / 30.0)
    return frame.with_columns(
        heart_rate_bpm=(
            target.ewm_mean(alpha=lag, adjust=False) - 18.0 * (-pl.col("t_s") / 60.0).exp() + pl.col("hr_noise")
        )
        .round()
        .clip(athlete.hr_rest, athlete.hr_max)
    )


def _temperature(frame: pl.DataFrame, athlete: Athlete, plan: SessionPlan) -> pl.DataFrame:
    """Watch temperature: the month's mean air temperature, +4 °C from the wrist, slow drift."""
    ambient = athlete.climate_c[plan.local_start.month - 1]
    return frame.with_columns(temperature_c=(ambient + 4.0 + pl.col("thermal") + 0.8 * pl.col("t_s") / 3600.0).round())


def _dropouts(frame: pl.DataFrame, session: Noise) -> pl.DataFrame:
    """Some sessions lose cadence (and running dynamics) for 5–25 s, once or twice: null, not 0."""
    lost = pl.lit(False)
    n = frame.height
    for _ in range(session.pick((0, 0, 0, 1, 1, 2))):
        start = session.integer(60, max(61, n - 60))
        lost = lost | pl.col("t_s").is_between(start, start + session.integer(5, 25), closed="left")
    columns = ["cadence_spm", "step_length_mm", "stance_time_ms", "vertical_oscillation_mm"]
    return frame.with_columns(pl.when(~lost).then(pl.col(c)).alias(c) for c in columns)
