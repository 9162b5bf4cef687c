"""The GPX fast path against gpxpy, the reference: identical frames, or the same refusal, on every
corpus GPX file, on generated runs, on hand-made edge cases and on seeded mutants of them all."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from benchmarks.fuzzing import gpx_mutant
from retrostride.connectors.gpx import DECODER, FAST_DECODER, decode_gpx
from retrostride.pipelines.sample_export import TrainingVolume, generate_export
from retrostride.warehouse.schema import DecodeError
from tests.conftest import corpus_files

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
ROOT = (
    '<gpx version="1.1" creator="watch" xmlns="http://www.topografix.com/GPX/1/1" '
    'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
)
POINT = (
    '<trkpt lat="46.{i:04d}" lon="14.0"><ele>{i}.5</ele><time>2019-05-01T10:00:{s:02d}Z</time>'
    "<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>{hr}</gpxtpx:hr><gpxtpx:cad>80</gpxtpx:cad>"
    "</gpxtpx:TrackPointExtension></extensions></trkpt>"
)


def track(points: int = 3, segments: int = 1, name: str = "Backward intervals", kind: str = "running") -> str:
    body = "".join(
        "<trkseg>" + "".join(POINT.format(i=i + 10 * k, s=i + 10 * k, hr=120 + i) for i in range(points)) + "</trkseg>"
        for k in range(segments)
    )
    return f"<trk><name>{name}</name><type>{kind}</type>{body}</trk>"


def document(body: str, head: str = HEAD, root: str = ROOT) -> bytes:
    return (head + root + body + "</gpx>").encode()


#: Documents the fast path reads, and documents where it must step aside; gpxpy decides each.
CASES = {
    "plain run": (document(track()), FAST_DECODER),
    "two segments (laps)": (document(track(segments=2)), FAST_DECODER),
    "two tracks, metadata name and description": (
        document(
            "<metadata><name>Morning</name><desc>d</desc><time>2019-05-01T09:00:00Z</time></metadata>"
            + track(name="")
            + track(kind="Walk")
        ),
        FAST_DECODER,
    ),
    "no time, no elevation, empty extensions": (
        document('<trk><trkseg><trkpt lat="1" lon="2"><extensions/></trkpt></trkseg></trk>'),
        FAST_DECODER,
    ),
    "times gpxpy reads its own way": (
        document(
            track()
            .replace("10:00:01Z", "10:00:01.250+02:00")
            .replace("10:00:02Z", "10:00:02")
            .replace("10:00:00Z", "2019-13-01T10:00:00Z")
        ),
        FAST_DECODER,
    ),
    "an impossible offset": (document(track().replace("10:00:01Z", "10:00:01+25:00")), FAST_DECODER),
    "numbers with spaces, exponents, infinity": (
        document(
            track(segments=2)
            .replace('lat="46.0001"', 'lat=" 4.6e1 "')
            .replace('lat="46.0010"', 'lat="1e309"')
            .replace("<ele>2.5</ele>", "<ele> nan </ele>")
        ),
        FAST_DECODER,
    ),
    "byte order mark, no declaration": (b"\xef\xbb\xbf" + document(track(), head=""), FAST_DECODER),
    "a speed element, which GPX 1.1 has not": (
        document(track().replace("<ele>1.5</ele>", "<ele>1.5</ele><speed>3</speed>")),
        FAST_DECODER,
    ),
    "unknown elements": (
        document(track().replace("<ele>1.5</ele>", "<ele>1.5</ele><foo>x</foo><ele>9</ele>")),
        FAST_DECODER,
    ),
    "a bad latitude": (document(track().replace('lat="46.0001"', 'lat="abc"')), DECODER),
    "no longitude": (document(track().replace(' lon="14.0"', "", 1)), DECODER),
    "a bad elevation": (document(track().replace("<ele>1.5</ele>", "<ele>1,5</ele>")), DECODER),
    "a converted field": (document(track().replace("<ele>1.5</ele>", "<ele>1.5</ele><sat>many</sat>")), DECODER),
    "a track number": (document(track().replace("<trk>", "<trk><number>x</number>")), DECODER),
    "waypoints": (document('<wpt lat="1" lon="2"></wpt>' + track()), DECODER),
    "bounds": (document('<metadata><bounds minlat="a"/></metadata>' + track()), DECODER),
    "GPX 1.0": (document(track(), root=ROOT.replace("1.1", "1.0").replace("GPX/1/1", "GPX/1/0")), DECODER),
    "no namespace": (document(track(), root='<gpx version="1.1" creator="x">'), DECODER),
    "a prefix for the GPX namespace": (
        document(
            track().replace("<ele>", "<g:ele>").replace("</ele>", "</g:ele>"),
            root=ROOT.replace(">", ' xmlns:g="http://www.topografix.com/GPX/1/1">'),
        ),
        DECODER,
    ),
    "an element taken out of every namespace": (
        document(track().replace("<ele>1.5</ele>", '<ele xmlns="">7</ele>')),
        DECODER,
    ),
    "Latin-1 declared": (
        document(track(name="Rückwärts"), head=HEAD.replace("UTF-8", "ISO-8859-1")).decode().encode("latin-1"),
        DECODER,
    ),
    "a comment before the root": (document(track(), head=HEAD + '<!-- xmlns="http://example.com" -->'), DECODER),
    "the namespace declared by a character reference": (
        document(
            track(),
            root=ROOT.replace(
                'xmlns="http://www.topografix.com/GPX/1/1"', 'xmlns="http&#58;//www.topografix.com/GPX/1/1"'
            ),
        ),
        DECODER,
    ),
}


def assert_same_as_gpxpy(path: Path) -> str:
    """Decode `path` both ways; the frames must be identical (or both refused alike). Returns the decoder used."""
    try:
        reference = decode_gpx(path, reference=True)
    except DecodeError as refusal:
        with pytest.raises(DecodeError) as raised:
            decode_gpx(path)
        assert str(raised.value) == str(refusal)
        return DECODER
    decoded = decode_gpx(path)
    for frame in ("activities", "records", "laps", "body_measurements"):
        assert_frame_equal(getattr(decoded, frame), getattr(reference, frame), check_exact=True)
    assert (decoded.status, decoded.reason, decoded.notes) == (reference.status, reference.reason, reference.notes)
    assert reference.decoder == DECODER
    return decoded.decoder


@pytest.fixture(scope="module")
def generated_runs(tmp_path_factory) -> list[Path]:
    """A fortnight of one athlete's runs, all recorded as GPX."""
    folder = tmp_path_factory.mktemp("gpx-runs")
    generate_export(
        folder / "export",
        seed=3,
        athletes=1,
        weeks=2,
        start=date(2024, 3, 25),
        volume=TrainingVolume((3,), (10, 14), gpx_share=1.0),
    )
    return sorted((folder / "export").rglob("*.gpx"))


@pytest.mark.parametrize("item", corpus_files("gpx"), ids=lambda f: f.path.name)
def test_every_corpus_gpx_file_decodes_as_gpxpy_decodes_it(item):
    assert_same_as_gpxpy(item.path)


def test_generated_runs_take_the_fast_path_and_decode_as_gpxpy_decodes_them(generated_runs):
    assert generated_runs
    assert {assert_same_as_gpxpy(path) for path in generated_runs} == {FAST_DECODER}


@pytest.mark.parametrize("name", CASES)
def test_edge_cases_decode_as_gpxpy_decodes_them_and_only_safe_ones_take_the_fast_path(tmp_path, name):
    data, decoder = CASES[name]
    path = tmp_path / "case.gpx"
    path.write_bytes(data)
    assert assert_same_as_gpxpy(path) == decoder


def test_mutants_decode_as_gpxpy_decodes_them(tmp_path, generated_runs):
    """Truncations, bit flips, absurd values, splices, encodings, nesting, entities (tests/fuzzing.py)."""
    rng = random.Random(20261124)
    sources = [
        CASES[name][0] for name in ("plain run", "two segments (laps)", "two tracks, metadata name and description")
    ]
    sources += [p.read_bytes() for p in generated_runs[:1]] + [
        f.path.read_bytes() for f in corpus_files("gpx") if f.path.stat().st_size < 3000
    ]
    used = set()
    for index in range(300):
        data = sources[index % len(sources)]
        _, mutant = gpx_mutant(data, rng, other=rng.choice(sources))
        path = tmp_path / f"mutant-{index}.gpx"
        path.write_bytes(mutant)
        used.add(assert_same_as_gpxpy(path))
    assert used == {DECODER, FAST_DECODER}  # the mutants reach both readers
