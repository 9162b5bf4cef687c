"""Queries keep working while another process imports: no lock errors, no half-imported state."""

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from retrostride.pipelines.sample_export import generate_export
from retrostride.warehouse.access import Reading, read_only_query
from tests.conftest import copied_home

RETROSTRIDE = str(Path(sys.executable).with_name("retrostride"))
STATE = """
    SELECT (SELECT count(*) FROM activities) AS activities,
           (SELECT count(*) FROM activities a WHERE NOT EXISTS (
                SELECT 1 FROM segments s WHERE s.activity_id = a.activity_id)) AS unscored,
           (SELECT CAST(sum(sessions) AS BIGINT) FROM mileage_rolling) AS sessions,
           (SELECT count(*) FROM outcomes_6wk) AS windows"""


def test_queries_in_other_processes_see_the_warehouse_before_or_after_an_import_never_between(
    imported_export, tmp_path
):
    settings = copied_home(imported_export, tmp_path / "home")
    generate_export(tmp_path / "more", seed=23, athletes=2, weeks=1, start=date(2024, 3, 4))
    environment = {
        **os.environ,
        "RETROSTRIDE_HOME": str(settings.home),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "RETROSTRIDE_INBOX": str(tmp_path / "inbox"),
        "RETROSTRIDE_WORKERS": "1",
    }
    published = Reading(settings.catalog)
    before = read_only_query(published, STATE).row(0, named=True)
    assert before["unscored"] == 0 and before["sessions"] == before["activities"]

    importer = subprocess.Popen(
        [RETROSTRIDE, "import", str(tmp_path / "more")],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen, during, readers = [], 0, 0
    try:
        while importer.poll() is None:
            if readers < 3 and len(seen) % 20 == 10:  # now and then a whole `retrostride sql` process
                answer = subprocess.run(
                    [RETROSTRIDE, "sql", STATE, "--format", "json"],
                    env=environment,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert answer.returncode == 0, answer.stdout + answer.stderr
                state = json.loads(answer.stdout)[0]
                readers += 1
            else:
                state = read_only_query(published, STATE).row(0, named=True)
            during += importer.poll() is None
            seen.append(state)
            time.sleep(0.05)
    finally:
        output = importer.communicate(timeout=600)[0]
    assert importer.returncode == 0 and "imported" in output, output

    after = read_only_query(published, STATE).row(0, named=True)
    assert after["activities"] > before["activities"] and after["unscored"] == 0
    assert during >= 5 and readers >= 1  # the queries really ran while the import did
    print(f"\n{len(seen)} queries ({during} while the import ran, {readers} through `retrostride sql`)")  # pytest -s
    for state in seen:
        assert state in (before, after), state  # all of an import or none of it
