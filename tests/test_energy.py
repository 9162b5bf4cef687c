"""Energy equations against hand-computed values (DESIGN §6), and the as-of weight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from retrostride.assets.transforms.energy import (
    ACTIVITY_ENERGY,
    acsm_vo2,
    activity_energy,
    as_of_mass,
    implausible_energy,
    keytel_kcal_per_min,
    max_heart_rate,
    record_energy,
    running_cost,
    segment_energy,
    walking_cost,
)
from retrostride.assets.transforms.model_config import DetectionConfig, EnergyConfig
from retrostride.assets.transforms.segments import SEGMENTS
from retrostride.warehouse.schema import ACTIVITIES, BODY_MEASUREMENTS, RECORDS, conform

CONFIG = EnergyConfig()
START = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)


def value(expr: pl.Expr) -> float:
    return pl.select(expr).item()


# -- equations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grade", "expected"),
    [
        # 155.4·(−0.2)^5 − 30.4·(−0.2)^4 − 43.3·(−0.2)^3 + 46.3·(−0.2)^2 + 19.5·(−0.2) + 3.6
        # = −0.049728 − 0.04864 + 0.3464 + 1.852 − 3.9 + 3.6
        (-0.2, 1.800032),
        (0.0, 3.6),
        # 0.001554 − 0.00304 − 0.0433 + 0.463 + 1.95 + 3.6
        (0.1, 5.968214),
    ],
)
def test_minetti_running_cost(grade, expected):
    assert value(running_cost(pl.lit(grade), CONFIG)) == pytest.approx(expected, abs=1e-9)


def test_minetti_walking_cost_and_the_grade_clamp():
    assert value(walking_cost(pl.lit(0.0), CONFIG)) == pytest.approx(2.5)
    # 280.5·0.1^5 − 58.7·0.1^4 − 76.8·0.1^3 + 51.9·0.1^2 + 19.6·0.1 + 2.5
    assert value(walking_cost(pl.lit(0.1), CONFIG)) == pytest.approx(0.002805 - 0.00587 - 0.0768 + 0.519 + 1.96 + 2.5)
    assert value(running_cost(pl.lit(0.9), CONFIG)) == value(running_cost(pl.lit(0.45), CONFIG))
    assert value(running_cost(pl.lit(-0.9), CONFIG)) == value(running_cost(pl.lit(-0.45), CONFIG))


def test_keytel_for_a_man_and_a_woman():
    hr, age = pl.lit(150.0), pl.lit(30.0)
    # Man, 70 kg: −55.0969 + 0.6309·150 + 0.1988·70 + 0.2017·30 = 59.5051 kJ/min = 14.2221 kcal/min
    man = value(keytel_kcal_per_min(hr, pl.lit(70.0), age, pl.lit("male"), CONFIG))
    assert man == pytest.approx(59.5051 / 4.184, abs=1e-4)
    # Woman, 60 kg: −20.4022 + 0.4472·150 − 0.1263·60 + 0.0740·30 = 41.3198 kJ/min = 9.8756 kcal/min
    woman = value(keytel_kcal_per_min(hr, pl.lit(60.0), age, pl.lit("female"), CONFIG))
    assert woman == pytest.approx(41.3198 / 4.184, abs=1e-4)
    assert value(keytel_kcal_per_min(hr, pl.lit(60.0), age, pl.lit(None, pl.String), CONFIG)) is None


def test_acsm_running_and_walking():
    # Running 3 m/s = 180 m/min, level: 3.5 + 0.2·180 = 39.5 mL/kg/min.
    assert value(acsm_vo2(pl.lit(180.0), pl.lit(0.0), CONFIG.acsm_run)) == pytest.approx(39.5)
    # Walking 84 m/min up 5 %: 3.5 + 0.1·84 + 1.8·84·0.05 = 19.46; downhill counts as level.
    assert value(acsm_vo2(pl.lit(84.0), pl.lit(0.05), CONFIG.acsm_walk)) == pytest.approx(19.46)
    assert value(acsm_vo2(pl.lit(84.0), pl.lit(-0.05), CONFIG.acsm_walk)) == pytest.approx(11.9)


def test_max_heart_rate_from_age():
    assert value(max_heart_rate(pl.lit(40.0), CONFIG)) == pytest.approx(180.0)  # 208 − 0.7·40


# -- records, segments, activities -------------------------------------------------------------


def level_run(
    seconds: int = 400, speed: float = 2.5, heart_rate: float = 150.0, climb: float = 0.0, activity_id: str = "a1"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A 1-Hz run at constant speed up a constant grade `climb`."""
    rows = [
        {
            "activity_id": activity_id,
            "athlete_id": "ana",
            "ts": START + timedelta(seconds=i),
            "distance_m": speed * i,
            "speed_mps": speed,
            "altitude_m": 100.0 + climb * speed * i,
            "heart_rate_bpm": heart_rate,
            "cadence_spm": 170.0,
        }
        for i in range(seconds + 1)
    ]
    activity = conform(
        pl.DataFrame(
            [
                {
                    "activity_id": activity_id,
                    "athlete_id": "ana",
                    "start_ts": START,
                    "end_ts": START + timedelta(seconds=seconds),
                }
            ]
        ),
        ACTIVITIES,
    )
    return conform(pl.DataFrame(rows), RECORDS), activity


def segments_of(activity_id: str, pieces: list[tuple[int, int, str, str]]) -> pl.DataFrame:
    """Segments (start s, end s, direction, gait) as detection would hand them over."""
    return pl.DataFrame(
        [
            {
                "activity_id": activity_id,
                "athlete_id": "ana",
                "segment_index": i,
                "direction": d,
                "gait": g,
                "start_ts": START + timedelta(seconds=s),
                "end_ts": START + timedelta(seconds=e),
                "duration_s": float(e - s),
                "distance_m": None,
                "mean_speed_mps": None,
                "mean_cadence_spm": None,
                "evidence": "gait",
                "confidence": 0.9,
                "model_version": DetectionConfig().model_version,
            }
            for i, (s, e, d, g) in enumerate(pieces)
        ],
        schema=SEGMENTS,
    )


def masses(activity: pl.DataFrame, weight: float = 70.0, sex: str = "male", birth_year: int = 1994) -> pl.DataFrame:
    profiles = pl.DataFrame({"athlete_id": ["ana"], "weight_kg": [weight], "sex": [sex], "birth_year": [birth_year]})
    return as_of_mass(activity, pl.DataFrame(schema=BODY_MEASUREMENTS), profiles)


def test_70_kg_running_1000_m_level_costs_60_kcal_net_and_35_percent_more_backward():
    records, activity = level_run(seconds=400, speed=2.5)  # 1000 m
    body = masses(activity)
    forward = record_energy(records, segments_of("a1", [(0, 400, "forward", "run")]), body)
    assert forward["interval_m"].sum() == pytest.approx(1000.0)
    assert forward["kcal_net"].sum() == pytest.approx(3.6 * 70 * 1000 / 4184, rel=1e-9)  # 60.229 kcal
    back = record_energy(records, segments_of("a1", [(0, 400, "backward", "run")]), body)
    assert back["kcal_net"].sum() == pytest.approx(1.35 * 60.229, rel=1e-4)
    walk = record_energy(records, segments_of("a1", [(0, 400, "forward", "walk")]), body)
    assert walk["kcal_net"].sum() == pytest.approx(2.5 * 70 * 1000 / 4184, rel=1e-9)


def test_gross_adds_one_kcal_per_kg_per_hour_and_acsm_is_close():
    records, activity = level_run(seconds=400, speed=2.5)
    kcal = record_energy(records, segments_of("a1", [(0, 400, "forward", "run")]), masses(activity))
    resting = 1.0 * 70 * 400 / 3600
    assert kcal["kcal_gross"].sum() == pytest.approx(kcal["kcal_net"].sum() + resting, rel=1e-9)
    # ACSM: (3.5 + 0.2·150) mL/kg/min · 70 kg · 400/60 min · 5 kcal/L = 78.17 kcal
    assert kcal["kcal_acsm"].sum() == pytest.approx(33.5 * 70 * (400 / 60) / 1000 * 5, rel=1e-9)


def test_grade_comes_from_smoothed_altitude_over_distance():
    records, activity = level_run(seconds=400, speed=2.5, climb=0.05)
    kcal = record_energy(records, segments_of("a1", [(0, 400, "forward", "run")]), masses(activity))
    middle = kcal.filter(pl.col("ts").is_between(START + timedelta(seconds=30), START + timedelta(seconds=370)))
    assert middle["grade"].mean() == pytest.approx(0.05, abs=0.002)
    expected = value(running_cost(pl.lit(0.05), CONFIG)) * 70 * middle["interval_m"].sum() / 4184
    assert middle["kcal_net"].sum() == pytest.approx(expected, rel=0.01)


def test_heart_rate_estimate_only_where_heart_rate_is_valid_and_never_times_the_multiplier():
    records, activity = level_run(seconds=400, heart_rate=150.0)
    body = masses(activity)  # 30 years old: max 187 bpm; 150 bpm = 80 %
    forward = record_energy(records, segments_of("a1", [(0, 400, "forward", "run")]), body)
    backward = record_energy(records, segments_of("a1", [(0, 400, "backward", "run")]), body)
    assert forward["kcal_hr"].sum() == pytest.approx(59.5051 / 4.184 * 400 / 60, rel=1e-4)
    assert backward["kcal_hr"].sum() == pytest.approx(forward["kcal_hr"].sum())
    easy, _ = level_run(seconds=400, heart_rate=100.0)  # 53 % of max: Keytel does not hold
    assert record_energy(easy, segments_of("a1", [(0, 400, "forward", "run")]), body)["kcal_hr"].null_count() == 401


def test_segments_and_activities_add_up():
    records, activity = level_run(seconds=400, speed=2.5)
    body = masses(activity)
    segments = segments_of("a1", [(0, 200, "forward", "run"), (200, 400, "backward", "run")])
    kcal = record_energy(records, segments, body)
    per_segment = segment_energy(kcal, segments)
    assert per_segment["kcal_net"].to_list() == pytest.approx([30.1147, 40.6549], rel=1e-4)
    assert per_segment["kcal_gross"].sum() == pytest.approx(kcal["kcal_gross"].sum())
    version = per_segment["model_version"][0]
    assert version.startswith(DetectionConfig().model_version + "+") and version.endswith(CONFIG.model_version)
    assert not per_segment["energy_low_confidence"].any()
    totals = activity_energy(kcal, body)
    assert totals.schema == ACTIVITY_ENERGY
    row = totals.row(0, named=True)
    assert row["kcal_net"] == pytest.approx(per_segment["kcal_net"].sum())
    assert row["kcal_backward"] == pytest.approx(per_segment["kcal_net"][1])
    assert row["backward_distance_m"] == pytest.approx(500.0)
    assert (row["mass_kg"], row["mass_source"], row["model_version"]) == (70.0, "profile", version)


def test_level_running_net_cost_is_within_half_to_two_and_a_half_kcal_per_kg_per_km():
    for speed in (2.0, 3.0, 4.0):
        records, activity = level_run(seconds=600, speed=speed)
        kcal = record_energy(records, segments_of("a1", [(0, 600, "forward", "run")]), masses(activity))
        per_kg_km = activity_energy(kcal, masses(activity))["kcal_net_per_kg_km"][0]
        assert 0.5 <= per_kg_km <= 2.5


def test_backward_walking_energy_is_flagged_low_confidence():
    records, activity = level_run(seconds=400, speed=1.4)
    segments = segments_of("a1", [(0, 400, "backward", "walk")])
    per_segment = segment_energy(record_energy(records, segments, masses(activity)), segments)
    assert per_segment["energy_low_confidence"].to_list() == [True]


# -- mass as of the activity -----------------------------------------------------------------


def test_the_latest_measurement_before_the_run_wins_then_the_profile_then_the_default():
    activities = conform(
        pl.DataFrame(
            [
                {"activity_id": "with-scale", "athlete_id": "ana", "start_ts": START},
                {"activity_id": "before-any-scale", "athlete_id": "ana", "start_ts": START - timedelta(days=30)},
                {"activity_id": "stranger", "athlete_id": "bob", "start_ts": START},
            ]
        ),
        ACTIVITIES,
    )
    scale = conform(
        pl.DataFrame(
            [
                {"athlete_id": "ana", "ts": START - timedelta(days=10), "weight_kg": 61.0},
                {"athlete_id": "ana", "ts": START - timedelta(days=2), "weight_kg": 60.5},  # latest before: wins
                {"athlete_id": "ana", "ts": START + timedelta(hours=1), "weight_kg": 59.0},  # after the run
                {"athlete_id": "bob", "ts": START - timedelta(days=1), "weight_kg": None},  # no weight
            ]
        ),
        BODY_MEASUREMENTS,
    )
    profiles = pl.DataFrame({"athlete_id": ["ana"], "weight_kg": [63.0], "sex": ["female"], "birth_year": [1990]})
    body = as_of_mass(activities, scale, profiles).sort("activity_id")
    rows = {r["activity_id"]: r for r in body.iter_rows(named=True)}
    assert (rows["with-scale"]["mass_kg"], rows["with-scale"]["mass_source"]) == (60.5, "measurement")
    assert rows["with-scale"]["measured_at"] == START - timedelta(days=2)
    assert (rows["before-any-scale"]["mass_kg"], rows["before-any-scale"]["mass_source"]) == (63.0, "profile")
    assert (rows["stranger"]["mass_kg"], rows["stranger"]["mass_source"]) == (CONFIG.default_mass_kg, "default")
    assert rows["with-scale"]["age_years"] == 34.0
    assert rows["with-scale"]["max_hr_bpm"] == pytest.approx(208 - 0.7 * 34)


def test_a_measurement_at_the_start_counts_and_old_ones_can_be_ignored():
    activities = conform(pl.DataFrame([{"activity_id": "a", "athlete_id": "ana", "start_ts": START}]), ACTIVITIES)
    at_start = conform(pl.DataFrame([{"athlete_id": "ana", "ts": START, "weight_kg": 58.0}]), BODY_MEASUREMENTS)
    assert as_of_mass(activities, at_start)["mass_kg"][0] == 58.0
    old = conform(
        pl.DataFrame([{"athlete_id": "ana", "ts": START - timedelta(days=400), "weight_kg": 58.0}]), BODY_MEASUREMENTS
    )
    fresh_only = EnergyConfig(mass_max_age_days=90)
    assert as_of_mass(activities, old, None, fresh_only)["mass_source"][0] == "default"


def test_implausible_values_are_reported_for_asset_checks():
    records, activity = level_run(seconds=400, speed=2.5)
    body = masses(activity)
    totals = activity_energy(record_energy(records, segments_of("a1", [(0, 400, "forward", "run")]), body), body)
    assert implausible_energy(totals).is_empty()
    broken = totals.with_columns(
        pl.col("kcal_net") * 4,
        pl.col("kcal_net_per_kg_km") * 4,
        (pl.col("distance_m") * 2).alias("backward_distance_m"),
    )
    assert sorted(implausible_energy(broken)["problem"]) == [
        "backward distance above 100 %",
        "net cost on level ground outside 0.5–2.5 kcal/kg/km",
    ]
