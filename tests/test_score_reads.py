"""Scoring reads each batch's records from the row groups of its activities' time span only; a sample
outside its activity's span (which `connectors.frames.summarize` never makes) is still read."""

from __future__ import annotations

from datetime import date

from retrostride.connectors.ingest.importer import import_files
from retrostride.connectors.sources import SourceFile
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.publish import publish_days
from retrostride.warehouse.scores import batches_started
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA

FIT = CORPORA / "fit" / "python-fitparse"
RUNS = [FIT / "20170518-191602-1740899583.fit", FIT / "garmin-fenix-5-run.fit", FIT / "garmin-fenix-5-walk.fit"]
EVERY_DAY = (date(2000, 1, 1), date(2030, 1, 1))


def _records_read(warehouse: Warehouse, batches: list[tuple[date, date]]) -> dict[str, int]:
    read: dict[str, int] = {}
    for _, _, frames in batches_started(warehouse, batches, per_read=2):
        for activity, count in frames.records.group_by("activity_id").len().iter_rows():
            read[activity] = read.get(activity, 0) + count
    return read


def test_every_record_of_each_batch_is_read_even_outside_its_activity_span(tmp_path):
    lake, warehouse = Lake(tmp_path), Warehouse.embedded(tmp_path)
    import_files([SourceFile(path=p, athlete_id="ann") for p in RUNS], lake, warehouse, workers=1)
    publish_days(warehouse, lake, *EVERY_DAY)
    stored = dict(warehouse.query("SELECT activity_id, count(*) FROM records GROUP BY ALL").iter_rows())
    days = sorted(warehouse.query("SELECT DISTINCT start_day FROM activities")["start_day"].to_list())
    one_batch_a_day = [(day, day) for day in days]
    assert _records_read(warehouse, one_batch_a_day) == stored

    # one sample a week after its activity ended: only a read of every row group finds it
    moved = warehouse.write(
        lambda connection: connection.execute(
            "UPDATE records SET ts = ts + INTERVAL 7 DAY WHERE (activity_id, ts) IN "
            "(SELECT (activity_id, max(ts)) FROM records GROUP BY activity_id LIMIT 1)"
        ).fetchone()[0]
    )
    assert moved == 1
    assert _records_read(warehouse, one_batch_a_day) == stored
    assert _records_read(warehouse, [EVERY_DAY]) == stored
