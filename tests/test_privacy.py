"""Privacy zones: positions near a configured place are not served; distance and time stay."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from retrostride.assets.settings import ConfigError, load_profiles
from retrostride.warehouse.motion import haversine_m
from retrostride.warehouse.privacy import mask_positions
from retrostride.warehouse.schema import PRIVACY_ZONES
from retrostride.warehouse.store import Warehouse
from tests.conftest import copied_home
from tests.test_scoring import _rematerialise

HOME = {"lat": 52.5145, "lon": 13.3501}  # alice's generated home, where her runs start


def test_positions_inside_a_zone_become_null_and_nothing_else_changes():
    records = pl.DataFrame(
        {
            "athlete_id": ["a", "a", "a", "b"],
            "lat_deg": [52.5145, 52.5160, 52.5300, 52.5145],
            "lon_deg": [13.3501, 13.3501, 13.3501, 13.3501],
            "distance_m": [0.0, 167.0, 1720.0, 0.0],
        }
    )
    zones = pl.DataFrame(
        [{"athlete_id": "a", "lat_deg": 52.5145, "lon_deg": 13.3501, "radius_m": 200.0, "source": "profile"}],
        schema=PRIVACY_ZONES,
    )
    masked = mask_positions(records, zones)
    assert masked["lat_deg"].to_list() == [None, None, 52.53, 52.5145]  # b has no zone here
    assert masked["distance_m"].equals(records["distance_m"])


def test_an_athletes_zone_hides_their_positions_in_the_warehouse(imported_export, tmp_path: Path):
    settings = copied_home(imported_export, tmp_path)
    text = settings.athletes_file.read_text()
    settings.athletes_file.write_text(
        text.replace(
            "[athletes.alice]",
            f"[athletes.alice]\nprivacy_zones = [{{lat = {HOME['lat']}, lon = {HOME['lon']}, radius_m = 400}}]",
        )
    )
    warehouse = Warehouse(settings.catalog)
    before = warehouse.query(
        "SELECT athlete_id, count(lat_deg) AS positions, sum(distance_m) AS d FROM records GROUP BY 1 ORDER BY 1"
    )
    assert _rematerialise(settings, date(2024, 1, 1), date(2024, 2, 1)).success

    after = warehouse.query(
        "SELECT athlete_id, count(lat_deg) AS positions, sum(distance_m) AS d FROM records GROUP BY 1 ORDER BY 1"
    )
    assert ((after["d"] - before["d"]).abs() <= 1e-12 * before["d"]).all()  # distance stays (sums: row order)
    alice = dict(zip(after["athlete_id"], after["positions"]))["alice"]
    assert 0 < alice < dict(zip(before["athlete_id"], before["positions"]))["alice"]
    others = after.filter(pl.col("athlete_id") != "alice")
    assert others.drop("d").equals(before.filter(pl.col("athlete_id") != "alice").drop("d"))
    near = warehouse.query(
        "SELECT lat_deg, lon_deg FROM records WHERE athlete_id = 'alice' AND lat_deg IS NOT NULL"
    ).select(haversine_m(pl.col("lat_deg"), pl.col("lon_deg"), pl.lit(HOME["lat"]), pl.lit(HOME["lon"])).alias("m"))
    assert near["m"].min() > 400


@pytest.mark.parametrize("zone", ["{lat = 95, lon = 0}", "{lon = 13}", "'home'"])
def test_a_bad_privacy_zone_is_refused_with_where_it_is(tmp_path: Path, zone: str):
    path = tmp_path / "athletes.toml"
    path.write_text(f"[athletes.alice]\nprivacy_zones = [{zone}]\n")
    with pytest.raises(ConfigError, match="athletes.alice.privacy_zones"):
        load_profiles(path)
