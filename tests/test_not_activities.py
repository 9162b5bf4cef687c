"""Files that hold no activity get their own ledger outcome and say what they are (issue 16, class 6);
a failed file keeps the format it was recognised as (class 10)."""

from __future__ import annotations

import re

import pytest

from retrostride.pipelines.runs import import_paths
from tests.conftest import CORPORA

FILES = {
    "fit/python-fitparse/Settings.fit": "settings file: no activity",
    "fit/python-fitparse/WorkoutIndividualSteps.fit": "workout file: no activity",
    "fit/python-fitparse/MonitoringFile.fit": "monitoring file: no activity",
    "gpx/gpxpy/route.gpx": "no samples, sessions or weighings: no activity in this GPX file",
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    import dagster as dg

    from retrostride.warehouse.store import Warehouse
    from tests.conftest import settings_for

    if not CORPORA.exists():
        pytest.skip(f"corpora not found at {CORPORA}")
    home = tmp_path_factory.mktemp("not-activities")
    settings = settings_for(home)
    timeless = home / "timeless.gpx"  # the corpus route with the times of its one timed track removed
    text = (CORPORA / "gpx/gpxpy/cerknicko-without-times.gpx").read_text()
    head, tracks = text.split("<trk>", 1)
    timeless.write_text(head + "<trk>" + re.sub(r"<time>[^<]*</time>", "", tracks))
    paths = [timeless] + [
        CORPORA / p
        for p in [
            *FILES,
            "gpx/gpxpy/cerknicko-without-times.gpx",
            "fit/python-fitparse/activity-filecrc.fit",
            "fit/python-fitparse/WeightScaleSingleUser.fit",
        ]
    ]
    with dg.instance_for_test() as instance:
        import_paths(settings, paths, athlete="someone", instance=instance)
    rows = Warehouse(settings.catalog).query("SELECT * FROM import_ledger").to_dicts()
    return {row["path"].split("corpora/", 1)[1] if "corpora/" in row["path"] else "timeless.gpx": row for row in rows}


def test_files_without_an_activity_say_what_they_are(ledger):
    for path, reason in FILES.items():
        assert (ledger[path]["status"], ledger[path]["reason"]) == ("no_activity", reason), path
        assert ledger[path]["activities"] == 0


def test_a_track_without_any_time_is_a_route(ledger):
    row = ledger["timeless.gpx"]
    assert (row["status"], row["reason"], row["activities"]) == (
        "no_activity",
        "route without timestamps: not an activity",
        0,
    )


def test_timeless_tracks_beside_a_timed_one_are_named_routes(ledger):
    row = ledger["gpx/gpxpy/cerknicko-without-times.gpx"]  # seven tracks, six of them without times
    assert row["status"] == "ok" and "6 route(s) without timestamps: not activities" in row["notes"]


def test_a_weighing_file_is_imported(ledger):
    row = ledger["fit/python-fitparse/WeightScaleSingleUser.fit"]
    assert (row["status"], row["body_measurements"]) == ("ok", 2)


def test_a_failed_file_keeps_its_recognised_format(ledger):
    row = ledger["fit/python-fitparse/activity-filecrc.fit"]
    assert (row["status"], row["format"]) == ("failed", "fit")
    assert row["reason"].startswith("FIT CRC mismatch")
