"""Activity totals against the recording device's own session summary (issue 16), on real corpus
files and mutations of them (`tests/fit_mutations.py`): what a user reads from `activities`,
`records`, `activity_energy` and `import_ledger` after importing them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dagster as dg
import fitparse
import pytest

from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA, settings_for
from tests.fit_mutations import rewrite_fit

FITS = CORPORA / "fit" / "python-fitparse"
RECORD, SESSION = 20, 18  # FIT message numbers
TWO_YEARS_S = 2 * 365 * 86_400


@cache
def device_messages(path: Path) -> dict[str, list[dict]]:
    """The file's messages by name, in file order, as fitparse (the reference) reads them; each file
    is read once per test session (a large one takes seconds)."""
    messages: dict[str, list[dict]] = {}
    for message in fitparse.FitFile(str(path)).get_messages():
        fields = {f.name: f.value for f in reversed(message.fields)}  # the first of a repeated name wins
        messages.setdefault(message.name, []).append(fields)
    return messages


def device_session(path: Path, index: int = 0) -> dict:
    """The file's session `index` as fitparse reads it."""
    return device_messages(path)["session"][index]


def records_where(path: Path) -> list[int]:
    """Indexes of the record messages of a FIT file, in file order (for mutations by position)."""
    return list(range(len(device_messages(path)["record"])))


def edit_records(edit):
    """A mutation changing the n-th record message with `edit(n, fields)` (None drops it)."""
    seen = {"n": -1}

    def mutate(number: int, fields: dict) -> dict | None:
        if number != RECORD:
            return fields
        seen["n"] += 1
        return edit(seen["n"], fields)

    return mutate


def without_sport(number: int, fields: dict) -> dict:
    """No sport in sessions, laps and sport messages, no maker in file_id and device_info."""
    drop = (
        {"sport", "sub_sport"}
        if number in (SESSION, 19, 12)
        else {"manufacturer", "product", "garmin_product"}
        if number in (0, 23)
        else set()
    )
    return {k: v for k, v in fields.items() if k not in drop}


@dataclass
class Imported:
    warehouse: Warehouse
    files: dict[str, Path]

    def activity(self, name: str, session: int = 0) -> dict:
        rows = self.warehouse.query(
            "SELECT a.*, l.notes FROM activities a JOIN import_ledger l ON l.sha256 = a.source_sha256 "
            "WHERE l.path = ? AND a.session = ?",
            [str(self.files[name]), session],
        ).to_dicts()
        assert len(rows) == 1, (name, rows)
        return rows[0]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    if not CORPORA.exists():
        pytest.skip(f"corpora not found at {CORPORA}")
    root = tmp_path_factory.mktemp("device-totals")
    folder = root / "files"
    folder.mkdir()
    edge500, fenix_run = FITS / "garmin-edge-500-activity.fit", FITS / "activity-small-fenix2-run.fit"
    last = len(records_where(edge500)) - 1
    files = {
        # class 1: the last 14 samples two years ahead, five reset to the device epoch, one a second back
        "clock": rewrite_fit(
            edge500,
            folder / "clock.fit",
            edit_records(
                lambda n, f: (
                    {
                        **f,
                        "timestamp": f["timestamp"] + TWO_YEARS_S
                        if n > last - 14
                        else (n if 3000 <= n < 3005 else f["timestamp"]),
                    }
                    if n > last - 14 or 3000 <= n < 3005
                    else ({**f, "timestamp": f["timestamp"] - 2} if n == 5000 else f)
                )
            ),
        ),
        # class 2: altitude glitches 1028 m → 12,136 m → 28 m on a ride, spikes on a run
        "ride_spikes": rewrite_fit(
            edge500,
            folder / "ride_spikes.fit",
            edit_records(
                lambda n, f: {**f, "altitude": 12_136.0 if n % 500 == 0 else 28.0} if n % 500 in (0, 1) and n else f
            ),
        ),
        "run": fenix_run,
        "run_spikes": rewrite_fit(
            fenix_run,
            folder / "run_spikes.fit",
            edit_records(lambda n, f: {**f, "altitude": f.get("altitude", 50.0) + 300.0} if n % 400 == 200 else f),
        ),
        # class 5: a multisport leg with samples before its session's start; a pool swim
        "multisport": FITS / "activity-large-fenxi2-multisport.fit",
        "swim": FITS / "event_timestamp.fit",
        "relative_clock": FITS / "compressed-speed-distance.fit",  # seconds since power-on, no absolute time
        "strava_android": FITS / "strava-android-app-201.10-b1218918.fit",  # speed and distance in two rows per time
        # class 10: a 14-sample run with no distance
        "tiny": FITS / "Activity.fit",
        # class 3: a ride whose file states no sport and names no device; a GPX of one point
        "ride_no_sport": rewrite_fit(FITS / "sample-activity.fit", folder / "ride_no_sport.fit", without_sport),
        "one_point": CORPORA / "gpx" / "gpxpy" / "gpx1.0_with_all_fields.gpx",
    }
    settings = settings_for(root)
    with dg.instance_for_test() as instance:
        import_paths(settings, list(files.values()), athlete="someone", instance=instance)
    return Imported(Warehouse(settings.catalog), files)


def within(value: float, expected: float, share: float, floor: float) -> bool:
    return abs(value - expected) <= max(share * abs(expected), floor)


def test_clock_glitches_are_dropped_and_counted(imported: Imported):
    device = device_session(FITS / "garmin-edge-500-activity.fit")
    clock = imported.activity("clock")
    assert within(clock["duration_s"], device["total_elapsed_time"], 0.02, 10.0)
    assert (clock["end_ts"] - clock["start_ts"]).total_seconds() < 1.02 * device["total_elapsed_time"] + 10
    assert within(clock["distance_m"], device["total_distance"], 0.02, 20.0)
    times = [m.get("timestamp") for m in device_messages(FITS / "garmin-edge-500-activity.fit")["record"]]
    untouched = {t for n, t in enumerate(times) if n < len(times) - 14 and not 3000 <= n < 3005 and n != 5000}
    assert clock["records"] == len(untouched)  # the glitches dropped, samples sharing a time merged
    assert "14 sample(s) off the activity's time line (a clock jump) dropped" in clock["notes"]
    assert "5 sample(s) dated outside 1990-01-01" in clock["notes"]  # the device epoch
    assert "1 sample(s) dated before a sample recorded ahead of them dropped" in clock["notes"]
    span = imported.warehouse.query(
        "SELECT min(ts) AS first, max(ts) AS last FROM records WHERE activity_id = ?", [clock["activity_id"]]
    ).row(0)
    assert (span[1] - span[0]).total_seconds() <= device["total_elapsed_time"] + 10


def test_climb_counts_terrain_not_noise_or_spikes(imported: Imported):
    ride = device_session(FITS / "garmin-edge-500-activity.fit")
    run = device_session(FITS / "activity-small-fenix2-run.fit")
    assert within(imported.activity("ride_spikes")["elevation_gain_m"], ride["total_ascent"], 0.25, 20.0)
    assert within(imported.activity("run")["elevation_gain_m"], run["total_ascent"], 0.25, 20.0)  # raw sum: 257 m
    spiked = imported.activity("run_spikes")["elevation_gain_m"]
    assert spiked == pytest.approx(imported.activity("run")["elevation_gain_m"], abs=1.0)


def test_energy_reads_the_same_cleaned_grade(imported: Imported):
    ids = [imported.activity(name)["activity_id"] for name in ("run", "run_spikes")]
    energy = {
        r["activity_id"]: r
        for r in imported.warehouse.query(
            "SELECT activity_id, kcal_net, mean_abs_grade FROM activity_energy WHERE activity_id IN (?, ?)", ids
        ).to_dicts()
    }
    clean, spiked = (energy[i] for i in ids)
    assert spiked["kcal_net"] == pytest.approx(clean["kcal_net"], rel=0.01)
    assert spiked["mean_abs_grade"] == pytest.approx(clean["mean_abs_grade"], abs=0.002)


def test_duration_and_moving_time_follow_the_device(imported: Imported):
    path = FITS / "activity-large-fenxi2-multisport.fit"
    for session in range(7):
        device, leg = device_session(path, session), imported.activity("multisport", session)
        assert within(leg["duration_s"], device["total_elapsed_time"], 0.02, 10.0), session
        assert leg["moving_time_s"] <= leg["duration_s"]
    swim, device = imported.activity("swim"), device_session(FITS / "event_timestamp.fit")
    assert within(swim["duration_s"], device["total_elapsed_time"], 0.02, 10.0)
    assert swim["moving_time_s"] == pytest.approx(device["total_timer_time"], rel=0.02)  # speed-based: 110 s of 76 min


def test_no_nan_where_null_is_documented(imported: Imported):
    nan = imported.warehouse.query(
        "SELECT count(*) AS n FROM activity_energy WHERE isnan(mean_abs_grade) OR isnan(kcal_net_per_kg_km)"
    ).item()
    assert nan == 0
    tiny = imported.activity("tiny")
    grade = imported.warehouse.query(
        "SELECT mean_abs_grade FROM activity_energy WHERE activity_id = ?", [tiny["activity_id"]]
    )
    assert grade.height == 1 and grade.item() is None


def test_a_ride_without_a_sport_is_typed_cycling_and_gets_no_running_kcal(imported: Imported):
    ride = imported.activity("ride_no_sport")
    assert (ride["sport"], ride["device"], ride["activity_type"]) == (None, None, "cycling")
    assert ride["activity_type_basis"].startswith("median moving speed")
    kcal = imported.warehouse.query("SELECT kcal_net FROM activity_energy WHERE activity_id = ?", [ride["activity_id"]])
    assert kcal.height == 1 and kcal.item() is None
    run = imported.activity("run")  # the file says running: kept, costed
    assert (run["sport"], run["activity_type"], run["activity_type_basis"]) == (
        "running",
        "running",
        "the file's sport (running)",
    )


def test_an_activity_whose_type_cannot_be_told_gets_no_kcal_and_says_why(imported: Imported):
    point = imported.activity("one_point")
    assert point["activity_type"] == "unknown"
    assert point["activity_type_basis"].startswith("unknown: no sport stated")
    kcal = imported.warehouse.query(
        "SELECT kcal_net FROM activity_energy WHERE activity_id = ?", [point["activity_id"]]
    )
    assert kcal.is_empty() or kcal.item() is None


def test_two_rows_with_one_timestamp_are_one_sample(imported: Imported):
    run = imported.activity("strava_android")
    assert "ts: 237 sample(s) sharing a timestamp with an earlier one merged into it" in run["notes"]
    samples = imported.warehouse.query(
        "SELECT count(*) AS n, count(DISTINCT ts) AS times, count(speed_mps) AS speeds, count(distance_m) AS distances "
        "FROM records WHERE activity_id = ?",
        [run["activity_id"]],
    ).row(0, named=True)
    assert samples == {"n": 235, "times": 235, "speeds": 235, "distances": 235}
    assert run["distance_m"] == pytest.approx(928.25, abs=1.0) and run["records"] == 235


def test_a_device_relative_clock_is_placed_by_the_activitys_local_time(imported: Imported):
    run, device = imported.activity("relative_clock"), device_session(FITS / "compressed-speed-distance.fit")
    assert str(run["local_day"]) == "2012-02-13" and run["utc_offset_source"] == "device_local_clock"
    assert "device-relative times placed by the activity's local time" in run["notes"]
    assert within(run["duration_s"], device["total_elapsed_time"], 0.02, 10.0)
    assert within(run["distance_m"], device["total_distance"], 0.02, 20.0)
