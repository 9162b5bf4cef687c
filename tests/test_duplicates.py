"""The same run from two sources (the watch's FIT, a platform's GPX) is one activity in the marts."""

import re
from pathlib import Path

import dagster as dg
import gpxpy.gpx
import pytest

from retrostride.assets.settings import ConfigError, load_duplicate_policy
from retrostride.connectors.fit import decode_fit
from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.publish import DuplicatePolicy
from retrostride.warehouse.store import Warehouse
from tests.conftest import settings_for


def _as_gpx(fit_path: Path, out: Path) -> Path:
    """The FIT run re-exported as a GPX track (positions, elevation, times only: poorer)."""
    records = decode_fit(fit_path).records.drop_nulls(["lat_deg", "lon_deg"])
    track = gpxpy.gpx.GPXTrack(name="Morning Run")
    segment = gpxpy.gpx.GPXTrackSegment()
    for row in records.select("ts", "lat_deg", "lon_deg", "altitude_m").iter_rows(named=True):
        segment.points.append(
            gpxpy.gpx.GPXTrackPoint(row["lat_deg"], row["lon_deg"], elevation=row["altitude_m"], time=row["ts"])
        )
    track.segments.append(segment)
    document = gpxpy.gpx.GPX()
    document.tracks.append(track)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document.to_xml())
    return out


@pytest.fixture(scope="module")
def one_run_two_sources(imported_export, tmp_path_factory) -> tuple[Path, Path]:
    fit = sorted((imported_export.root / "export" / "alice").rglob("*.fit"))[0]
    gpx = _as_gpx(fit, tmp_path_factory.mktemp("strava") / "alice" / "12345.gpx")
    return fit, gpx


@pytest.mark.parametrize("order", ["fit first", "gpx first"])
def test_one_run_from_two_sources_is_one_canonical_activity_in_either_order(one_run_two_sources, tmp_path, order):
    fit, gpx = one_run_two_sources
    settings = settings_for(tmp_path)
    with dg.instance_for_test() as instance:
        for path in [fit, gpx] if order == "fit first" else [gpx, fit]:
            import_paths(settings, [path], athlete="alice", instance=instance)
        import_paths(settings, [fit, gpx], athlete="alice", instance=instance)  # re-import: nothing changes
    activities = Warehouse(settings.catalog).query(
        "SELECT activity_id, source, duplicate_of FROM activities ORDER BY source"
    )
    assert activities["source"].to_list() == ["fit", "gpx"]
    fit_row, gpx_row = activities.rows(named=True)
    assert fit_row["duplicate_of"] is None and gpx_row["duplicate_of"] == fit_row["activity_id"]


def test_different_runs_close_in_time_are_not_duplicates(imported_export):
    linked = imported_export.warehouse.query("SELECT count(*) AS n FROM activities WHERE duplicate_of IS NOT NULL")
    assert linked["n"][0] == 0  # every generated activity is its own run


def test_the_configured_preference_chooses_the_canonical_copy(one_run_two_sources, tmp_path):
    fit, gpx = one_run_two_sources
    settings = settings_for(tmp_path)
    settings.config_path.parent.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text('[duplicates]\nprefer = ["gpx"]\n')  # e.g. the platform's edited track
    with dg.instance_for_test() as instance:
        import_paths(settings, [fit, gpx], athlete="alice", instance=instance)
    activities = Warehouse(settings.catalog).query(
        "SELECT activity_id, source, duplicate_of FROM activities ORDER BY source"
    )
    fit_row, gpx_row = activities.rows(named=True)
    assert gpx_row["duplicate_of"] is None and fit_row["duplicate_of"] == gpx_row["activity_id"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[duplicates]\nprefer = ["newest"]\n', "unknown entries ['newest']"),
        ('[duplicates]\nprefer = "fit"\n', "prefer must be a list"),
        ("[duplicates]\ndistance_tolerance = 2\n", "distance_tolerance in [0, 1)"),
        ("[duplicates]\nstart_window = 60\n", "unknown keys ['start_window']"),
    ],
)
def test_a_bad_duplicates_section_says_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "retrostride.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_duplicate_policy(path)


def test_without_a_duplicates_section_the_richest_copy_is_canonical(tmp_path):
    (tmp_path / "retrostride.toml").write_text("[import]\nmax_file_mb = 64\n")
    assert load_duplicate_policy(tmp_path / "retrostride.toml") == DuplicatePolicy()
    assert DuplicatePolicy().ranking.startswith("records DESC")
