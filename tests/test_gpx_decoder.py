"""The gpxpy decoder: corpus counts, Garmin extensions, hostile XML."""

from pathlib import Path

import pytest

from retrostride.connectors.gpx import decode_gpx
from retrostride.warehouse.schema import DecodeError
from tests.conftest import corpus_files

GARMIN_GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">
 <trk><name>Backward intervals</name><type>running</type><trkseg>
  <trkpt lat="52.5000" lon="13.4000"><ele>34</ele><time>2024-03-31T00:30:00Z</time>
   <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>141</gpxtpx:hr><gpxtpx:cad>88</gpxtpx:cad></gpxtpx:TrackPointExtension></extensions></trkpt>
  <trkpt lat="52.5001" lon="13.4000"><ele>34</ele><time>2024-03-31T00:30:05Z</time>
   <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>143</gpxtpx:hr><gpxtpx:cad>90</gpxtpx:cad></gpxtpx:TrackPointExtension></extensions></trkpt>
 </trkseg></trk></gpx>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<gpx version="1.1"><trk><name>&b;</name></trk></gpx>"""


@pytest.mark.parametrize("item", corpus_files("gpx", "ok"), ids=lambda f: f.path.name)
def test_every_gpx_file_yields_the_reference_sample_count(item):
    assert len(decode_gpx(item.path).records) == item.reference_records


def test_garmin_extensions_give_heart_rate_and_steps_per_minute(tmp_path: Path):
    path = tmp_path / "run.gpx"
    path.write_text(GARMIN_GPX)
    decoded = decode_gpx(path)
    assert decoded.records["heart_rate_bpm"].to_list() == [141.0, 143.0]
    assert decoded.records["cadence_spm"].to_list() == [176.0, 180.0]  # strides/min doubled
    assert decoded.activities["name"][0] == "Backward intervals"
    assert decoded.records["distance_m"][-1] == pytest.approx(11.1, abs=0.2)
    assert decoded.records["speed_mps"][-1] == pytest.approx(2.22, abs=0.05)


def test_entity_expansion_is_refused(tmp_path: Path):
    path = tmp_path / "laughs.gpx"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(DecodeError, match="GPX refused"):
        decode_gpx(path)


def test_malformed_xml_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.gpx"
    path.write_text('<?xml version="1.0"?>\n<gpx version="1.1">\n<trk><name>x</trk></gpx>')
    with pytest.raises(DecodeError, match="line 3"):
        decode_gpx(path)
