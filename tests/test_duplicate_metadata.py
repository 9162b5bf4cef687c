"""The canonical copy of a run carries what all its copies know, whatever the import order (issue 16,
class 7): a watch's file imported beside a Strava export holding another file of the same run."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.publish import cross_source_duplicates
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA, settings_for
from tests.exports import strava_export

RUN = CORPORA / "tcx" / "python-tcxparser" / "test.tcx"  # in the export as activity 8000000001, "TCX evening run"


def watch_copy(path):
    """The corpus run with one more trackpoint (a second after the last): another file, richer."""
    text = RUN.read_text()
    points = re.findall(r"<Trackpoint>.*?</Trackpoint>", text, re.S)
    extra = re.sub(r"<Time>([^<]*)</Time>", "<Time>2012-12-26T22:32:00Z</Time>", points[-1])
    path.write_text(text.replace(points[-1], points[-1] + extra))
    return path


@pytest.mark.parametrize("export_first", [False, True], ids=["watch-then-export", "export-then-watch"])
def test_the_canonical_copy_keeps_the_platforms_name_calories_and_id(tmp_path, export_first):
    if not RUN.exists():
        pytest.skip(f"corpora not found at {CORPORA}")
    export, watch = strava_export(tmp_path / "built").path, watch_copy(tmp_path / "watch.tcx")
    settings = settings_for(tmp_path)
    with dg.instance_for_test() as instance:
        for path in [export, watch] if export_first else [watch, export]:
            import_paths(settings, [path], athlete="alice", instance=instance)
    rows = (
        Warehouse(settings.catalog)
        .query(
            "SELECT a.duplicate_of, a.name, a.calories_kcal, a.platform, a.platform_activity_id, a.records, l.path "
            "FROM activities a JOIN import_ledger l ON l.sha256 = a.source_sha256 "
            "WHERE a.start_ts = TIMESTAMPTZ '2012-12-26 21:29:53+00' ORDER BY a.duplicate_of NULLS FIRST"
        )
        .to_dicts()
    )
    canonical, copy = rows
    assert canonical["path"].endswith("watch.tcx") and canonical["records"] == 385 and copy["duplicate_of"] is not None
    assert (
        canonical["name"],
        canonical["calories_kcal"],
        canonical["platform"],
        canonical["platform_activity_id"],
    ) == ("TCX evening run", 380.0, "strava", "8000000001")
    warehouse = Warehouse(settings.catalog)
    assert cross_source_duplicates(warehouse, [str(watch)]) == 1  # what the import's summary counts
