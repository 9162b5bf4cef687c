"""Crash safety and idempotency: a killed import resumes to the clean result; twice is once.

The kill trial runs the real CLI in a subprocess and SIGKILLs it (benchmarks/crash_trials.py) halfway
through the clean import's working time, then resumes in this process (the benchmark resumes with the
CLI).  `python benchmarks/kill_imports.py --trials 20` kills at many random moments.
"""

import pytest

from benchmarks.checksum import differences, table_checksums
from benchmarks.crash_trials import (
    build_export,
    clean_import,
    kill_trial,
    lake_problems,
    resume_in_process,
    working_time,
)
from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA, settings_for


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    if not CORPORA.exists():
        pytest.skip("corpora not found")
    return build_export(tmp_path_factory.mktemp("export"), CORPORA, weeks=1)


@pytest.mark.slow
def test_an_import_killed_halfway_resumes_to_the_clean_result(export, tmp_path):
    reference, clean = clean_import(tmp_path, export)
    assert reference["activities"][0] > 0 and reference["records"][0] > 0
    halfway = working_time(clean) / 2
    trial = kill_trial(tmp_path / "trial", export, reference, halfway, resume=resume_in_process)
    assert trial.differences + trial.problems == []


def test_a_run_killed_before_publishing_is_completed_by_the_next_and_a_third_changes_nothing(
    export, tmp_path, instance
):
    """The moment the kill trials found first: the ledger said 'imported', the warehouse had nothing."""
    from retrostride.connectors.ingest.importer import import_files
    from retrostride.connectors.sources import list_source_files
    from retrostride.warehouse.lake import Lake

    settings = settings_for(tmp_path)
    warehouse = Warehouse(settings.catalog)
    import_files(list_source_files([export]), Lake(settings.home), warehouse)  # ingest only: the run dies here
    assert warehouse.query("SELECT count(*) AS n FROM activities")["n"][0] == 0
    assert warehouse.query("SELECT count(*) AS n FROM pending_days")["n"][0] > 0

    assert import_paths(settings, [export], instance=instance)  # every file is known: only the pending days
    assert lake_problems(settings.home.parent) == []  # pending_days empty, every frame and copy in place
    placed = warehouse.query("SELECT sum(activities) AS n FROM import_ledger WHERE first_day IS NOT NULL")["n"][0]
    assert warehouse.query("SELECT count(*) AS n FROM activities")["n"][0] == placed
    statuses = dict(warehouse.query("SELECT status, count(*) FROM import_ledger GROUP BY 1").rows())
    assert statuses["failed"] == 3 and statuses["duplicate"] == 1 and statuses["partial"] == 1

    first = table_checksums(warehouse)
    assert import_paths(settings, [export], instance=instance) == []  # twice is once: nothing published
    assert differences(first, table_checksums(warehouse)) == []

    with warehouse.transaction() as connection:  # and the checksum does see a changed value
        connection.execute(
            "UPDATE records SET heart_rate_bpm = coalesce(heart_rate_bpm, 0) + 1 WHERE ts = (SELECT min(ts) FROM records)"
        )
    rows = first["records"][0]
    assert differences(first, table_checksums(warehouse)) == [
        f"records: expected {rows} rows, got {rows} (same count, different content)"
    ]
