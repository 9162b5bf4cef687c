"""Local time: the file's own offset, else the zone of the start position, else the athlete's zone."""

from datetime import UTC, date, datetime

import polars as pl
import pytest

from retrostride.connectors.frames import warehouse_frames
from retrostride.warehouse.schema import FILE_ACTIVITIES, FILE_RECORDS, DecodedFile, conform

BERLIN = (52.5145, 13.3501)
SYDNEY = (-33.8966, 151.2335)


def _gpx_like(start: datetime, position: tuple[float, float] | None, offset_s: int | None = None) -> DecodedFile:
    """One activity of 10 samples, like a GPX track (no UTC offset of its own unless given)."""
    ts = pl.datetime_range(start, start.replace(minute=start.minute + 1), "6s", eager=True, time_zone="UTC")[:10]
    lat, lon = position if position else (None, None)
    records = pl.DataFrame({"session": [0] * 10, "ts": ts, "lat_deg": [lat] * 10, "lon_deg": [lon] * 10})
    activities = pl.DataFrame(
        {
            "session": [0],
            "start_ts": [ts[0]],
            "utc_offset_s": [offset_s],
            "utc_offset_source": ["device_activity" if offset_s is not None else None],
        }
    )
    return DecodedFile(
        "gpx", "test", "0", activities=conform(activities, FILE_ACTIVITIES), records=conform(records, FILE_RECORDS)
    )


def _local(decoded: DecodedFile, athlete_zone: str | None) -> dict:
    activity = warehouse_frames(decoded, "ab" * 32, "alice", athlete_zone)["activities"]
    return activity.select("utc_offset_s", "utc_offset_source", "local_day", "local_start_ts").row(0, named=True)


def test_a_run_abroad_takes_the_zone_where_it_started_not_the_athletes():
    got = _local(_gpx_like(datetime(2024, 1, 10, 14, 0, tzinfo=UTC), SYDNEY), "Europe/Berlin")
    assert got["utc_offset_s"] == 11 * 3600 and got["utc_offset_source"] == "start_position"
    assert got["local_day"] == date(2024, 1, 11)


@pytest.mark.parametrize(
    ("utc", "offset_h", "local_day"),
    [
        (datetime(2024, 3, 30, 23, 30, tzinfo=UTC), 1, date(2024, 3, 31)),  # CET, just before the change
        (datetime(2024, 3, 31, 22, 30, tzinfo=UTC), 2, date(2024, 4, 1)),  # CEST, the night after
        (datetime(2024, 10, 26, 22, 30, tzinfo=UTC), 2, date(2024, 10, 27)),  # CEST, before it ends
        (datetime(2024, 10, 27, 23, 30, tzinfo=UTC), 1, date(2024, 10, 28)),  # CET again
    ],
)
def test_runs_either_side_of_a_dst_change_land_on_their_local_day(utc, offset_h, local_day):
    got = _local(_gpx_like(utc, BERLIN), None)
    assert (got["utc_offset_s"], got["local_day"]) == (offset_h * 3600, local_day)


def test_the_files_own_offset_wins_over_its_position():
    got = _local(_gpx_like(datetime(2024, 1, 10, 14, 0, tzinfo=UTC), SYDNEY, offset_s=3600), None)
    assert (got["utc_offset_s"], got["utc_offset_source"]) == (3600, "device_activity")


def test_without_positions_the_athletes_zone_then_utc():
    start = datetime(2024, 7, 1, 22, 30, tzinfo=UTC)
    assert _local(_gpx_like(start, None), "America/New_York")["utc_offset_s"] == -4 * 3600
    got = _local(_gpx_like(start, None), None)
    assert (got["utc_offset_s"], got["utc_offset_source"], got["local_day"]) == (0, "utc_assumed", date(2024, 7, 1))
