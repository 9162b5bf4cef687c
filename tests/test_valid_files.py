"""Valid but unusual files are imported, or cleaned with a reason and a count, never lost silently:
a root element after a long comment, impossible dates, unreadable CSV rows, repeated or backwards times."""

from __future__ import annotations

from retrostride.connectors.formats import decoder_for
from tests.test_hostile_input import OTHER_FIT, run_import

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
ROOT = '<gpx version="1.1" creator="watch" xmlns="http://www.topografix.com/GPX/1/1">'
POINT = '<trkpt lat="46.{i:04d}" lon="14.0"><ele>300</ele><time>{time}</time></trkpt>'


def gpx(times: list[str], prologue: str = "") -> bytes:
    points = "".join(POINT.format(i=i, time=t) for i, t in enumerate(times))
    return (
        HEAD + prologue + ROOT + f"<trk><name>run</name><type>running</type><trkseg>{points}</trkseg></trk></gpx>"
    ).encode()


def seconds(*values: int, day: str = "2024-02-28") -> list[str]:
    return [f"{day}T10:{s // 60:02d}:{s % 60:02d}Z" for s in values]


def test_a_root_element_after_a_long_comment_is_recognised(tmp_path):
    comment = "<!-- " + "exported by a very talkative tool; " * 200 + "-->\n"  # 7 kB before the root
    tcx = (
        HEAD + comment + '<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">'
        "<Activities/></TrainingCenterDatabase>"
    ).encode()
    (tmp_path / "late.gpx").write_bytes(gpx(seconds(*range(10)), comment))
    (tmp_path / "late.tcx").write_bytes(tcx)
    assert decoder_for(tmp_path / "late.gpx")[0] == "gpx" and decoder_for(tmp_path / "late.tcx")[0] == "tcx"
    rows = run_import(tmp_path / "import", {"late.gpx": gpx(seconds(*range(10)), comment)})
    assert rows["late.gpx"]["status"] == "ok" and rows["late.gpx"]["records"] == 10


def test_impossible_dates_repeated_and_backward_times_are_cleaned_and_counted(tmp_path):
    times = seconds(0, 1, 2, 2, 3, 4, 3, 5) + ["2024-02-30T10:00:06Z"] + seconds(7, 8, 9)
    document = gpx(times)
    point = POINT.format(i=11, time=times[-1]).encode()
    document = document.replace(point, point * 2)  # the last sample written twice, exactly
    rows = run_import(tmp_path, {"odd.gpx": document})
    notes = rows["odd.gpx"]["notes"]
    assert "ts: 1 sample(s) without a readable time in a timed activity dropped" in notes  # 2024-02-30
    assert "ts: 1 sample(s) repeating the sample before exactly dropped" in notes
    assert "ts: 1 sample(s) with the time of the sample before (kept)" in notes  # another position: 2 Hz, whole seconds
    assert "ts: 1 step(s) back in time (the samples stay in file order)" in notes
    assert rows["odd.gpx"]["status"] == "ok" and rows["odd.gpx"]["records"] == 13


def test_unreadable_csv_rows_are_counted(tmp_path):
    table = b"date,weight\n2024-01-01,72.5\nyesterday,72.4\n2024-01-03,heavy\n2024-01-04,72.1\n"
    row = run_import(tmp_path, {"scale.csv": table, "run.fit": OTHER_FIT.read_bytes()})["scale.csv"]
    assert row["status"] == "ok" and row["body_measurements"] == 2
    assert row["notes"] == "2 of 4 row(s) without a readable date and weight skipped"
