"""One source of distance per session (issue 16, class 5): a sparse device distance that spans the
session is the distance, never mixed with distance from positions (a Suunto run whose device distance
was mixed with a derived one came out 6 % long); one that stops part-way is replaced by the track.
Fixtures are the corpus TCX run with its trackpoints' DistanceMeters scaled by 0.94 (a device whose
own distance, from a foot pod or fused sensors, differs from its GPS track) and then thinned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retrostride.connectors.frames import warehouse_frames
from retrostride.connectors.tcx import decode_tcx
from tests.conftest import CORPORA

RUN = CORPORA / "tcx" / "python-tcxparser" / "test.tcx"
PADDLE = CORPORA / "tcx" / "python-tcxparser" / "sup_activity_1.tcx"  # trackpoints with a Speed extension
TRACKPOINT = re.compile(r"<Trackpoint>.*?</Trackpoint>", re.S)
POSITION = re.compile(r"\s*<Position>.*?</Position>", re.S)
DISTANCE = re.compile(r"\s*<DistanceMeters>[^<]*</DistanceMeters>")
DEVICE_SCALE = 0.94


def _distance_m(path: Path) -> float:
    """The activity's distance as the warehouse gets it."""
    [distance] = warehouse_frames(decode_tcx(path), "0" * 64, "alice", None)["activities"]["distance_m"].to_list()
    return distance


def _mutated(tmp_path: Path, name: str, keep, source: Path = RUN, positions: bool = True) -> Path:
    """A corpus file with DistanceMeters kept only on the trackpoints `keep(index, count)` accepts (and
    without positions unless `positions`)."""
    text = source.read_text(encoding="utf-8")
    if not positions:
        text = POSITION.sub("", text)
    points = TRACKPOINT.findall(text)
    kept = iter([_scaled(p) if keep(i, len(points)) else DISTANCE.sub("", p) for i, p in enumerate(points)])
    path = tmp_path / name
    path.write_text(TRACKPOINT.sub(lambda _: next(kept), text), encoding="utf-8")
    return path


def _scaled(point: str) -> str:
    return re.sub(
        r"<DistanceMeters>([^<]*)</DistanceMeters>",
        lambda m: f"<DistanceMeters>{float(m.group(1)) * DEVICE_SCALE:.2f}</DistanceMeters>",
        point,
    )


@pytest.fixture
def references(tmp_path):
    """(the device's distance, the distance along the track's positions) of the run."""
    device = _distance_m(_mutated(tmp_path, "dense.tcx", lambda i, n: True))
    return device, _distance_m(_mutated(tmp_path, "no-distance.tcx", lambda i, n: False))


def test_a_device_distance_that_stops_half_way_is_replaced_by_the_track_not_added_to_it(tmp_path, references):
    device, track = references
    assert track / device == pytest.approx(1 / DEVICE_SCALE, rel=0.01)  # the two sources differ
    half = _mutated(tmp_path, "half.tcx", lambda i, n: i < n // 2)
    assert _distance_m(half) == pytest.approx(track)


def test_a_sparse_device_distance_that_spans_the_session_is_its_distance(tmp_path, references):
    device, track = references
    assert track / device == pytest.approx(1 / DEVICE_SCALE, rel=0.01)
    every_tenth = _mutated(tmp_path, "sparse.tcx", lambda i, n: i % 10 == 0 or i == n - 1)
    assert _distance_m(every_tenth) == pytest.approx(device, rel=0.01)  # to its last sample with a distance


def test_without_positions_a_device_distance_that_stops_half_way_gives_way_to_speed_times_time(tmp_path):
    half = _mutated(tmp_path, "half.tcx", lambda i, n: i < n // 2, PADDLE, positions=False)
    speed_only = _mutated(tmp_path, "speed.tcx", lambda i, n: False, PADDLE, positions=False)
    assert _distance_m(half) == pytest.approx(_distance_m(speed_only))
    assert _distance_m(half) > 0.75 * _distance_m(PADDLE)  # the whole session, not the half the device measured
