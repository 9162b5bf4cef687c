"""Facing evidence from a real FIT file: an app's compass heading (a developer field) becomes `facing_deg`.

The FIT profile has no body-facing field; a Connect IQ app can record the watch's magnetometer
heading as a developer field.  The file here is written with the FIT SDK's encoder: a run heading
east, with 90 s in the middle facing west (backward), and the same cadence throughout, so only facing
can tell.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from garmin_fit_sdk import Encoder, Profile

from benchmarks.evaluation import load_files
from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.assets.transforms.segments import detect_segments
from retrostride.connectors.fit import decode_fit
from retrostride.connectors.fit_columnar import decode_fit_columnar
from retrostride.pipelines.sample_export.fit_writer import SEMICIRCLES_PER_DEG, fit_time
from retrostride.warehouse.schema import BASELINES

MESG = Profile["mesg_num"]
START = datetime(2025, 6, 1, 7, 0, tzinfo=UTC)
FLOAT32 = 0x88  # fit_base_type float32
BACKWARD = range(300, 390)


def write_run_with_compass(path: Path, field_name: str = "compass_heading") -> None:
    app = {"developer_data_index": 0, "application_id": list(range(16)), "application_version": 1}
    description = {
        "developer_data_index": 0,
        "field_definition_number": 0,
        "fit_base_type_id": FLOAT32,
        "field_name": field_name,
        "units": "degrees",
    }
    encoder = Encoder(field_descriptions={0: {"developer_data_id_mesg": app, "field_description_mesg": description}})
    base = fit_time(START)
    encoder.on_mesg(
        MESG["FILE_ID"],
        {"type": "activity", "manufacturer": "development", "product": 1, "serial_number": 1, "time_created": base},
    )
    encoder.on_mesg(MESG["DEVELOPER_DATA_ID"], app)
    encoder.on_mesg(MESG["FIELD_DESCRIPTION"], description)
    distance = 0.0
    for t in range(700):
        speed = 2.4 if t in BACKWARD else 3.0
        distance += speed
        lon = 7.0 + distance / (111_195 * math.cos(math.radians(45.0)))
        heading = 270.0 if t in BACKWARD else 90.0  # course is east (90°) throughout
        encoder.on_mesg(
            MESG["RECORD"],
            {
                "timestamp": base + t,
                "position_lat": round(45.0 * SEMICIRCLES_PER_DEG),
                "position_long": round(lon * SEMICIRCLES_PER_DEG),
                "distance": distance,
                "enhanced_speed": speed,
                "cadence": 84,
                "developer_fields": {0: heading + (t % 7) - 3},
            },
        )
    encoder.on_mesg(
        MESG["SESSION"],
        {
            "message_index": 0,
            "timestamp": base + 699,
            "start_time": base,
            "sport": "running",
            "total_elapsed_time": 699.0,
            "total_timer_time": 699.0,
            "total_distance": distance,
        },
    )
    path.write_bytes(encoder.close())


@pytest.mark.parametrize("decode", [decode_fit_columnar, decode_fit], ids=["columnar", "fitparse"])
def test_a_compass_heading_developer_field_is_read_as_facing(tmp_path, decode):
    path = tmp_path / "compass.fit"
    write_run_with_compass(path)
    records = decode(path).records
    assert records["facing_deg"].null_count() == 0
    assert records["facing_deg"][BACKWARD.start + 10] == pytest.approx(270.0, abs=4)
    assert records["facing_deg"][10] == pytest.approx(90.0, abs=4)


def test_facing_in_a_file_finds_backward_running_without_any_other_evidence(tmp_path):
    path = tmp_path / "compass.fit"
    write_run_with_compass(path)
    frames = load_files([path], tmp_path)
    segments = detect_segments(
        frames.records, frames.activities, frames.laps, pl.DataFrame(schema=BASELINES), DetectionConfig()
    )
    found = segments.filter(pl.col("direction") == "backward")
    assert found.height == 1 and found["evidence"][0] == "facing"
    assert found["duration_s"][0] == pytest.approx(len(BACKWARD), abs=8)
    assert set(segments.filter(pl.col("direction") == "forward")["evidence"]) == {"facing"}


def test_a_developer_field_of_another_name_is_not_facing(tmp_path):
    path = tmp_path / "other.fit"
    write_run_with_compass(path, field_name="wind_direction")
    assert decode_fit_columnar(path).records["facing_deg"].null_count() == 700
