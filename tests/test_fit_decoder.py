"""The fitparse decoder on the real corpus: counts, units, sessions, damage."""

import polars as pl
import pytest

from retrostride.connectors.fit import decode_fit
from retrostride.warehouse.schema import FILE_RECORDS, DecodeError
from tests.conftest import CORPORA, corpus_files

FIT = CORPORA / "fit" / "python-fitparse"


@pytest.mark.parametrize("item", corpus_files("fit", "ok"), ids=lambda f: f.path.name)
def test_every_clean_fit_file_yields_the_reference_sample_count(item):
    decoded = decode_fit(item.path)
    assert decoded.status == "ok"
    assert len(decoded.records) == item.reference_records
    assert decoded.records.schema == FILE_RECORDS


@pytest.mark.parametrize("item", corpus_files("fit", "error"), ids=lambda f: f.path.name)
def test_corrupt_fit_files_are_rejected_with_a_specific_reason(item):
    with pytest.raises(DecodeError) as rejected:
        decode_fit(item.path)
    assert any(word in str(rejected.value) for word in ("CRC mismatch", "invalid FIT header", "truncated FIT file"))


@pytest.mark.parametrize("item", corpus_files("fit", "recoverable"), ids=lambda f: f.path.name)
def test_damaged_fit_files_are_recovered_up_to_the_break(item):
    decoded = decode_fit(item.path)
    assert decoded.status == "partial"
    assert "at byte" in decoded.reason and "kept the" in decoded.reason
    assert len(decoded.records) >= 60


def test_duplicated_field_names_do_not_lose_distance():
    records = decode_fit(FIT / "null_compressed_speed_dist.fit").records
    assert records["distance_m"].null_count() == 0
    assert records["distance_m"].max() > 0


def test_positions_are_degrees_and_running_cadence_is_steps_per_minute():
    records = decode_fit(FIT / "activity-small-fenix2-run.fit").records
    assert records["lat_deg"].drop_nulls().is_between(-90, 90).all()
    assert 58.0 < records["lat_deg"].drop_nulls().median() < 60.0  # 703410450 semicircles ≈ 58.96°
    cadence = records["cadence_spm"].drop_nulls()
    assert 140 < cadence.median() < 200  # strides/min doubled


def test_local_time_comes_from_the_activity_message():
    activity = decode_fit(FIT / "activity-small-fenix2-run.fit").activities.row(0, named=True)
    assert activity["utc_offset_s"] == 7200
    assert activity["utc_offset_source"] == "device_activity"
    assert activity["local_start_ts"].hour == activity["start_ts"].hour + 2


@pytest.mark.parametrize(
    "name, sessions", [("activity-large-fenxi2-multisport.fit", 7), ("sample_mulitple_header.fit", 5)]
)
def test_multi_session_and_chained_files_yield_one_activity_per_session(name, sessions):
    decoded = decode_fit(FIT / name)
    assert len(decoded.activities) == sessions
    assert decoded.records["session"].n_unique() <= sessions
    assert set(decoded.laps["session"].unique()) <= set(range(sessions))


def test_weight_scale_files_become_body_measurements():
    body = decode_fit(FIT / "WeightScaleSingleUser.fit").body_measurements
    assert len(body) > 0
    assert body["weight_kg"].drop_nulls().is_between(20, 300).all()


def test_missing_values_are_null_never_zero():
    records = decode_fit(FIT / "garmin-edge-500-activity.fit").records
    assert records["step_length_m"].null_count() == len(records)
    assert (records.select(pl.col("heart_rate_bpm") == 0).to_series().sum() or 0) == 0
