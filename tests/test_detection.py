"""Backward detection on small hand-built frames (DESIGN §5): what a runner would see in segments."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retrostride.assets.transforms.detection_status import STATUSES, detection_status
from retrostride.assets.transforms.gait import fit_gait_baselines
from retrostride.assets.transforms.gait_prior import with_prior_baselines
from retrostride.assets.transforms.label_evidence import says_backward
from retrostride.assets.transforms.model_config import DetectionConfig, EnergyConfig, energy_row_version
from retrostride.assets.transforms.segments import SEGMENTS, detect_segments
from retrostride.warehouse.schema import ACTIVITIES, BASELINES, LAPS, RECORDS, conform

START = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
STEP_A, STEP_B = 0.46, 0.75  # forward step length L = a·v^b (m, m/s)
CONFIG = DetectionConfig()


def forward_step(v: float) -> float:
    return STEP_A * v**STEP_B


def run(
    pieces: list[tuple[float, float, float]],
    *,
    activity_id: str = "run-1",
    athlete_id: str = "ana",
    start: datetime = START,
    name: str | None = None,
    seed: int = 1,
    noise: float = 0.01,
    facing: list[float | None] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records and activity of a 1-Hz run heading east; a piece is (seconds, speed, ratio) where
    ratio = L / L_fwd(v) (1 forward, ~0.75 backward, 0 a stop, -1 a walk at 110 spm).
    `facing` (per piece) is the angle between facing and course, in degrees."""
    rng = random.Random(seed)
    rows, distance, t = [], 0.0, start
    for index, (seconds, speed, ratio) in enumerate(pieces):
        for _ in range(int(seconds)):
            v = speed * (1 + rng.gauss(0, noise)) if speed else 0.0
            if ratio > 0:
                cadence = 60 * v / (ratio * forward_step(v)) * (1 + rng.gauss(0, noise))
            elif ratio < 0:
                cadence = 110.0
            else:
                cadence = 0.0
            distance += v
            angle = facing[index] if facing else None
            rows.append(
                {
                    "activity_id": activity_id,
                    "athlete_id": athlete_id,
                    "ts": t,
                    "lat_deg": 45.0,
                    "lon_deg": 7.0 + distance / (111_195 * math.cos(math.radians(45.0))),
                    "altitude_m": 100.0,
                    "distance_m": distance,
                    "speed_mps": v,
                    "heart_rate_bpm": 150.0,
                    "cadence_spm": cadence,
                    "facing_deg": None if angle is None else (90.0 + angle + rng.gauss(0, 10)) % 360,
                }
            )
            t += timedelta(seconds=1)
    records = conform(pl.DataFrame(rows, infer_schema_length=None), RECORDS)
    activity = conform(
        pl.DataFrame(
            [
                {
                    "activity_id": activity_id,
                    "athlete_id": athlete_id,
                    "sport": "running",
                    "name": name,
                    "start_ts": start,
                    "end_ts": t,
                }
            ]
        ),
        ACTIVITIES,
    )
    return records, activity


def laps(rows: list[tuple[str, str | None, int, int]]) -> pl.DataFrame:
    """Laps (activity_id, name, start second, end second)."""
    return conform(
        pl.DataFrame(
            [
                {
                    "activity_id": a,
                    "lap_index": i,
                    "name": n,
                    "start_ts": START + timedelta(seconds=s),
                    "end_ts": START + timedelta(seconds=e),
                }
                for i, (a, n, s, e) in enumerate(rows)
            ]
        ),
        LAPS,
    )


NO_LAPS = conform(pl.DataFrame(), LAPS)


def baseline(athlete_id: str = "ana", low: float = 1.8, high: float = 3.6) -> pl.DataFrame:
    """A baseline row for the synthetic runner's true forward gait."""
    return pl.DataFrame(
        [
            {
                "athlete_id": athlete_id,
                "intercept": math.log(STEP_A),
                "slope": STEP_B,
                "speed_min_mps": low,
                "speed_max_mps": high,
                "runs": 10,
                "samples": 10_000,
                "residual_sd": 0.01,
                "inlier_share": 1.0,
                "r_squared": 0.99,
                "intercept_sd": 0.0,
                "basis": "own",
                "model_version": CONFIG.model_version,
            }
        ],
        schema=BASELINES,
    )


def detect(records, activity, lap_frame=NO_LAPS, baselines=None, config=CONFIG) -> pl.DataFrame:
    baselines = baseline() if baselines is None else baselines
    return detect_segments(records, activity, lap_frame, baselines, config)


def backward(segments: pl.DataFrame) -> pl.DataFrame:
    return segments.filter(pl.col("direction") == "backward")


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def assert_covers(segments: pl.DataFrame, activity: pl.DataFrame) -> None:
    """Segments tile each activity: first starts at its start, each ends where the next starts."""
    for (activity_id,), group in segments.sort("segment_index").group_by("activity_id"):
        span = activity.filter(pl.col("activity_id") == activity_id).row(0, named=True)
        assert group["start_ts"][0] == span["start_ts"]
        assert group["end_ts"][-1] == span["end_ts"]
        assert (group["start_ts"][1:] == group["end_ts"][:-1]).all()
        assert group["segment_index"].to_list() == list(range(group.height))
        assert (group["duration_s"] > 0).all()


# -- gait ------------------------------------------------------------------------------------


def test_a_clean_backward_stretch_inside_a_forward_run_is_found_with_its_boundaries():
    records, activity = run([(300, 3.0, 1.0), (120, 2.4, 0.75), (300, 3.0, 1.0)])
    segments = detect(records, activity)
    found = backward(segments)
    assert found.height == 1
    assert abs((found["start_ts"][0] - at(300)).total_seconds()) <= 5  # half a gait window
    assert abs((found["end_ts"][0] - at(420)).total_seconds()) <= 5
    assert found["evidence"][0] == "gait"
    assert found["gait"][0] == "run"
    assert 0.5 < found["confidence"][0] <= 1.0
    assert found["mean_speed_mps"][0] == pytest.approx(2.4, abs=0.15)
    assert set(segments["direction"]) == {"forward", "backward"}
    assert_covers(segments, activity)
    assert segments.schema == SEGMENTS


def test_segments_cover_the_activity_without_overlap_through_stops_and_walks():
    records, activity = run(
        [(200, 3.0, 1.0), (25, 0.0, 0.0), (90, 2.2, 0.75), (60, 1.4, -1), (200, 2.8, 1.0), (40, 0.0, 0.0)]
    )
    segments = detect(records, activity)
    assert_covers(segments, activity)
    assert segments["duration_s"].sum() == pytest.approx((activity["end_ts"][0] - START).total_seconds())
    assert segments["distance_m"].sum() == pytest.approx(records["distance_m"][-1] - records["distance_m"][0], rel=1e-6)
    walk = segments.filter(pl.col("gait") == "walk")
    assert walk.height == 1 and walk["direction"][0] != "backward"


def test_hysteresis_keeps_backward_in_the_dead_band_but_never_enters_it():
    # r 0.80 enters; 0.87 (between 0.85 and 0.90) keeps backward; 1.0 leaves.
    records, activity = run([(200, 2.8, 1.0), (60, 2.4, 0.80), (60, 2.4, 0.87), (200, 2.8, 1.0)], noise=0.0)
    found = backward(detect(records, activity))
    assert found.height == 1
    assert found["duration_s"][0] == pytest.approx(120, abs=6)
    # The same dead-band ratio after forward running never enters backward.
    records, activity = run([(200, 2.8, 1.0), (60, 2.4, 0.87), (200, 2.8, 1.0)], noise=0.0)
    assert backward(detect(records, activity)).is_empty()


def test_stretches_shorter_than_the_minimum_are_not_backward():
    records, activity = run([(200, 3.0, 1.0), (20, 2.4, 0.75), (200, 3.0, 1.0)], noise=0.0)
    assert backward(detect(records, activity)).is_empty()


def test_a_short_gap_is_merged_and_a_long_one_is_not():
    records, activity = run(
        [(200, 3.0, 1.0), (60, 2.4, 0.75), (6, 0.0, 0.0), (60, 2.4, 0.75), (200, 3.0, 1.0)], noise=0.0
    )
    found = backward(detect(records, activity))
    assert found.height == 1
    assert found["duration_s"][0] == pytest.approx(126, abs=8)
    records, activity = run(
        [(200, 3.0, 1.0), (60, 2.4, 0.75), (40, 3.0, 1.0), (60, 2.4, 0.75), (200, 3.0, 1.0)], noise=0.0
    )
    assert backward(detect(records, activity)).height == 2


def test_without_a_baseline_gait_says_unknown_never_forward_or_backward():
    records, activity = run([(300, 3.0, 1.0), (120, 2.4, 0.75), (300, 3.0, 1.0)])
    segments = detect(records, activity, baselines=pl.DataFrame(schema=BASELINES))
    assert segments["direction"].unique().to_list() == ["unknown"]
    assert segments["evidence"].unique().to_list() == ["none"]
    assert (segments["confidence"] == 0).all()
    assert_covers(segments, activity)


def test_faster_than_the_baseline_covers_is_unknown_and_slower_is_scored_at_constant_cadence():
    # Coverage 2.5–3.3 m/s (+ 0.25): fast running at 4.2 m/s says unknown.  Below 2.5 m/s the line
    # continues at constant cadence: a jog at 1.9 m/s keeping its 2.5-m/s cadence is forward, and
    # backward running at 1.9 m/s is still found.
    cadence_at_low = 60 * 2.5 / forward_step(2.5)
    jog_ratio = (60 * 1.9 / cadence_at_low) / forward_step(1.9)
    records, activity = run(
        [
            (200, 3.0, 1.0),
            (120, 1.9, 0.75),
            (200, 3.0, 1.0),
            (120, 4.2, 1.0),
            (200, 3.0, 1.0),
            (120, 1.9, jog_ratio),
            (200, 3.0, 1.0),
        ]
    )
    segments = detect(records, activity, baselines=baseline(low=2.5, high=3.3))
    found = backward(segments)
    assert found.height == 1 and abs((found["start_ts"][0] - at(200)).total_seconds()) <= 5
    fast = segments.filter(pl.col("start_ts").is_between(at(515), at(525)))
    assert fast["direction"].to_list() == ["unknown"]
    jog = segments.filter((pl.col("start_ts") <= at(900)) & (pl.col("end_ts") >= at(1000)))
    assert jog["direction"].to_list() == ["forward"]


def test_samples_outside_1_2_to_4_5_mps_are_dropped_from_gait_evidence():
    records, activity = run([(200, 3.0, 1.0), (120, 4.8, 0.75), (200, 3.0, 1.0)])
    segments = detect(records, activity, baselines=baseline(low=1.8, high=5.0))
    assert backward(segments).is_empty()


# -- labels and facing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Backward 3 min",
        "BACKWARDS",
        "retro run",
        "Reverse",
        "Rückwärts",
        "RÜCKWÄRTS",
        "ruckwarts",
        "À reculons",
        "a reculons",
        "Marcha atrás",
        "marcha atras",
        "all'indietro",
        "All’Indietro",
    ],
)
def test_label_words_match_in_any_case_and_accent(name):
    assert pl.select(says_backward(pl.lit(name), CONFIG)).item()


@pytest.mark.parametrize("name", ["Morning Run", "Retrospective jog", "backwardsness", None, "Recover"])
def test_other_names_are_not_labels(name):
    assert not pl.select(says_backward(pl.lit(name, pl.String), CONFIG)).item()


def test_accent_sensitive_labels_when_configured():
    strict = replace(CONFIG, label_accent_sensitive=True, label_case_sensitive=True)
    assert not pl.select(says_backward(pl.lit("rückwarts"), strict)).item()
    assert pl.select(says_backward(pl.lit("rückwärts"), strict)).item()
    assert not pl.select(says_backward(pl.lit("Backward"), strict)).item()


def test_a_labelled_lap_is_backward_on_label_evidence_alone():
    records, activity = run([(300, 3.0, 1.0), (120, 2.4, 1.0), (300, 3.0, 1.0)])  # gait says nothing
    lap_frame = laps([("run-1", "Warm up", 0, 300), ("run-1", "Rückwärts 2 min", 300, 420), ("run-1", None, 420, 720)])
    segments = detect(records, activity, lap_frame, baselines=pl.DataFrame(schema=BASELINES))
    found = backward(segments)
    assert found.height == 1
    assert (found["start_ts"][0], found["end_ts"][0]) == (at(300), at(420))
    assert found["evidence"][0] == "label"
    assert 0.5 < found["confidence"][0] < 1.0


def test_a_labelled_lap_with_backward_gait_says_label_and_gait():
    records, activity = run([(300, 3.0, 1.0), (120, 2.4, 0.75), (300, 3.0, 1.0)])
    lap_frame = laps([("run-1", "Run", 0, 300), ("run-1", "Backward 2 min", 300, 420), ("run-1", "Run", 420, 720)])
    found = backward(detect(records, activity, lap_frame))
    assert (found["start_ts"][0], found["end_ts"][0]) == (at(300), at(420))
    assert found["evidence"][0] == "label+gait"
    label_only = backward(detect(records, activity, lap_frame, baselines=pl.DataFrame(schema=BASELINES)))
    assert found["confidence"][0] > label_only["confidence"][0]


def test_an_activity_named_backward_lets_gait_say_where():
    records, activity = run([(300, 3.0, 1.0), (120, 2.4, 0.75), (300, 3.0, 1.0)], name="Backward intervals")
    segments = detect(records, activity)
    found = backward(segments)
    assert found.height == 1
    assert abs((found["start_ts"][0] - at(300)).total_seconds()) <= 3
    assert found["evidence"][0] == "label+gait"
    assert segments.filter(pl.col("direction") == "forward")["evidence"].unique().to_list() == ["gait"]


def test_facing_away_from_the_course_is_backward_without_any_other_evidence():
    records, activity = run([(200, 3.0, 1.0), (90, 2.4, 1.0), (200, 3.0, 1.0)], facing=[0.0, 180.0, 0.0])
    segments = detect(records, activity, baselines=pl.DataFrame(schema=BASELINES))
    found = backward(segments)
    assert found.height == 1
    assert abs((found["start_ts"][0] - at(200)).total_seconds()) <= 5
    assert abs((found["end_ts"][0] - at(290)).total_seconds()) <= 5
    assert found["evidence"][0] == "facing"
    assert set(segments.filter(pl.col("direction") == "forward")["evidence"]) == {"facing"}


def test_facing_overrules_gait():
    records, activity = run([(200, 3.0, 1.0), (90, 2.4, 0.75), (200, 3.0, 1.0)], facing=[0.0, 0.0, 0.0])
    assert backward(detect(records, activity)).is_empty()


# -- baselines -------------------------------------------------------------------------------


def history(runs: int, *, backward_s: int = 0, athlete_id: str = "ana") -> tuple[pl.DataFrame, pl.DataFrame]:
    frames = [
        run(
            [(400, 2.0, 1.0), (200, 2.4 + 0.1 * (i % 3), 1.0)]
            + ([(backward_s, 2.2, 0.75)] if backward_s else [])
            + [(500, 2.9 + 0.1 * (i % 4), 1.0), (120, 3.5, 1.0)],
            activity_id=f"h{i}",
            athlete_id=athlete_id,
            start=START + timedelta(days=i),
            seed=100 + i,
        )
        for i in range(runs)
    ]
    return pl.concat([f[0] for f in frames]), pl.concat([f[1] for f in frames])


def test_the_baseline_recovers_the_forward_gait_and_its_coverage():
    records, activities = history(6)
    fitted = fit_gait_baselines(records, activities, NO_LAPS, CONFIG)
    assert fitted.height == 1
    row = fitted.row(0, named=True)
    assert row["slope"] == pytest.approx(STEP_B, abs=0.03)
    assert math.exp(row["intercept"] + row["slope"] * math.log(2.5)) == pytest.approx(forward_step(2.5), rel=0.01)
    assert row["speed_min_mps"] <= 2.0 and row["speed_max_mps"] >= 3.5
    assert (row["runs"], row["model_version"]) == (6, CONFIG.model_version)
    assert row["r_squared"] > 0.9


def test_unlabelled_backward_running_in_the_history_does_not_bias_the_baseline():
    clean = fit_gait_baselines(*history(6), NO_LAPS, CONFIG).row(0, named=True)
    mixed = fit_gait_baselines(*history(6, backward_s=240), NO_LAPS, CONFIG).row(0, named=True)
    for v in (2.0, 2.2, 3.0):
        expected = math.exp(clean["intercept"] + clean["slope"] * math.log(v))
        assert math.exp(mixed["intercept"] + mixed["slope"] * math.log(v)) == pytest.approx(expected, rel=0.01)


def test_fewer_than_five_runs_blend_the_prior_towards_them_and_grow_surer_with_each():
    rows = [fit_gait_baselines(*history(n), NO_LAPS, CONFIG).row(0, named=True) for n in (1, 2, 4)]
    assert [r["basis"] for r in rows] == ["blended"] * 3
    assert [r["runs"] for r in rows] == [1, 2, 4]
    assert rows[0]["intercept_sd"] > rows[1]["intercept_sd"] > rows[2]["intercept_sd"] > 0
    assert all(r["slope"] == CONFIG.prior_slope for r in rows)
    for row in rows:  # the level is the runner's, not the literature's (their steps are 5 % shorter)
        fitted = math.exp(row["intercept"] + row["slope"] * math.log(2.6))
        assert fitted == pytest.approx(forward_step(2.6), rel=0.015)
    assert fit_gait_baselines(*history(5), NO_LAPS, CONFIG)["basis"].to_list() == ["own"]


# -- cold start ------------------------------------------------------------------------------


def cold(records, activities, profiles=None, lap_frame=NO_LAPS) -> pl.DataFrame:
    """Detection as the pipeline runs it for a new athlete: baselines from these runs, else the prior."""
    fitted = fit_gait_baselines(records, activities, lap_frame, CONFIG, profiles)
    return detect(records, activities, lap_frame, with_prior_baselines(fitted, activities, profiles, CONFIG))


def test_backward_running_is_found_in_a_new_athletes_first_run():
    records, activity = run([(600, 3.0, 1.0), (150, 2.4, 0.76), (600, 2.8, 1.0)])
    segments = cold(records, activity)
    found = backward(segments)
    assert found.height == 1 and found["duration_s"][0] == pytest.approx(150, abs=8)
    assert found["evidence"][0] == "gait"
    forward_s = segments.filter(pl.col("direction") == "forward")["duration_s"].sum()
    assert forward_s > 0.9 * 1200


def test_the_prior_alone_never_makes_a_short_striding_forward_runner_backward():
    # No run of their own fitted yet: steps 20 % shorter than the prior's (2.8 s.d.) say unknown, not backward.
    records, activity = run([(900, 3.0, 1.0)])
    prior_step = (CONFIG.prior_intercept + CONFIG.prior_slope * pl.col("speed_mps").log()).exp()
    records = records.with_columns((60 * pl.col("speed_mps") / (0.80 * prior_step)).alias("cadence_spm"))
    segments = detect(
        records, activity, baselines=with_prior_baselines(pl.DataFrame(schema=BASELINES), activity, None, CONFIG)
    )
    assert backward(segments).is_empty()
    assert segments["direction"].unique().to_list() == ["unknown"]


def test_a_short_striding_runners_own_first_run_makes_them_forward_not_backward():
    records, activity = run([(900, 3.0, 1.0)])
    prior_step = (CONFIG.prior_intercept + CONFIG.prior_slope * pl.col("speed_mps").log()).exp()
    records = records.with_columns((60 * pl.col("speed_mps") / (0.80 * prior_step)).alias("cadence_spm"))
    segments = cold(records, activity)
    assert backward(segments).is_empty()
    assert segments.filter(pl.col("direction") == "forward")["duration_s"].sum() > 0.9 * 900


def test_the_profile_height_scales_the_prior():
    short, tall = (pl.DataFrame({"athlete_id": ["ana"], "height_cm": [h]}) for h in (155.0, 190.0))
    activity = pl.DataFrame({"athlete_id": ["ana"]})
    low = with_prior_baselines(pl.DataFrame(schema=BASELINES), activity, short, CONFIG)["intercept"][0]
    high = with_prior_baselines(pl.DataFrame(schema=BASELINES), activity, tall, CONFIG)["intercept"][0]
    none = with_prior_baselines(pl.DataFrame(schema=BASELINES), activity, None, CONFIG).row(0, named=True)
    assert low < none["intercept"] < high
    assert high - low == pytest.approx((1 - CONFIG.prior_slope / 2) * math.log(190 / 155))
    assert (none["basis"], none["runs"], none["intercept_sd"]) == ("prior", 0, CONFIG.prior_sd)


# -- pauses ----------------------------------------------------------------------------------


def test_standing_still_after_a_backward_stretch_is_a_pause_not_backward_time():
    records, activity = run([(300, 3.0, 1.0), (120, 2.4, 0.75), (60, 0.0, 0.0), (300, 3.0, 1.0)])
    segments = detect(records, activity)
    found = backward(segments)
    assert found.height == 1 and found["duration_s"][0] == pytest.approx(120, abs=6)
    pause = segments.filter(pl.col("evidence") == "pause")
    assert (
        pause.height == 1 and pause["direction"][0] == "unknown" and pause["duration_s"][0] == pytest.approx(60, abs=6)
    )
    assert_covers(segments, activity)


def test_a_timer_stop_inside_backward_running_splits_it_and_is_not_counted():
    records, activity = run([(300, 3.0, 1.0), (240, 2.4, 0.75), (300, 3.0, 1.0)])
    stop = (pl.col("ts") > at(420)) & (pl.col("ts") < at(420 + 45))  # 45 s unrecorded, timer stopped
    records = records.with_columns(
        pl.when(pl.col("ts") >= at(420 + 45)).then(pl.col("ts") + timedelta(seconds=300)).otherwise("ts").alias("ts")
    ).filter(~stop)
    activity = activity.with_columns(pl.col("end_ts") + timedelta(seconds=300))
    found = backward(detect(records, activity))
    assert found.height == 2
    assert found["duration_s"].sum() == pytest.approx(240 - 45, abs=10)
    assert (found["end_ts"][0] - found["start_ts"][0]).total_seconds() < 130


def test_a_timer_running_past_the_last_sample_is_a_pause_at_the_end():
    records, activity = run([(300, 3.0, 1.0), (120, 2.4, 0.75)])
    activity = activity.with_columns(pl.col("end_ts") + timedelta(seconds=600))
    segments = detect(records, activity)
    assert backward(segments)["duration_s"].sum() == pytest.approx(120, abs=6)
    assert segments["evidence"][-1] == "pause" and segments["duration_s"][-1] == pytest.approx(600, abs=2)
    assert_covers(segments, activity)


def test_a_timer_running_past_the_samples_of_an_unscored_run_is_a_pause_too():
    records, activity = run([(300, 3.0, 1.0)])
    records = records.with_columns(pl.lit(None, pl.Float64).alias("cadence_spm"))  # no gait evidence
    activity = activity.with_columns(pl.col("end_ts") + timedelta(seconds=600))
    segments = detect(records, activity)
    moving = segments.filter(pl.col("evidence") != "pause")
    assert moving["direction"].to_list() == ["unknown"] and moving["duration_s"][0] == pytest.approx(300, abs=2)
    assert segments["evidence"][-1] == "pause" and segments["duration_s"][-1] == pytest.approx(600, abs=2)
    assert_covers(segments, activity)


def test_a_smart_recorded_run_is_scored_alone_as_beside_a_run_recorded_every_second():
    smart, smart_activity = run([(600, 3.0, 1.0), (180, 2.4, 0.75), (600, 3.0, 1.0)], activity_id="smart")
    smart = smart.gather_every(5)  # a sample every 5 s: its gait windows widen
    other, other_activity = run([(600, 3.0, 1.0)], activity_id="other", start=START + timedelta(days=1))
    alone = detect(smart, smart_activity)
    beside = detect(pl.concat([smart, other]), pl.concat([smart_activity, other_activity]))
    assert_frame_equal(alone, beside.filter(pl.col("activity_id") == "smart"))
    assert backward(alone)["duration_s"].sum() == pytest.approx(180, abs=20)
    forward = alone.filter(pl.col("direction") == "forward")["duration_s"].sum()
    assert forward > 0.8 * (1380 - 180)


def test_labelled_laps_and_walks_are_left_out_of_the_baseline():
    records, activities = history(5)
    lap_frame = conform(
        pl.DataFrame(
            [
                {
                    "activity_id": f"h{i}",
                    "lap_index": 0,
                    "name": "Backward",
                    "start_ts": START + timedelta(days=i),
                    "end_ts": START + timedelta(days=i, seconds=700),
                }
                for i in range(5)
            ]
        ),
        LAPS,
    )
    with_labels = fit_gait_baselines(records, activities, lap_frame, CONFIG).row(0, named=True)
    without = fit_gait_baselines(records, activities, NO_LAPS, CONFIG).row(0, named=True)
    assert with_labels["samples"] < without["samples"]
    assert with_labels["speed_min_mps"] > 2.0  # the slow first 400 s sat inside the labelled laps


def test_detection_with_a_fitted_baseline():
    records, activities = history(6)
    fitted = fit_gait_baselines(records, activities, NO_LAPS, CONFIG)
    test_records, activity = run([(300, 3.0, 1.0), (120, 2.3, 0.75), (300, 3.0, 1.0)], activity_id="t", seed=9)
    found = backward(detect(test_records, activity, baselines=fitted))
    assert found.height == 1 and abs(found["duration_s"][0] - 120) <= 6


# -- versions --------------------------------------------------------------------------------


def test_model_version_changes_with_a_threshold_and_only_where_it_matters():
    stricter = replace(CONFIG, enter_ratio=0.84)
    assert stricter.model_version != CONFIG.model_version
    assert DetectionConfig().model_version == CONFIG.model_version  # stable
    records, activity = run([(300, 3.0, 1.0), (120, 2.4, 0.75), (300, 3.0, 1.0)])
    assert set(detect(records, activity, config=stricter)["model_version"]) == {stricter.model_version}
    energy, heavier = EnergyConfig(), EnergyConfig(backward_multiplier=1.4)
    assert heavier.model_version != energy.model_version
    # Energy changes move energy rows only; detection changes move both.
    assert energy_row_version(CONFIG.model_version, heavier) != energy_row_version(CONFIG.model_version, energy)
    assert energy_row_version(stricter.model_version, energy) != energy_row_version(CONFIG.model_version, energy)
    assert replace(CONFIG).model_version == CONFIG.model_version


# -- detection status --------------------------------------------------------------------------


def test_every_activity_gets_a_detection_status_saying_why():
    pieces = [(300, 3.0, 1.0)]
    frames = {
        "scored": run(pieces, activity_id="scored"),
        "prior": run(pieces, activity_id="prior", athlete_id="new"),
        "walk": run([(300, 1.4, -1)], activity_id="walk"),
        "short": run([(20, 3.0, 1.0)], activity_id="short"),
    }
    frames["no_cadence"] = run(pieces, activity_id="no_cadence")
    frames["no_cadence"] = (
        frames["no_cadence"][0].with_columns(pl.lit(None, pl.Float64).alias("cadence_spm")),
        frames["no_cadence"][1],
    )
    frames["no_speed"] = run(pieces, activity_id="no_speed")
    frames["no_speed"] = (
        frames["no_speed"][0].with_columns(
            pl.lit(None, pl.Float64).alias("speed_mps"), pl.lit(None, pl.Float64).alias("distance_m")
        ),
        frames["no_speed"][1],
    )
    records = pl.concat([f[0] for f in frames.values()])
    activities = pl.concat(
        [f[1] for f in frames.values()]
        + [
            run(pieces, activity_id="ride")[1].with_columns(pl.lit("cycling").alias("sport")),
            run(pieces, activity_id="empty")[1],
        ]
    )
    on_foot = activities["activity_id"] != "ride"
    baselines = with_prior_baselines(baseline(), activities, None, CONFIG)
    statuses = dict(
        detection_status(activities, on_foot, records, baselines, CONFIG)
        .select("activity_id", "detection_status")
        .iter_rows()
    )
    assert statuses == {
        "scored": "scored",
        "prior": "scored_with_prior",
        "walk": "no_running_gait",
        "short": "too_short",
        "no_cadence": "no_cadence",
        "no_speed": "no_speed",
        "ride": "not_on_foot",
        "empty": "no_records",
    }
    assert set(statuses.values()) == set(STATUSES)


def test_every_detection_status_is_documented_for_sql_users():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "warehouse.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `detection_status` |"))
    assert all(f"`{status}`" in row for status in STATUSES), row
