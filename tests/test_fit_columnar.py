"""The columnar FIT decoder against fitparse, the reference, on every corpus file and a few built ones.

The canonical frames must be identical, value by value and bit for bit (floats included: both
decoders scale a field by the same division, so no tolerance is needed), except for two deliberate
differences (see `connectors.fit_columnar`): product, sport and manufacturer names come from the
FIT SDK's current profile, so where fitparse's 2020 profile only has the number the columnar decoder
gives the name (`garmin 2158` → `garmin fr735xt`); and `weight_scale.bmi`, a field fitparse does not
know, is read.  `_as_the_sdk_names_it` applies exactly these to fitparse's frames.  A file the
columnar decoder hands to fitparse (`decoder` = "fitparse") is compared too, trivially.

One more deliberate difference: a field whose size is not a multiple of its base type's is read as
the FIT SDK reads it (uint8s), where fitparse rejects the file at that definition.  On the Coros file
that does this, the columnar decoder keeps all 11,272 records the Garmin SDK decodes, and the 1,785
fitparse keeps before its rejection are identical; the rest are checked against the SDK itself.
"""

from __future__ import annotations

import re
import struct
from functools import cache
from pathlib import Path

import polars as pl
import pytest
from garmin_fit_sdk import Profile
from polars.testing import assert_frame_equal

from retrostride.connectors.fit import decode_fit
from retrostride.connectors.fit_columnar import DECODER, decode_fit_columnar, read_fit_messages
from retrostride.connectors.fit_crc import fit_crc
from retrostride.warehouse.schema import DecodedFile, DecodeError
from tests.conftest import CORPORA, corpus_files

FRAMES = ("records", "activities", "laps", "body_measurements")


@cache
def _decoded(decode, path: Path) -> DecodedFile | DecodeError:
    try:
        return decode(path)
    except DecodeError as error:
        return error


def _headline(reason: str) -> str:
    """What a reason says up to the byte offset: the kind of damage and where it is."""
    found = re.match(r"^(.*? at byte \d+)", reason)
    return found.group(1) if found else reason.split(" (")[0]


COROS = CORPORA / "fit" / "python-fitparse" / "coros-pace-2-cycling-misaligned-fields.fit"
SDK_WAY = "read as uint8, as the FIT SDK does"


@pytest.mark.parametrize(
    "item", corpus_files("fit", "ok") + corpus_files("fit", "recoverable"), ids=lambda f: f.path.name
)
def test_every_decodable_corpus_file_gives_fitparse_frames_value_by_value(item):
    reference, columnar = _decoded(decode_fit, item.path), _decoded(decode_fit_columnar, item.path)
    assert isinstance(reference, DecodedFile) and isinstance(columnar, DecodedFile)
    if SDK_WAY in (columnar.notes or ""):  # fitparse stopped where the SDK reads on: its records come first
        assert_frame_equal(columnar.records.head(len(reference.records)), reference.records, check_exact=True)
        return
    assert columnar.status == reference.status
    if columnar.decoder == DECODER:
        assert columnar.reason is None or _headline(columnar.reason) == _headline(reference.reason)
    for frame in FRAMES:
        expected = _as_the_sdk_names_it(frame, getattr(reference, frame), getattr(columnar, frame))
        assert_frame_equal(getattr(columnar, frame), expected, check_exact=True)
    if item.reference_records is not None:
        assert len(columnar.records) == item.reference_records


DAMAGED = [f for f in corpus_files("fit", "recoverable") if f.path != COROS]  # Coros: not damaged for the SDK (below)


@pytest.mark.parametrize("item", DAMAGED, ids=lambda f: f.path.name)
def test_damaged_corpus_files_keep_the_same_records_and_say_where_the_damage_is(item):
    reference, columnar = _decoded(decode_fit, item.path), _decoded(decode_fit_columnar, item.path)
    assert columnar.status == "partial"
    assert _headline(columnar.reason) == _headline(reference.reason)
    assert f"kept the {len(reference.records)} records before it" in columnar.reason


@pytest.mark.parametrize("item", corpus_files("fit", "error"), ids=lambda f: f.path.name)
def test_corrupt_corpus_files_are_rejected_by_both_for_the_same_reason(item):
    reference, columnar = _decoded(decode_fit, item.path), _decoded(decode_fit_columnar, item.path)
    assert isinstance(reference, DecodeError) and isinstance(columnar, DecodeError)
    assert _headline(str(columnar)) == _headline(str(reference))
    assert re.search(r"CRC mismatch|invalid FIT header|truncated FIT file", str(columnar))


@pytest.mark.parametrize("cut", [0, 5, 13, 14, 200, 1000, 5000, 9000, 17000, -1])
def test_a_file_cut_anywhere_is_kept_or_rejected_as_fitparse_does(tmp_path, cut):
    source = CORPORA / "fit" / "python-fitparse" / "2013-02-06-12-11-14.fit"
    if not source.exists():
        pytest.skip("corpus not found")
    path = tmp_path / "cut.fit"
    path.write_bytes(source.read_bytes()[:cut])
    reference, columnar = _decoded(decode_fit, path), _decoded(decode_fit_columnar, path)
    assert type(columnar) is type(reference)
    if isinstance(reference, DecodeError):
        assert _headline(str(columnar)) == _headline(str(reference))
    else:
        assert _headline(columnar.reason) == _headline(reference.reason)
        assert_frame_equal(columnar.records, reference.records)


def test_a_field_size_fitparse_rejects_is_read_as_the_fit_sdk_reads_it():
    if not COROS.exists():
        pytest.skip("corpus not found")
    decoded = decode_fit_columnar(COROS)
    assert (decoded.decoder, decoded.status, len(decoded.records)) == (DECODER, "ok", 11272)  # the SDK's count
    assert decoded.notes.startswith("field 3 of message 21 is a 1-byte uint32 (definition at byte 41093): " + SDK_WAY)
    [session] = decoded.activities.iter_rows(named=True)
    assert (session["sport"], session["total_distance_m"]) == ("cycling", 32145.76)
    messages = pl.from_arrow(read_fit_messages(COROS.read_bytes()).messages["record"])
    by_sdk = _sdk_records(COROS)
    assert len(by_sdk) == len(messages)
    for field in (
        "position_lat",
        "position_long",
        "distance",
        "heart_rate",
        "enhanced_altitude",
        "enhanced_speed",
        "cadence",
        "power",
    ):
        expected = [row.get(field) for row in by_sdk]
        assert messages[field].to_list() == expected if field in messages.columns else set(expected) == {None}, field
    seconds = (messages["timestamp"].dt.epoch("s") - 631065600).to_list()
    assert seconds == [row["timestamp"] for row in by_sdk]


def _sdk_records(path: Path) -> list[dict]:
    from garmin_fit_sdk import Decoder, Stream

    found, errors = Decoder(Stream.from_file(str(path))).read(
        apply_scale_and_offset=True,
        convert_datetimes_to_dates=False,
        convert_types_to_strings=True,
        expand_sub_fields=True,
        expand_components=True,
        merge_heart_rates=False,
    )
    assert errors == []
    return found["record_mesgs"]


def test_an_unsupported_field_falls_back_to_fitparse_and_the_file_says_so(tmp_path):
    records = [_data(1, struct.pack("<IB", FIT_2020 + i, 120 + i % 30)) for i in range(70)]
    odd = _definition(2, RECORD, [(253, 4, UINT32), (3, 3, UINT16)])  # heart rate as 3 bytes of uint16
    later = _data(2, struct.pack("<I", FIT_2020 + 70) + bytes([1, 2, 3]))
    path = _write(tmp_path, [FILE_ID_DEF, FILE_ID, RECORD_DEF, *records, odd, later])
    decoded = decode_fit_columnar(path)
    assert decoded.decoder == "fitparse"
    assert (
        decoded.notes
        == "decoded by fitparse: the columnar decoder does not support field 3 of record: an array of 3 uint8"
    )
    assert decoded.status == "partial"  # fitparse's verdict, kept
    assert "expected a multiple of 2" in decoded.reason and decoded.reason.startswith("corrupt FIT data at byte")
    assert_frame_equal(decoded.records, decode_fit(path).records)


def test_a_clean_built_file_is_decoded_by_the_columnar_decoder(tmp_path):
    records = [_data(1, struct.pack("<IB", FIT_2020 + i, 120 + i % 30)) for i in range(70)]
    path = _write(tmp_path, [FILE_ID_DEF, FILE_ID, RECORD_DEF, *records])
    decoded = decode_fit_columnar(path)
    assert (decoded.decoder, decoded.status, decoded.reason) == (DECODER, "ok", None)
    assert decoded.records["heart_rate_bpm"].to_list() == [120.0 + i % 30 for i in range(70)]


def test_compressed_timestamp_headers_roll_over_like_fitparse(tmp_path):
    record = _definition(1, RECORD, [(3, 1, UINT8)])
    start = FIT_2020 + 29  # low 5 bits 29: the offsets below wrap past 31
    messages = [FILE_ID_DEF, FILE_ID, RECORD_DEF, _data(1, struct.pack("<IB", start, 100)), record]
    messages += [_compressed(1, (29 + step) % 32, bytes([101 + step])) for step in range(1, 70)]
    path = _write(tmp_path, messages)
    columnar, reference = decode_fit_columnar(path), decode_fit(path)
    assert columnar.decoder == DECODER
    assert_frame_equal(columnar.records, reference.records)
    assert columnar.records["ts"].diff().drop_nulls().dt.total_seconds().to_list() == [1] * 69


def test_a_developer_field_named_like_a_wanted_field_fills_in_after_the_native_one(tmp_path):
    developer = [
        _definition(3, DEVELOPER_DATA_ID, [(3, 1, UINT8)]),
        _data(3, bytes([0])),
        _definition(4, FIELD_DESCRIPTION, [(0, 1, UINT8), (1, 1, UINT8), (2, 1, UINT8), (3, 11, STRING)]),
        _data(4, bytes([0, 7, UINT8]) + b"heart_rate\0"),
    ]
    record = _definition(1, RECORD, [(253, 4, UINT32), (3, 1, UINT8)], developer=[(7, 1, 0)])
    native = [None if i % 3 == 0 else 130 for i in range(70)]
    records = [
        _data(1, struct.pack("<IBB", FIT_2020 + i, 0xFF if hr is None else hr, 90)) for i, hr in enumerate(native)
    ]
    path = _write(tmp_path, [FILE_ID_DEF, FILE_ID, *developer, record, *records])
    columnar, reference = decode_fit_columnar(path), decode_fit(path)
    assert columnar.decoder == DECODER
    assert columnar.records["heart_rate_bpm"].to_list() == [90.0 if hr is None else 130.0 for hr in native]
    assert_frame_equal(columnar.records, reference.records)


def test_timestamp_16_counts_on_from_the_last_full_timestamp():
    monitoring = CORPORA / "fit" / "python-fitparse" / "MonitoringFile.fit"
    if not monitoring.exists():
        pytest.skip("corpus not found")
    messages, damage, *_ = read_fit_messages(monitoring.read_bytes(), {"monitoring": ("timestamp", "timestamp_16")})
    frame = pl.from_arrow(messages["monitoring"])
    assert damage is None and frame["timestamp"].null_count() == 0
    expected, last = [], None  # the FIT rule, message by message
    import fitparse

    for message in fitparse.FitFile(str(monitoring)).get_messages():
        stamp = message.get_raw_value("timestamp")
        if stamp is not None:
            last = stamp
        elif message.name == "monitoring" and message.get_raw_value("timestamp_16") is not None:
            last += (message.get_raw_value("timestamp_16") - last) & 0xFFFF
        if message.name == "monitoring":
            expected.append(last)
    seconds = (frame["timestamp"].dt.epoch("s") - 631065600).to_list()
    assert seconds == expected


# FIT files built byte by byte (FIT protocol: header, definition and data messages, CRC).
UINT8, UINT16, UINT32, STRING, ENUM = 0x02, 0x84, 0x86, 0x07, 0x00
FILE_ID_NUM, RECORD, EVENT, DEVELOPER_DATA_ID, FIELD_DESCRIPTION = 0, 20, 21, 207, 206
FIT_2020 = 946684800  # 2020-01-01T00:00:00Z in FIT seconds


def _definition(
    local: int, global_num: int, fields: list[tuple[int, int, int]], developer: list | None = None
) -> bytes:
    body = bytes([0, 0]) + struct.pack("<H", global_num) + bytes([len(fields)]) + b"".join(bytes(f) for f in fields)
    if developer is not None:
        body += bytes([len(developer)]) + b"".join(bytes(f) for f in developer)
    return bytes([0x40 | (0x20 if developer is not None else 0) | local]) + body


def _data(local: int, payload: bytes) -> bytes:
    return bytes([local]) + payload


def _compressed(local: int, offset: int, payload: bytes) -> bytes:
    return bytes([0x80 | local << 5 | offset]) + payload


def _write(folder: Path, messages: list[bytes]) -> Path:
    body = b"".join(messages)
    header = struct.pack("<BBHI4s", 14, 0x20, 2132, len(body), b".FIT")
    data = header + struct.pack("<H", fit_crc(header)) + body
    path = folder / "built.fit"
    path.write_bytes(data + struct.pack("<H", fit_crc(data)))
    return path


FILE_ID_DEF = _definition(0, FILE_ID_NUM, [(0, 1, ENUM), (1, 2, UINT16), (2, 2, UINT16)])
FILE_ID = _data(0, struct.pack("<BHH", 4, 1, 1623))  # activity, garmin, fr245
RECORD_DEF = _definition(1, RECORD, [(253, 4, UINT32), (3, 1, UINT8)])


def _as_the_sdk_names_it(frame: str, reference: pl.DataFrame, columnar: pl.DataFrame) -> pl.DataFrame:
    """fitparse's frame with the deliberate differences applied: SDK names for numbers, and bmi."""
    if frame == "activities" and len(reference):
        return reference.with_columns(pl.col("device").map_elements(_sdk_device, return_dtype=pl.String))
    if frame == "body_measurements" and len(reference) and reference["bmi"].null_count() == len(reference):
        return reference.with_columns(columnar["bmi"])
    return reference


def _sdk_device(device: str) -> str:
    manufacturer, _, product = device.partition(" ")
    garmin_made = {v for k, v in Profile["types"]["manufacturer"].items() if k in (1, 13, 15, 89)}
    if product.isdigit() and manufacturer in garmin_made:
        product = Profile["types"]["garmin_product"].get(int(product), product)
    return f"{manufacturer} {product}".strip()
