"""What the fuzzer found in the decoders, pinned: each damage becomes a reason or a clean value."""

from datetime import datetime

import fitparse
import polars as pl
import pytest

from retrostride.connectors.fit import _column, decode_fit
from retrostride.connectors.gpx import decode_gpx
from retrostride.warehouse.schema import DecodeError
from tests.conftest import CORPORA

FIT = CORPORA / "fit" / "python-fitparse"


def test_fitparse_failing_with_a_plain_python_error_is_damage_with_a_byte_offset(monkeypatch):
    original = fitparse.FitFile._parse_message
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] > 200:  # fitparse meets a damaged value the way the mutants made it: a TypeError
            raise TypeError("'>=' not supported between instances of 'tuple' and 'int'")
        return original(self)

    monkeypatch.setattr(fitparse.FitFile, "_parse_message", flaky)
    decoded = decode_fit(FIT / "activity-small-fenix2-run.fit")
    assert decoded.status == "partial"
    assert (
        decoded.reason.startswith("corrupt FIT data at byte ")
        and "a value fitparse cannot read (a field of the wrong type)" in decoded.reason
    )
    assert "TypeError" not in decoded.reason  # no Python exception text in the ledger
    calls["n"] = -(10**9)
    monkeypatch.setattr(fitparse.FitFile, "_parse_message", lambda self: (_ for _ in ()).throw(KeyError(7)))
    with pytest.raises(DecodeError, match=r"a value fitparse cannot read \(an unknown field or message number\)"):
        decode_fit(FIT / "activity-small-fenix2-run.fit")  # nothing before the damage: rejected


def test_fitparse_columns_of_mixed_types_still_make_a_frame():
    moment = datetime(2020, 1, 1)
    assert _column("timestamp", [moment, 1234, None]).to_list() == [1577836800000000, 1234, None]  # µs, as columnar
    assert _column("power", [(250, 251), 260, None]).to_list() == [250, 260, None]  # an array: its first value
    assert _column("power", [(250, 251), (260,), ()]).to_list() == [250, 260, None]
    assert _column("sport", ["running", 7]).dtype == pl.String  # a damaged enum among names


def write(tmp_path, body: str, declaration: str = '<?xml version="1.0" encoding="UTF-8"?>'):
    path = tmp_path / "t.gpx"
    path.write_text(
        f'{declaration}<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">{body}</gpx>'
    )
    return path


def test_a_gpx_time_with_an_impossible_offset_has_no_time(tmp_path):
    body = (
        '<trk><trkseg><trkpt lat="46.0" lon="14.0"><time>2019-05-01T10:00:00+25:00</time></trkpt>'
        '<trkpt lat="46.0" lon="14.0001"><time>2019-05-01T10:00:01Z</time></trkpt></trkseg></trk>'
    )
    records = decode_gpx(write(tmp_path, body)).records
    assert records["ts"].null_count() == 1 and records.height == 2


def test_a_gpx_segment_through_an_infinite_latitude_has_no_lap_length(tmp_path):
    segment = '<trkseg><trkpt lat="{}" lon="14.0"><time>2019-05-01T10:00:0{}Z</time></trkpt></trkseg>'
    body = (
        "<trk>"
        + segment.format("46.0", 0)
        + segment.format("1e309", 1).replace("</trkseg>", '<trkpt lat="46" lon="14"/></trkseg>')
        + "</trk>"
    )
    decoded = decode_gpx(write(tmp_path, body))
    assert decoded.laps["distance_m"].to_list()[1] is None


def test_a_gpx_declaring_an_unknown_encoding_is_rejected_with_a_reason(tmp_path):
    with pytest.raises(DecodeError, match=r"GPX is not well-formed XML: it declares an unknown encoding \(TTF-8\)"):
        decode_gpx(write(tmp_path, "", '<?xml version="1.0" encoding="TTF-8"?>'))


def test_a_fit_header_claiming_more_data_than_the_file_holds_is_a_truncation_kept_as_partial(tmp_path):
    """As the README says: a header whose data size runs past the end of the file is a truncated file
    (the watch stopped writing), not a bad header; the records before the end are kept, in both decoders."""
    from retrostride.connectors.fit_columnar import decode_fit_columnar

    data = (FIT / "activity-small-fenix2-run.fit").read_bytes()
    cut = tmp_path / "cut.fit"
    cut.write_bytes(data[: len(data) * 2 // 3])  # the header still declares the whole file's data size
    for decode in (decode_fit, decode_fit_columnar):
        decoded = decode(cut)
        assert decoded.status == "partial" and decoded.reason.startswith(
            "truncated FIT file: unexpected end of data at byte "
        )
