"""The sample export: real FIT and GPX files a decoder can read, and a truth that matches them."""

from __future__ import annotations

import hashlib
import math
import struct
from datetime import UTC, date, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import fitparse
import garmin_fit_sdk
import gpxpy
import polars as pl
import pytest
from garmin_fit_sdk import CrcCalculator

from retrostride.pipelines.sample_export import ATHLETE_IDS, ExportTruth, fit_writer, generate_export
from retrostride.pipelines.sample_export.plans import plan_sessions
from retrostride.pipelines.sample_export.profiles import cast
from retrostride.pipelines.sample_export.signals import simulate

TPX = "{http://www.garmin.com/xmlschemas/TrackPointExtension/v1}"
# Three weeks across Berlin's spring-forward (31 Mar) and Sydney's fall-back (7 Apr) of 2024.
START = date(2024, 3, 25)
EDGE = timedelta(seconds=10)  # speed and cadence settle within seconds of a turn


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, ExportTruth]:
    out = tmp_path_factory.mktemp("export") / "inbox"
    return out, generate_export(out, seed=7, athletes=3, weeks=2, start=START)


@cache
def fit_messages(path: Path) -> dict[str, list[dict]]:
    """Every message of a FIT file, by name, decoded by fitparse with its CRC check."""
    messages: dict[str, list[dict]] = {}
    for message in fitparse.FitFile(str(path), check_crc=True).get_messages():
        messages.setdefault(message.name, []).append(message.get_values())
    return messages


def activities(truth: ExportTruth, fmt: str) -> list[dict]:
    return truth.activities.filter(pl.col("format") == fmt).to_dicts()


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    first = generate_export(tmp_path / "a" / "inbox", seed=3, athletes=1, weeks=1)
    again = generate_export(tmp_path / "b" / "inbox", seed=3, athletes=1, weeks=1)
    other = generate_export(tmp_path / "c" / "inbox", seed=4, athletes=1, weeks=1)

    assert file_hashes(tmp_path / "a" / "inbox") == file_hashes(tmp_path / "b" / "inbox")
    assert first.activities.equals(again.activities)
    assert first.backward_intervals.equals(again.backward_intervals)
    assert first.weights.equals(again.weights)
    assert set(file_hashes(tmp_path / "a" / "inbox").values()).isdisjoint(
        file_hashes(tmp_path / "c" / "inbox").values()
    )
    assert not first.activities.equals(other.activities)


def test_layout_is_one_folder_per_athlete_and_the_truth_lives_beside_it(export):
    out, truth = export
    assert sorted(p.name for p in out.iterdir()) == list(ATHLETE_IDS[:3])
    assert {p.suffix for p in out.rglob("*") if p.is_file()} == {".fit", ".gpx"}
    truth_dir = out.with_name("inbox.truth")
    assert {p.name for p in truth_dir.iterdir()} == {
        "activities.parquet",
        "backward_intervals.parquet",
        "weights.parquet",
        "weekly_distance.parquet",
        "athletes.toml",
    }
    listed = set(truth.activities["file"]) | set(truth.weights["file"])
    assert listed == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    shares = truth.activities["format"].value_counts(normalize=True).sort("format")
    assert 0.1 <= shares.filter(pl.col("format") == "gpx")["proportion"][0] <= 0.35


def test_truth_reloads_from_its_folder(export):
    out, truth = export
    loaded = ExportTruth.load(out.with_name("inbox.truth"))
    for name in ("activities", "backward_intervals", "weights", "weekly_distance", "athletes"):
        assert getattr(loaded, name).equals(getattr(truth, name)), name
    alice = loaded.athletes.filter(pl.col("athlete_id") == "alice").to_dicts()[0]
    assert alice["sex"] == "female" and alice["timezone"] == "Europe/Berlin"
    assert set(loaded.athletes["timezone"]) == {"Europe/Berlin", "America/New_York", "Australia/Sydney"}


def test_truth_inside_the_export_is_refused(tmp_path):
    with pytest.raises(ValueError, match="inside out_dir"):
        generate_export(tmp_path / "inbox", athletes=1, weeks=1, truth_dir=tmp_path / "inbox" / "truth")


def test_every_fit_activity_decodes_with_its_records_positions_and_cadence(export):
    out, truth = export
    for activity in activities(truth, "fit"):
        messages = fit_messages(out / activity["file"])  # fitparse checks the CRC
        records = messages["record"]
        assert len(records) == activity["records"]
        assert messages["file_id"][0]["type"] == "activity"
        assert messages["session"][0]["sport"] == activity["sport"]
        assert messages["session"][0]["total_distance"] == pytest.approx(activity["distance_m"], abs=0.01)
        assert records[-1]["distance"] == pytest.approx(activity["distance_m"], abs=0.01)
        assert records[0]["timestamp"].replace(tzinfo=UTC) == activity["start_ts"]
        home = truth.athletes.filter(pl.col("athlete_id") == activity["athlete_id"]).to_dicts()[0]
        for record in records[:: max(1, len(records) // 50)]:
            assert isinstance(record["position_lat"], int) and abs(record["position_lat"]) < 2**31
            assert record["position_lat"] * 180 / 2**31 == pytest.approx(home["home_lat"], abs=0.1)
            assert record["position_long"] * 180 / 2**31 == pytest.approx(home["home_lon"], abs=0.1)
            assert record["heart_rate"] is not None
            assert record.get("enhanced_speed", record.get("speed")) is not None
        with_cadence = [r for r in records if r.get("cadence") is not None]
        assert len(with_cadence) > 0.9 * len(records)
        assert all("fractional_cadence" in r for r in with_cadence)


def test_fit_crcs_match_the_sdk_calculation(export):
    out, truth = export
    for activity in activities(truth, "fit")[:3]:
        data = (out / activity["file"]).read_bytes()
        header_size, data_size = data[0], struct.unpack_from("<I", data, 4)[0]
        assert header_size == 14 and len(data) == header_size + data_size + 2
        assert struct.unpack_from("<H", data, 12)[0] == CrcCalculator.calculate_crc(data, 0, 12)
        assert struct.unpack_from("<H", data, len(data) - 2)[0] == CrcCalculator.calculate_crc(data, 0, len(data) - 2)


def test_local_timestamp_carries_the_athletes_zone_offset_on_that_date(export):
    out, truth = export
    offsets: dict[str, set[int]] = {}
    for activity in activities(truth, "fit"):
        zone = ZoneInfo(truth.athletes.filter(pl.col("athlete_id") == activity["athlete_id"])["timezone"][0])
        message = fit_messages(out / activity["file"])["activity"][0]
        end = message["timestamp"].replace(tzinfo=UTC)
        offset = (message["local_timestamp"] - message["timestamp"]).total_seconds()
        assert offset == end.astimezone(zone).utcoffset().total_seconds()
        assert activity["utc_offset_s"] == activity["start_ts"].astimezone(zone).utcoffset().total_seconds()
        assert activity["local_start_ts"] == activity["start_ts"].astimezone(zone).replace(tzinfo=None)
        offsets.setdefault(activity["athlete_id"], set()).add(activity["utc_offset_s"])
    assert offsets["alice"] == {3600, 7200}  # Berlin springs forward on 31 March
    assert offsets["chen"] == {39600, 36000}  # Sydney falls back on 7 April
    # Early Sydney runs start on the previous UTC day.
    chen = truth.activities.filter(pl.col("athlete_id") == "chen")
    assert (chen["local_start_ts"].dt.date() != chen["start_ts"].dt.date()).all()


def test_labelled_fit_runs_name_backward_steps_and_their_laps_point_at_them(export):
    out, truth = export
    labelled = [a for a in activities(truth, "fit") if a["labelled"]]
    unlabelled = [a for a in activities(truth, "fit") if not a["labelled"]]
    assert labelled and truth.activities.filter(pl.col("has_backward") & ~pl.col("labelled")).height
    for activity in labelled:
        messages = fit_messages(out / activity["file"])
        steps = {s["message_index"]: s["wkt_step_name"] for s in messages["workout_step"]}
        assert any("Backward" in name for name in steps.values())
        backward_laps = [lap for lap in messages["lap"] if "Backward" in steps[lap["wkt_step_index"]]]
        intervals = truth.backward_intervals.filter(pl.col("file") == activity["file"]).sort("start_ts")
        assert [lap["start_time"].replace(tzinfo=UTC) for lap in backward_laps] == intervals["start_ts"].to_list()
        assert [lap["timestamp"].replace(tzinfo=UTC) for lap in backward_laps] == intervals["end_ts"].to_list()
        assert 3 <= len(backward_laps) <= 6
    for activity in unlabelled:
        assert "workout_step" not in fit_messages(out / activity["file"])


def test_backward_running_has_short_steps_for_its_speed(export):
    """DESIGN §5: r = L / L_fwd(v) ≈ 0.6–0.78 backward, ≈ 1 forward."""
    out, truth = export
    alice = truth.athletes.filter(pl.col("athlete_id") == "alice").to_dicts()[0]
    intervals = truth.backward_intervals.filter(pl.col("athlete_id") == "alice")
    ratios: dict[bool, list[float]] = {True: [], False: []}
    for activity in (a for a in activities(truth, "fit") if a["athlete_id"] == "alice" and a["has_backward"]):
        spans = intervals.filter(pl.col("file") == activity["file"]).select("start_ts", "end_ts").rows()
        for record in fit_messages(out / activity["file"])["record"]:
            speed, strides = record.get("enhanced_speed"), record.get("cadence")
            if not speed or not strides or not 1.8 <= speed <= 2.6:
                continue
            ts = record["timestamp"].replace(tzinfo=UTC)
            backward = any(start + EDGE <= ts < end - EDGE for start, end in spans)
            steps_per_min = 2 * (strides + record["fractional_cadence"])
            ratios[backward].append(60 * speed / steps_per_min / (alice["step_a"] * speed ** alice["step_b"]))
    median = {k: sorted(v)[len(v) // 2] for k, v in ratios.items()}
    assert 0.6 <= median[True] <= 0.78
    assert 0.9 <= median[False] <= 1.1


def test_gpx_tracks_carry_heart_rate_and_cadence_extensions(export):
    out, truth = export
    gpx_activities = activities(truth, "gpx")
    assert gpx_activities
    for activity in gpx_activities:
        gpx = gpxpy.parse((out / activity["file"]).read_text(encoding="utf-8"))
        (track,) = gpx.tracks
        assert (track.name == "Backward intervals") == activity["labelled"]
        points = track.segments[0].points
        assert len(points) == activity["records"]
        assert points[0].time == activity["start_ts"]
        assert gpx.nsmap["gpxtpx"] == TPX.strip("{}")
        values = [{child.tag: child.text for child in p.extensions[0]} for p in points]
        assert all(TPX + "hr" in v for v in values)
        assert sum(TPX + "cad" in v for v in values) > 0.9 * len(points)
        length = sum(_haversine(a, b) for a, b in zip(points, points[1:]))
        assert length == pytest.approx(activity["distance_m"], rel=1e-9)


def _haversine(a, b) -> float:
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin(math.radians(b.longitude - a.longitude) / 2) ** 2
    )
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))


def test_walks_stay_below_running_cadence(export):
    out, truth = export
    walks = [a for a in activities(truth, "fit") if a["sport"] == "walking"]
    for activity in walks:
        cadences = [
            2 * (r["cadence"] + r["fractional_cadence"])
            for r in fit_messages(out / activity["file"])["record"]
            if r.get("cadence") and r.get("enhanced_speed", r.get("speed", 0)) > 1.2
        ]
        assert sorted(cadences)[len(cadences) // 2] < 140


def test_weight_files_hold_weight_scale_readings_matching_the_truth(export):
    out, truth = export
    assert truth.weights.height >= 3
    for row in truth.weights.to_dicts():
        messages = fit_messages(out / row["file"])
        assert messages["file_id"][0]["type"] == "weight"
        (reading,) = messages["weight_scale"]
        assert reading["weight"] == pytest.approx(row["weight_kg"])
        assert reading["percent_fat"] == pytest.approx(row["body_fat_pct"])
        assert reading["timestamp"].replace(tzinfo=UTC) == row["ts"]
        for field in ("percent_hydration", "muscle_mass", "bone_mass"):
            assert reading[field] > 0


def test_weekly_distance_is_the_sum_of_the_activities(export):
    _, truth = export
    expected = (
        truth.activities.with_columns(
            week_start=pl.col("local_start_ts").dt.date() - pl.duration(days=pl.col("local_start_ts").dt.weekday() - 1)
        )
        .group_by("athlete_id", "week_start")
        .agg(distance_km=pl.col("distance_m").sum() / 1000, sessions=pl.len())
        .sort("athlete_id", "week_start")
    )
    got = truth.weekly_distance.sort("athlete_id", "week_start")
    assert got["week_start"].to_list() == expected["week_start"].to_list()
    assert got["distance_km"].to_list() == pytest.approx(expected["distance_km"].to_list())
    assert got["sessions"].to_list() == expected["sessions"].to_list()
    assert (got["week_start"].dt.weekday() == 1).all()


def test_the_caching_encoder_writes_exactly_what_the_sdk_encoder_writes(tmp_path, monkeypatch):
    athlete = cast(1, seed=7)[0]
    plan = plan_sessions(athlete, 7, 1, date(2024, 1, 1))[0]
    samples = simulate(plan, athlete, 7, sample_interval_s=1).head(400)
    fit_writer.write_activity(tmp_path / "fast.fit", plan, athlete, samples, 1)
    monkeypatch.setattr(fit_writer, "CachingEncoder", garmin_fit_sdk.Encoder)
    fit_writer.write_activity(tmp_path / "stock.fit", plan, athlete, samples, 1)
    assert (tmp_path / "fast.fit").read_bytes() == (tmp_path / "stock.fit").read_bytes()
    data = bytes(range(256)) * 40
    assert fit_writer.fit_crc(data) == CrcCalculator.calculate_crc(data, 0, len(data))


def test_auto_pause_leaves_gaps_with_timer_events(export):
    out, truth = export
    paused = truth.activities.filter(
        (pl.col("format") == "fit") & (pl.col("athlete_id") == "bruno") & (pl.col("timer_s") < pl.col("duration_s"))
    )
    assert paused.height
    for activity in paused.to_dicts():
        messages = fit_messages(out / activity["file"])
        auto = [e for e in messages["event"] if e.get("timer_trigger") == "auto"]
        assert auto and len(auto) % 2 == 0
        assert messages["session"][0]["total_timer_time"] == pytest.approx(activity["timer_s"])
        assert messages["session"][0]["total_elapsed_time"] == pytest.approx(activity["duration_s"])
