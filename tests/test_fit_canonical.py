"""FIT messages → canonical frames on hand-built messages: the cases real files rarely show."""

from datetime import datetime, timedelta

import polars as pl

from retrostride.connectors.fit_canonical import to_canonical

T0 = datetime(2024, 3, 1, 7, 0, 0)


def _records(seconds: range, **columns) -> pl.DataFrame:
    return pl.DataFrame({"timestamp": [T0 + timedelta(seconds=s) for s in seconds], **columns})


def _canonical(**messages: pl.DataFrame):
    return to_canonical({name: m.to_arrow() for name, m in messages.items()}, decoder="test", decoder_version="0")


def test_a_file_without_sessions_is_one_activity_spanning_its_records():
    decoded = _canonical(record=_records(range(0, 600, 10), heart_rate=[120] * 60))
    [activity] = decoded.activities.iter_rows(named=True)
    assert activity["start_ts"].replace(tzinfo=None) == T0
    assert decoded.records["session"].unique().to_list() == [0]
    assert decoded.records["cadence_spm"].null_count() == 60  # no cadence recorded: null, never 0


def test_a_session_without_start_time_starts_its_elapsed_time_before_its_end():
    session = pl.DataFrame(
        {"timestamp": [T0 + timedelta(minutes=30)], "total_elapsed_time": [1800.5], "sport": ["running"]}
    )
    decoded = _canonical(session=session, record=_records(range(0, 1800, 60)))
    start = decoded.activities["start_ts"][0].replace(tzinfo=None)
    assert start == T0 - timedelta(microseconds=500_000)


def test_samples_belong_to_the_session_running_at_their_time_and_only_foot_cadence_is_steps():
    session = pl.DataFrame(
        {
            "start_time": [T0 + timedelta(minutes=20), T0],  # out of order in the file
            "timestamp": [T0 + timedelta(minutes=40), T0 + timedelta(minutes=19)],
            "sport": ["cycling", "running"],
        }
    )
    records = _records(range(-60, 2400, 60), cadence=[80] * 41, fractional_cadence=[0.5] * 41)
    decoded = _canonical(session=session, record=records)
    assert decoded.activities["sport"].to_list() == ["running", "cycling"]
    by_session = (
        decoded.records.group_by("session").agg(pl.len(), pl.col("cadence_spm").unique().first()).sort("session")
    )
    # the sample before any start goes to the first session; pedal cadence is no step rate: null
    assert by_session.rows() == [(0, 21, 161.0), (1, 20, None)]


def test_laps_take_their_workout_step_names_and_count_within_their_session():
    session = pl.DataFrame(
        {
            "start_time": [T0, T0 + timedelta(hours=1)],
            "timestamp": [T0 + timedelta(minutes=50), T0 + timedelta(hours=2)],
        }
    )
    laps = pl.DataFrame(
        {
            "start_time": [T0, T0 + timedelta(minutes=10), T0 + timedelta(hours=1)],
            "timestamp": [T0 + timedelta(minutes=10), T0 + timedelta(minutes=13), T0 + timedelta(hours=2)],
            "wkt_step_index": [0, 1, None],
        }
    )
    steps = pl.DataFrame({"message_index": [0, 1, 1], "wkt_step_name": ["Warm up", "Backward 3 min", "ignored"]})
    decoded = _canonical(session=session, lap=laps, workout_step=steps, record=_records(range(0, 60)))
    assert decoded.laps.select("session", "lap_index", "name").rows() == [
        (0, 0, "Warm up"),
        (0, 1, "Backward 3 min"),
        (1, 0, None),
    ]


def test_weight_scale_readings_without_weight_or_fat_are_dropped_and_markers_are_null():
    scale = pl.DataFrame(
        {
            "timestamp": [T0, T0 + timedelta(days=1), T0 + timedelta(days=2)],
            "weight": ["calculating", None, "71.5"],  # fitparse writes the marker as a word
            "percent_fat": [21.0, None, None],
        }
    )
    body = _canonical(weight_scale=scale).body_measurements
    assert body.select("weight_kg", "body_fat_pct").rows() == [(None, 21.0), (71.5, None)]
